"""Opening a person's image safely: any common file in, an RGB PIL image out, or a clear refusal.

The header is read first and its declared size checked before any pixel is decoded, so a
small file that claims to be a gigapixel image (a decompression bomb) costs nothing. The
memory its decoder will need is estimated from the header too (attnviz.image.decode_budget), and
the frame is reduced before it is converted, a strip at a time, so a small file of a huge
16-bit or transparent image costs about its own frame, not gigabytes. Only the decoders of the
formats the app accepts are tried.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from attnviz.errors import InputError
from attnviz.image import decode_budget as budget
from attnviz.image import medical_images as medical

#: Pillow decoders tried, in this order (the JPEG one also opens phone photos as "MPO").
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
#: DICOM (.dcm) is read with pydicom, not Pillow (attnviz.image.medical_images).
#: TIFF only with more than 8 bits of grey (a scan's 16-bit or float values), read through a window.
EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "dcm", "tif", "tiff")
FORMAT_HINT = "PNG, JPEG, WebP, BMP, GIF, DICOM or 16-bit grey TIFF"
#: A TIFF file's first four bytes (little- and big-endian).
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
#: Larger images are refused from their header alone (a 12 MP phone photo is far below).
MAX_PIXELS = 40_000_000
#: Files larger than this are refused before reading them whole.
MAX_BYTES = 50 * 1024 * 1024

ImageSource = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO
#: What Pillow's decoders raise on damaged bytes. Besides OSError/ValueError/SyntaxError, a GIF
#: cut inside a later frame's header raises struct.error or IndexError while counting frames.
DAMAGED = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError, TypeError, ZeroDivisionError)


def _read(data: ImageSource) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str | os.PathLike):
        path = Path(data)
        if not path.is_file():
            raise InputError(f"{path} is not a file: give the path of a {FORMAT_HINT} image.")
        if path.stat().st_size > MAX_BYTES:
            raise InputError(f"{path.name} is larger than {MAX_BYTES // 2**20} MB: use a smaller image.")
        return path.read_bytes()
    if hasattr(data, "read"):
        if hasattr(data, "seek"):
            data.seek(0)
        raw = data.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise InputError(f"The file is larger than {MAX_BYTES // 2**20} MB: use a smaller image.")
        return bytes(raw)
    raise TypeError(f"open_image takes bytes, a path or a binary file object, not {type(data).__name__}")


#: Frames are converted this many pixels at a time, so no full-size float or RGBA copy is ever made.
STRIP_PIXELS = 1 << 20
#: 16-bit, 32-bit and float grey: Pillow's own conversion to 8 bits clips at 255, so they are rescaled.
HIGH_GREY = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


def _grey_scale(im: Image.Image) -> tuple[float, float]:
    """(offset, scale) taking ``im``'s values to 0..255: 16 bits over 65535; 32-bit integers over 255,
    or 65535 when any value is larger; floats from their minimum to their maximum."""
    lo, hi = im.getextrema()
    if im.mode == "F":
        lo, hi = (float(v) if math.isfinite(v) else 0.0 for v in (lo, hi))
        return lo, 255.0 / max(hi - lo, 1e-12)
    top = 65535.0 if im.mode.startswith("I;16") or hi > 255 else 255.0
    return 0.0, 255.0 / top


def _strip_converter(im: Image.Image) -> Callable[[Image.Image], Image.Image]:
    """A function taking a strip of ``im`` to 8 bits ("L" for grey, "RGB" otherwise), exactly as the
    whole frame would convert. Transparent pixels are shown on white."""
    if im.mode in HIGH_GREY:
        offset, scale = _grey_scale(im)

        def grey(strip: Image.Image) -> Image.Image:
            arr = np.asarray(strip, dtype=np.float32)  # (rows, w): one strip, never the frame
            arr = np.nan_to_num(arr, nan=offset, posinf=offset + 255.0 / scale, neginf=offset)
            return Image.fromarray(np.clip((arr - offset) * scale + 0.5, 0, 255).astype(np.uint8), "L")

        return grey
    if im.mode == "P":
        return _strip_converter_for("RGBA" if "transparency" in im.info else "RGB")
    return _strip_converter_for(im.mode)


def _strip_converter_for(mode: str) -> Callable[[Image.Image], Image.Image]:
    if mode in ALPHA:

        def on_white(strip: Image.Image) -> Image.Image:
            rgba = strip.convert("RGBA")
            rgb = Image.new("RGB", rgba.size, (255, 255, 255))
            rgb.paste(rgba, mask=rgba.getchannel("A"))
            return rgb

        return on_white
    if mode == "L":
        return lambda strip: strip.convert("L")
    return lambda strip: strip.convert("RGB")  # RGB, 1, CMYK, YCbCr, LAB, HSV


def reduce_factor(size: tuple[int, int], max_side: int | None) -> int:
    """The integer box reduction applied before converting: the result keeps at least twice
    ``max_side`` on its long side, so the final Lanczos thumbnail loses nothing (Pillow's own
    ``reducing_gap=2``)."""
    if not max_side:
        return 1
    return max(1, max(size) // (2 * max_side))


def _reduced(im: Image.Image, factor: int) -> Image.Image:
    """``im`` converted to 8 bits and box-reduced by ``factor``, one strip of rows at a time.

    Peak memory besides the frame: the reduced result and one strip (``STRIP_PIXELS`` pixels) at full
    width, converted. Strips are whole multiples of ``factor`` rows, so each reduced block lies in one
    strip and the result equals reducing the whole converted frame.
    """
    if im.mode in ("L", "RGB"):  # already 8 bits: Pillow reduces without a full-size copy
        return im.reduce(factor) if factor > 1 else im.copy()
    convert = _strip_converter(im)
    w, h = im.size
    rows = max(factor, STRIP_PIXELS // w // factor * factor)
    out: Image.Image | None = None
    for top in range(0, h, rows):
        strip = convert(im.crop((0, top, w, min(h, top + rows))))
        if factor > 1:
            strip = strip.reduce(factor)
        if out is None:
            out = Image.new(strip.mode, (math.ceil(w / factor), math.ceil(h / factor)))
        out.paste(strip, (0, top // factor))
    assert out is not None  # h >= 1
    return out


def as_rgb(im: Image.Image, max_side: int | None = None) -> Image.Image:
    """Any loaded Pillow image -> 8-bit RGB, fitting in ``max_side`` x ``max_side`` when given.

    Reduces before converting, so memory stays near the frame itself: a 40 MP 16-bit grey image
    used to become five float64 copies (~1 GB). 16-bit and 32-bit grey are scaled so that their
    full range maps to 0..255 (16 bits: value * 255 / 65535, rounded); float grey runs from its
    minimum to its maximum (NaN and infinities count as the minimum); palette, CMYK and grey
    become RGB; transparent pixels are shown on white.
    """
    reduced = _reduced(im, reduce_factor(im.size, max_side))
    if max_side and max(reduced.size) > max_side:
        reduced.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return reduced if reduced.mode == "RGB" else reduced.convert("RGB")


def open_image(data: ImageSource, max_side: int | None = None) -> Image.Image:
    """Bytes, a path or a file object -> an RGB image, upright as its EXIF says.

    Converts CMYK, 16-bit, palette, grey and transparent images (see :func:`as_rgb`); takes the
    first frame of an animation. A DICOM file is shown through its own window (WindowCenter and
    WindowWidth, else its values' 0.5th..99.5th percentiles; attnviz.image.medical_images offers
    any other window), and so is a TIFF of more than 8 bits of grey (through its percentiles; other
    TIFFs are refused). ``max_side`` shrinks large images while decoding (JPEG decodes
    at a reduced scale directly, other formats are box-reduced before they are converted), which
    keeps a 4000x3000 photo fast and a 40 MP 16-bit file near the memory of its own frame.
    Raises ``InputError`` for empty, non-image, truncated or oversized files: over
    ``MAX_PIXELS``, or over ``decode_budget.MAX_DECODE_BYTES`` of decoder memory as estimated
    from the header (WebP and progressive JPEG cost far more than their pixels).
    """
    raw = _read(data)
    if not raw:
        raise InputError(f"The file is empty (0 bytes): upload a {FORMAT_HINT} image.")
    if medical.is_dicom(raw):  # shown through the file's own window (medical_images.read_dicom)
        return as_rgb(medical.windowed_image(medical.read_dicom(raw)), max_side)
    if raw[:4] in TIFF_MAGIC:  # 16-bit, 32-bit or float grey: through its percentile window; other TIFFs refused
        grey = medical.read_high_grey(raw)
        if grey is not None:
            return as_rgb(medical.windowed_image(grey), max_side)
    declared = budget.webp_size(raw)
    if declared is not None:  # Pillow's WebP decoder allocates its canvases in Image.open itself
        _check_size(declared)
        _check_budget(declared, budget.webp_decode_bytes(declared))
    im = _open(raw)
    declared = im.size
    _check_size(declared)
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)  # an animation: its first frame
        if max_side and im.format in ("JPEG", "MPO"):
            im.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale
        _check_budget(declared, budget.decode_bytes(im, declared))
        im.load()
        rgb = as_rgb(im, max_side)
        rgb.info = {k: v for k, v in im.info.items() if k in ("exif", "xmp", "XML:com.adobe.xmp")}
        ImageOps.exif_transpose(rgb, in_place=True)  # on the reduced image: a cheap turn, not a 40 MP copy
        return rgb
    except Image.DecompressionBombError as exc:
        raise InputError(f"This image is too large to open safely: scale it down. ({exc})") from exc
    except DAMAGED as exc:
        raise InputError(
            f"This image could not be decoded; the file is probably truncated or damaged ({exc}). "
            f"Upload it again or save it as {FORMAT_HINT}."
        ) from exc


def _open(raw: bytes) -> Image.Image:
    """Pillow's lazy open (header only) with the formats the app accepts, or an InputError."""
    try:
        with warnings.catch_warnings():
            # Pillow warns about sizes between 89 and 179 megapixels; _check_size refuses them.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(raw), formats=FORMATS)
    except Image.DecompressionBombError as exc:  # declared size over 179 megapixels
        raise InputError(
            f"This image declares far more than {MAX_PIXELS / 1e6:.0f} megapixels: scale it down and upload it again."
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"This file is not an image attnviz can read: upload a {FORMAT_HINT} file.") from exc
    except DAMAGED as exc:  # damaged headers raise assorted errors
        raise InputError(f"This image's header is damaged ({exc}): upload another {FORMAT_HINT} file.") from exc


def _check_size(size: tuple[int, int]) -> None:
    w, h = size
    if w < 1 or h < 1:
        raise InputError("This image has no pixels: upload another image.")
    if w * h > MAX_PIXELS:
        raise InputError(
            f"This image is {w} x {h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
            f"{MAX_PIXELS / 1e6:.0f}. Scale it down and upload it again."
        )


def _check_budget(size: tuple[int, int], cost: int) -> None:
    """Pixels alone do not bound memory (a 40 MP WebP takes 4 times a 40 MP PNG): bytes are budgeted too."""
    if cost > budget.MAX_DECODE_BYTES:
        raise InputError(budget.too_much_message(size, cost))
