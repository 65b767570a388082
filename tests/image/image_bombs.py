"""Small files that decode into huge images, built without holding the image.

The PNGs are written by hand, one compressed row at a time, so a 40-megapixel 16-bit file costs
the test a few kilobytes of memory, not the 80 MB of its pixels. ``tests/image/test_decoding.py`` and
``benchmarks/image_decode.py`` both use them.
"""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image

#: 8000 x 5000 = 40 megapixels: exactly at attnviz.image.decoding.MAX_PIXELS, so the header check passes.
BOMB_SIZE = (8000, 5000)

#: Pillow 13 / libwebp 1.6: ``Image.new("RGBA", (8000, 5000), (10, 20, 30, 128)).save(buf, "WEBP",
#: lossless=True, quality=0, method=0)``. Making it holds ~400 MB, so the tests keep the 38 bytes;
#: :func:`uniform_webp` makes it again (the benchmark checks that both agree).
WEBP_40MP_RGBA = bytes.fromhex("524946461e000000574542505650384c110000002f3fdfe11407508a2ad4a3808188e87f0000")


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, bit_depth: int, colour_type: int, row: bytes, extra: bytes = b"") -> bytes:
    """A PNG of ``height`` identical rows (``row`` without its filter byte), compressed row by row."""
    z = zlib.compressobj(9)
    parts = [z.compress(b"\x00" + row) for _ in range(height)]
    parts.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", b"".join(parts)) + _chunk(b"IEND", b"")
    )


def grey16_png(width: int, height: int, value: int = 0x8000) -> bytes:
    """A uniform 16-bit grey PNG (Pillow opens it as mode "I;16"); 40 MP compress to ~90 KB."""
    return _png(width, height, 16, 0, struct.pack(">H", value) * width)


def rgba_png(width: int, height: int, rgba: tuple[int, int, int, int] = (200, 30, 30, 128)) -> bytes:
    """A uniform 8-bit RGBA PNG: 4 bytes a pixel once decoded."""
    return _png(width, height, 8, 6, bytes(rgba) * width)


def palette_png(width: int, height: int) -> bytes:
    """A uniform palette PNG whose one colour is half transparent (Pillow converts it through RGBA)."""
    extra = _chunk(b"PLTE", bytes((0, 120, 240))) + _chunk(b"tRNS", bytes((128,)))
    return _png(width, height, 8, 3, b"\x00" * width, extra)


def uniform_webp(width: int, height: int, rgba: tuple[int, int, int, int] = (10, 20, 30, 128)) -> bytes:
    """A lossless WebP of one colour: a few dozen bytes whatever its size (costs the caller the pixels)."""
    buf = io.BytesIO()
    Image.new("RGBA", (width, height), rgba).save(buf, "WEBP", lossless=True, quality=0, method=0)
    return buf.getvalue()


def float_tiff(width: int, height: int, value: float = 0.25) -> bytes:
    """A deflated float ("F" mode) TIFF of one value (read through a window: attnviz.image.medical_images)."""
    buf = io.BytesIO()
    Image.new("F", (width, height), value).save(buf, "TIFF", compression="tiff_adobe_deflate")
    return buf.getvalue()
