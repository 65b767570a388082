"""Medical and high-bit grey images: DICOM read with pydicom, 16-bit PNG and TIFF, and windowing.

A CT slice stores 12 to 16 bits per pixel; a screen and the image model take 8. Squeezing the
whole range into 8 bits (a blind rescale) turns soft tissue into one grey, so these images are
read as their raw values, in modality units, and shown through a *window*: a centre and a width
(DICOM's VOI LUT, PS3.3 C.11.2.1.2.1) that map the values of interest to black..white.

- :func:`read_grey` reads a DICOM file (values = stored pixel x RescaleSlope + RescaleIntercept,
  Hounsfield units for CT; the file's WindowCenter/WindowWidth as the default window, its first
  value when there are several; MONOCHROME1 shown inverted) or a PNG/TIFF whose pixels have more
  than 8 bits (Pillow modes I;16, I;16B, I, F; a default window from the 0.5th and 99.5th
  percentiles), or returns None for an ordinary 8-bit image.
- :func:`apply_window` is the window itself, a pure function on arrays; :func:`windowed_image`
  and :func:`windowed_png` give the 8-bit picture the model and the page see.

Patient privacy: a DICOM file is read with pydicom's ``specific_tags`` restricted to
:data:`PIXEL_TAGS` (size, bits, photometric interpretation, rescale, window, pixel data), so the
patient's name, identifiers, dates and every other field are skipped while parsing: never held,
shown, logged or put into a message.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, UnidentifiedImageError

from attnviz.errors import InputError
from attnviz.image import decode_budget as budget

#: The only DICOM attributes ever parsed (with the file meta group, which holds no patient data).
PIXEL_TAGS = (
    "SamplesPerPixel",
    "PhotometricInterpretation",
    "PlanarConfiguration",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "BitsAllocated",
    "BitsStored",
    "HighBit",
    "PixelRepresentation",
    "Modality",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "VOILUTFunction",
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
)
#: Pillow modes with more than 8 bits of grey.
HIGH_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
#: The default window of an image without one: these percentiles of its values.
PERCENTILES = (0.5, 99.5)
#: Percentiles are taken on at most this many pixels (an even grid of them).
PERCENTILE_SAMPLE = 1 << 20
#: Rows windowed at a time: no full-size float copy of a large image.
STRIP_PIXELS = 1 << 20
DICOM_HINT = "an uncompressed DICOM (.dcm) file"
#: What pydicom raises on damaged or unexpected files, besides its own InvalidDicomError.
DAMAGED = (
    ValueError,
    KeyError,
    AttributeError,
    TypeError,
    IndexError,
    OSError,
    EOFError,
    OverflowError,
    NotImplementedError,
    RuntimeError,
    UnicodeError,
)


@dataclass(frozen=True)
class Window:
    """A DICOM window: ``centre`` and ``width`` (>= 1) in the image's modality units.

    Values at or below :attr:`low` are black, values above :attr:`high` white, and values between
    are linear (PS3.3 C.11.2.1.2.1, the default "LINEAR" VOI LUT function).
    """

    centre: float
    width: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.centre) and math.isfinite(self.width)) or self.width < 1:
            raise InputError(
                f"A window needs a finite centre and a width of at least 1 (got centre {self.centre}, "
                f"width {self.width}): pick a wider window."
            )

    @property
    def low(self) -> float:
        """The largest value shown black: centre - 0.5 - (width - 1) / 2."""
        return self.centre - 0.5 - (self.width - 1) / 2

    @property
    def high(self) -> float:
        """The value shown white (and everything above it): centre - 0.5 + (width - 1) / 2."""
        return self.centre - 0.5 + (self.width - 1) / 2

    @classmethod
    def from_range(cls, low: float, high: float) -> Window:
        """The window that shows ``low`` black and ``high`` white, linear between (``high > low``):
        centre = (low + high) / 2 + 0.5, width = high - low + 1."""
        if not high > low:
            raise InputError(f"A window's top ({high:g}) must be above its bottom ({low:g}): widen the window.")
        return cls((low + high) / 2 + 0.5, high - low + 1)

    def describe(self, unit: str = "") -> str:
        suffix = f" {unit}" if unit else ""
        return f"centre {self.centre:g}, width {self.width:g}{suffix}"


@dataclass(frozen=True)
class GreyInfo:
    """What a page needs to offer a window, without the pixels (small: cheap to cache)."""

    kind: str  # "DICOM", "16-bit PNG", "32-bit TIFF", ...
    size: tuple[int, int]  # (width, height)
    value_range: tuple[float, float]  # the smallest and largest finite value, in modality units
    integer: bool  # all values are whole numbers (a slider steps by 1)
    window: Window  # the default: the file's own, or the percentiles'
    file_windows: tuple[Window, ...]  # every window the file names (DICOM), first one the default
    unit: str  # "HU" for CT, else ""
    inverted: bool  # MONOCHROME1: the smallest value is shown white
    frames: int  # a multi-frame DICOM's frame count; the first frame is read
    bits: int = 0  # bits stored a pixel (DICOM BitsStored; 16 or 32 for PNG/TIFF); 0 when unknown
    rescale: tuple[float, float] = (1.0, 0.0)  # (slope, intercept): value = stored x slope + intercept


@dataclass(frozen=True)
class GreyImage:
    """A high-bit grey (or DICOM colour) image's values in modality units, and how to show them."""

    values: np.ndarray  # (h, w), or (h, w, 3) for a colour DICOM
    info: GreyInfo


def is_dicom(raw: bytes) -> bool:
    """DICOM Part 10 files have a 128-byte preamble, then ``DICM``."""
    return len(raw) >= 132 and raw[128:132] == b"DICM"


def read_grey(raw: bytes) -> GreyImage | None:
    """A DICOM file, or a PNG/TIFF with more than 8 bits of grey, as values and a default window;
    None for any other image (which :func:`attnviz.image.decoding.open_image` reads as it is).

    Raises ``InputError`` for a damaged DICOM file, one without an image, compressed in a way
    that cannot be decoded here, or too large.
    """
    if is_dicom(raw):
        return read_dicom(raw)
    return read_high_grey(raw)


# ---------------------------------------------------------------- windowing


def apply_window(values: np.ndarray, window: Window, inverted: bool = False) -> np.ndarray:
    """``values`` through the linear VOI LUT of ``window`` (DICOM PS3.3 C.11.2.1.2.1), as uint8:

        y = 0                                        if x <= c - 0.5 - (w - 1) / 2
        y = 255                                      if x >  c - 0.5 + (w - 1) / 2
        y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255  otherwise

    rounded to the nearest integer (halves up). A width of 1 is a threshold at c - 0.5. NaN is
    black, +inf white. ``inverted`` (MONOCHROME1) gives 255 - y. Works a strip of rows at a time.
    """
    arr = np.asarray(values)
    if arr.ndim == 0:
        return _window_strip(arr, window, inverted)
    out = np.empty(arr.shape, dtype=np.uint8)
    rows = max(1, STRIP_PIXELS // max(1, math.prod(arr.shape[1:])))
    for top in range(0, arr.shape[0], rows):
        out[top : top + rows] = _window_strip(arr[top : top + rows], window, inverted)
    return out


def _window_strip(x: np.ndarray, window: Window, inverted: bool) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    c, w = window.centre, window.width
    if w > 1:
        y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255.0
    else:
        y = np.zeros_like(x)
    y = np.where(x <= window.low, 0.0, np.where(x > window.high, 255.0, y))
    y = np.nan_to_num(y, nan=0.0)
    y = np.floor(np.clip(y, 0.0, 255.0) + 0.5)
    if inverted:
        y = 255.0 - y
    return y.astype(np.uint8)


def windowed_image(grey: GreyImage, window: Window | None = None) -> Image.Image:
    """The 8-bit picture of ``grey`` through ``window`` (its default when None): "L", or "RGB" for colour."""
    window = grey.info.window if window is None else window
    out = apply_window(grey.values, window, grey.info.inverted)
    return Image.fromarray(out, "RGB" if out.ndim == 3 else "L")


def windowed_png(raw: bytes, window: Window | None = None) -> bytes:
    """The file ``raw`` (DICOM or high-bit grey) windowed, as 8-bit PNG bytes (fast compression),
    which any reader of ordinary images takes. Raises ``InputError`` when ``raw`` is neither."""
    grey = read_grey(raw)
    if grey is None:
        raise InputError("This image has 8 bits a pixel already: it needs no window.")
    buf = io.BytesIO()
    windowed_image(grey, window).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def percentile_window(values: np.ndarray) -> Window:
    """The window from the :data:`PERCENTILES` of the finite values (of an even sample of at most
    :data:`PERCENTILE_SAMPLE` pixels); the whole range when those coincide; a width of 1 for a flat image."""
    flat = values if values.ndim == 2 else values.reshape(values.shape[0], -1)
    step = max(1, math.isqrt(max(1, flat.size // PERCENTILE_SAMPLE)))
    sample = np.asarray(flat[::step, ::step], dtype=np.float64).ravel()
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return Window(0.5, 1.0)
    low, high = np.percentile(sample, PERCENTILES)
    if not high > low:
        low, high = float(sample.min()), float(sample.max())
    if not high > low:
        return Window(float(low) + 1.0, 1.0)  # a flat image: a threshold just above its value, shown black
    return Window.from_range(float(low), float(high))


def _value_range(values: np.ndarray) -> tuple[tuple[float, float], bool]:
    if np.issubdtype(values.dtype, np.integer):
        return (float(values.min()), float(values.max())), True
    # A strip of rows at a time: a 40 MP float image's finite copy and its rounding took 400 MB at once.
    flat = values.reshape(values.shape[0], -1)
    rows = max(1, STRIP_PIXELS // max(1, flat.shape[1]))
    lo, hi, integer = math.inf, -math.inf, True
    for top in range(0, flat.shape[0], rows):
        strip = flat[top : top + rows]
        finite = strip[np.isfinite(strip)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
            integer = integer and bool(np.all(finite == np.round(finite)))
    if lo > hi:  # no finite value
        return (0.0, 0.0), True
    return (lo, hi), integer


# ---------------------------------------------------------------- 16-bit PNG and TIFF


def read_high_grey(raw: bytes) -> GreyImage | None:
    """A PNG or TIFF in a mode of more than 8 bits of grey (:data:`HIGH_GREY`), or None for any other
    file (including any that Pillow cannot open: the general decoder says why)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(raw), formats=("PNG", "TIFF"))
    except (UnidentifiedImageError, Image.DecompressionBombError, *DAMAGED):
        return None
    from attnviz.image.decoding import MAX_PIXELS  # decoding imports this module

    if im.mode not in HIGH_GREY:
        return None
    w, h = im.size
    if w < 1 or h < 1 or w * h > MAX_PIXELS:
        return None  # open_image refuses it with its own message
    if budget.frame_bytes(im.mode, im.size) > budget.MAX_DECODE_BYTES:
        return None
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)
        im.load()
        values = np.asarray(im)
    except (Image.DecompressionBombError, *DAMAGED):
        return None  # a damaged file: open_image gives the message
    if values.ndim != 2:
        return None
    bits = {"I": 32, "F": 32}.get(im.mode, 16)
    kind = f"{bits}-bit {'float ' if im.mode == 'F' else ''}{im.format}"
    value_range, integer = _value_range(values)
    window = percentile_window(values)
    info = GreyInfo(kind, im.size, value_range, integer, window, (), "", False, 1, bits)
    return GreyImage(values, info)


# ---------------------------------------------------------------- DICOM


def read_dicom(raw: bytes) -> GreyImage:
    """A DICOM file's first frame in modality units, with the file's window as the default.

    Only :data:`PIXEL_TAGS` are parsed. Colour (RGB, or YBR converted to RGB by pydicom) keeps its
    three channels, windowed alike, by default over the stored bits' full range. Raises
    ``InputError`` with what to do for a damaged file, one without pixel data, a palette-colour
    image, an oversized one, or pixel data compressed in a way no installed decoder reads.
    """
    import pydicom

    from attnviz.image.decoding import MAX_PIXELS

    try:
        ds = pydicom.dcmread(io.BytesIO(raw), specific_tags=list(PIXEL_TAGS))
    except Exception as exc:  # pydicom raises many kinds on damaged files (InvalidDicomError, BytesLengthException...)
        raise InputError(
            f"This DICOM file could not be read; it is probably truncated or damaged ({type(exc).__name__}). "
            f"Export it again as {DICOM_HINT}."
        ) from None
    try:
        return _dicom_image(ds, MAX_PIXELS)
    except InputError:
        raise
    except Exception as exc:  # a damaged file: any of pydicom's errors
        raise InputError(
            f"This DICOM file's image could not be decoded ({type(exc).__name__}): the file is damaged, or "
            f"stored in a way attnviz cannot read. Export it again as {DICOM_HINT}."
        ) from None


def _syntax_name(ds) -> str:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return str(getattr(uid, "name", "") or uid or "an unknown transfer syntax")


def _is_compressed(ds) -> bool:
    meta = getattr(ds, "file_meta", None)
    uid = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    return bool(uid is not None and getattr(uid, "is_compressed", False))


def _dicom_image(ds, max_pixels: int) -> GreyImage:
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise InputError(
            "This DICOM file holds no image (no Pixel Data): it may be a report, a structured document or "
            "a series' index. Upload one image of the series."
        )
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if rows < 1 or cols < 1:
        raise InputError("This DICOM file's image has no rows or columns: export the image again.")
    if rows * cols > max_pixels:
        raise InputError(
            f"This DICOM image is {cols} x {rows} pixels; the limit is {max_pixels / 1e6:.0f} megapixels. "
            "Export a smaller image."
        )
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric == "PALETTE COLOR":
        raise InputError(
            "This DICOM image uses a colour palette, which attnviz does not read: export it as RGB or greyscale."
        )
    if samples not in (1, 3):
        raise InputError(f"This DICOM image has {samples} samples a pixel: export it as greyscale or RGB.")
    bits = int(ds.get("BitsAllocated", 16) or 16)
    # One decoded frame (pixel_array's own array, then the float copy in modality units).
    cost = rows * cols * samples * (max(bits, 8) // 8 + 8)
    if cost > budget.MAX_DECODE_BYTES:
        raise InputError(budget.too_much_message((cols, rows), cost, what="DICOM image"))
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    try:
        ds.pixel_array_options(index=0 if frames > 1 else None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's warnings can quote the file's values
            stored = ds.pixel_array
    except (NotImplementedError, RuntimeError, ValueError, ImportError) as exc:
        if _is_compressed(ds):
            raise InputError(
                f"This DICOM file's pixels are compressed as {_syntax_name(ds)}, which attnviz cannot decode "
                f"here ({type(exc).__name__}). Export it uncompressed (Explicit VR Little Endian), e.g. with "
                "`gdcmconv --raw in.dcm out.dcm` or `dcmdjpeg`, and upload that."
            ) from None
        raise
    if stored.ndim == (3 if samples == 1 else 4):
        stored = stored[0]  # a multi-frame array when the index was not honoured
    expected = (rows, cols) if samples == 1 else (rows, cols, 3)
    if stored.shape != expected:
        raise InputError(
            f"This DICOM file's pixel data has shape {stored.shape}, not the {expected} its header says: "
            f"export the image again as {DICOM_HINT}."
        )
    if samples == 3:
        values = stored
        top = float(2 ** int(ds.get("BitsStored", bits) or bits) - 1)
        file_windows: tuple[Window, ...] = ()
        window = Window.from_range(0.0, top) if top > 0 else Window(0.5, 1.0)
        unit, inverted = "", False
        slope, intercept = 1.0, 0.0
    else:
        slope = _number(ds.get("RescaleSlope"), 1.0)
        intercept = _number(ds.get("RescaleIntercept"), 0.0)
        if slope == 1.0 and intercept == 0.0:
            values = stored
        else:
            dtype = np.float32 if stored.dtype.itemsize <= 2 else np.float64
            values = stored.astype(dtype) * dtype(slope) + dtype(intercept)
        file_windows = _file_windows(ds)
        window = file_windows[0] if file_windows else percentile_window(values)
        modality = str(ds.get("Modality", "")).strip().upper()
        rescale_type = str(ds.get("RescaleType", "")).strip().upper()
        rescaled = not rescale_type and "RescaleIntercept" in ds
        unit = "HU" if rescale_type == "HU" or (modality == "CT" and rescaled) else ""
        inverted = photometric == "MONOCHROME1"
    value_range, integer = _value_range(values)
    kind = "DICOM" + (f" ({frames} frames: the first)" if frames > 1 else "")
    stored_bits = int(ds.get("BitsStored", bits) or bits)
    info = GreyInfo(kind, (cols, rows), value_range, integer, window, file_windows, unit, inverted, frames)
    info = replace(info, bits=stored_bits, rescale=(slope, intercept))
    return GreyImage(values, info)


def _number(value, default: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) else default


def _numbers(value) -> list[float]:
    """A DICOM decimal string's values (one, or a multi-valued attribute's), NaN for any unreadable."""
    if value is None:
        return []
    items = [value] if isinstance(value, str | bytes | int | float) else list(value)
    return [_number(item, math.nan) for item in items]


def _file_windows(ds) -> tuple[Window, ...]:
    """Every (WindowCenter, WindowWidth) pair of the file that is usable (width >= 1), first first.

    A "LINEAR_EXACT" VOI LUT function (C.11.2.1.3.2: c - w/2 black, c + w/2 white) becomes the
    linear window with those edges; "SIGMOID" is shown as the linear window of the same values.
    """
    centres, widths = _numbers(ds.get("WindowCenter")), _numbers(ds.get("WindowWidth"))
    exact = str(ds.get("VOILUTFunction", "")).strip().upper() == "LINEAR_EXACT"
    out = []
    for c, w in zip(centres, widths, strict=False):
        if not (math.isfinite(c) and math.isfinite(w)):
            continue
        if exact and w > 0:
            out.append(Window.from_range(c - w / 2, c + w / 2))
        elif w >= 1:
            out.append(Window(c, w))
    return tuple(out)
