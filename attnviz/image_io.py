"""Opening a person's image safely: any common file in, an RGB PIL image out, or a clear refusal.

The header is read first and its declared size checked before any pixel is decoded, so a
small file that claims to be a gigapixel image (a decompression bomb) costs nothing. Only the
decoders of the formats the app accepts are tried.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from attnviz.errors import InputError

#: Pillow decoders tried, in this order (the JPEG one also opens phone photos as "MPO").
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "gif")
FORMAT_HINT = "PNG, JPEG, WebP, BMP or GIF"
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


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB. Transparent pixels are shown on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float grey: Pillow's own conversion clips at 255, so rescale first.
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if im.mode == "F":
            lo, hi = float(arr.min(initial=0)), float(arr.max(initial=1))
            arr, top = arr - lo, max(hi - lo, 1e-12)
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")  # RGB, L, 1, CMYK, YCbCr, LAB, HSV


def open_image(data: ImageSource, max_side: int | None = None) -> Image.Image:
    """Bytes, a path or a file object -> an RGB image, upright as its EXIF says.

    Converts CMYK, 16-bit, palette, grey and transparent images; takes the first frame of an
    animation. ``max_side`` shrinks large images while decoding (JPEG decodes at a reduced
    scale directly), which keeps a 4000x3000 photo fast. Raises ``InputError`` for empty,
    non-image, truncated or oversized files.
    """
    raw = _read(data)
    if not raw:
        raise InputError(f"The file is empty (0 bytes): upload a {FORMAT_HINT} image.")
    try:
        with warnings.catch_warnings():
            # Pillow warns about sizes between 89 and 179 megapixels; the check below refuses them.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(raw), formats=FORMATS)
    except Image.DecompressionBombError as exc:  # declared size over 179 megapixels
        raise InputError(
            f"This image declares far more than {MAX_PIXELS / 1e6:.0f} megapixels: scale it down and upload it again."
        ) from exc
    except UnidentifiedImageError as exc:
        raise InputError(f"This file is not an image attnviz can read: upload a {FORMAT_HINT} file.") from exc
    except DAMAGED as exc:  # damaged headers raise assorted errors
        raise InputError(f"This image's header is damaged ({exc}): upload another {FORMAT_HINT} file.") from exc
    w, h = im.size
    if w < 1 or h < 1:
        raise InputError("This image has no pixels: upload another image.")
    if w * h > MAX_PIXELS:
        raise InputError(
            f"This image is {w} x {h} pixels ({w * h / 1e6:.0f} megapixels); the limit is "
            f"{MAX_PIXELS / 1e6:.0f}. Scale it down and upload it again."
        )
    try:
        if getattr(im, "n_frames", 1) > 1:
            im.seek(0)  # an animation: its first frame
        if max_side and im.format in ("JPEG", "MPO"):
            im.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale
        im.load()
        im = ImageOps.exif_transpose(im)
        rgb = _to_rgb(im)
    except Image.DecompressionBombError as exc:
        raise InputError(f"This image is too large to open safely: scale it down. ({exc})") from exc
    except DAMAGED as exc:
        raise InputError(
            f"This image could not be decoded; the file is probably truncated or damaged ({exc}). "
            f"Upload it again or save it as {FORMAT_HINT}."
        ) from exc
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return rgb
