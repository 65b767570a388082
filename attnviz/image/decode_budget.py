"""How much memory decoding an image will take, estimated from its header before any pixel is decoded.

The pixel limit alone does not bound memory: a pixel costs Pillow 1 byte (grey, palette), 2
(16-bit grey) or 4 (everything else), and some decoders hold much more besides. Measured with
Pillow 13 (``ru_maxrss`` growth of ``Image.open(...).load()`` in a fresh process):

- WebP: ~16 bytes a pixel whatever the mode. Pillow's WebP plugin decodes through libwebp's
  animation decoder, which allocates two 4-byte canvases when the file is *opened*, then hands
  the frame over as a bytes object before copying it into the image. A 38-byte lossless WebP of
  40 megapixels took 617 MB, so its size must be checked before ``Image.open``.
- Progressive JPEG: libjpeg keeps every DCT coefficient (2 bytes each, per component at its
  sampling) for the whole image, even when ``draft`` decodes at 1/8 scale: 3 bytes a pixel at
  4:2:0, 6 at 4:4:4 (a 40 MP 4:4:4 file: 242 MB).
- PNG, GIF, BMP, baseline JPEG: the frame alone.
"""

from __future__ import annotations

import math
import struct

from PIL import Image

#: Most memory the decoder of one image may hold, estimated from its header. 256 MB keeps a 12 MP
#: phone photo saved as WebP (4000 x 3000: ~190 MB) and any 40 MP PNG (at most 160 MB) openable,
#: and refuses a 40 MP WebP (~640 MB). Converting to RGB adds only the (reduced) result and one strip.
MAX_DECODE_BYTES = 256 * 2**20
#: Extra bytes a pixel held by Pillow's WebP decoder: two canvases and the bytes of the frame, 4 each.
WEBP_EXTRA_PER_PIXEL = 12


def frame_bytes(mode: str, size: tuple[int, int]) -> int:
    """What Pillow's own buffer for an image of ``mode`` and ``size`` = (width, height) takes."""
    w, h = size
    if mode in ("1", "L", "P"):
        per_pixel = 1
    elif mode.startswith("I;16"):
        per_pixel = 2
    else:  # RGB is stored as 4 bytes too
        per_pixel = 4
    return w * h * per_pixel


def webp_size(raw: bytes) -> tuple[int, int] | None:
    """The canvas size (width, height) a WebP file declares, or None when ``raw`` is not one we can read.

    From the container spec (developers.google.com/speed/webp/docs/riff_container): the first
    chunk is "VP8 " (lossy: 14-bit sizes after the frame's start code), "VP8L" (lossless: 14-bit
    sizes minus one after the 0x2f signature) or "VP8X" (extended: 24-bit canvas sizes minus one).
    """
    if len(raw) < 30 or raw[:4] != b"RIFF" or raw[8:12] != b"WEBP":
        return None
    chunk = raw[12:16]
    if chunk == b"VP8 " and raw[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", raw[26:30])
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and raw[20] == 0x2F:
        bits = struct.unpack("<I", raw[21:25])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(raw[24:27], "little") + 1, int.from_bytes(raw[27:30], "little") + 1
    return None


def webp_decode_bytes(size: tuple[int, int]) -> int:
    w, h = size
    return frame_bytes("RGBA", size) + WEBP_EXTRA_PER_PIXEL * w * h


def jpeg_coefficient_bytes(im: Image.Image, size: tuple[int, int]) -> int:
    """The DCT coefficients libjpeg keeps for a progressive JPEG of full ``size`` (0 for baseline)."""
    if not im.info.get("progressive"):
        return 0
    layers = getattr(im, "layer", None) or [("", 1, 1, 0)] * len(im.getbands())
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    w, h = size
    total = 0
    for _, h_samp, v_samp, _ in layers:
        blocks_w = math.ceil(w * h_samp / h_max / 8)
        blocks_h = math.ceil(h * v_samp / v_max / 8)
        total += blocks_w * blocks_h * 64 * 2
    return total


def decode_bytes(im: Image.Image, declared: tuple[int, int]) -> int:
    """Memory the decoder will hold for ``im`` (opened, not loaded; after any ``draft``).

    ``declared`` is the size in the header, before a JPEG draft made ``im.size`` smaller.
    """
    total = frame_bytes(im.mode, im.size)
    if im.format == "WEBP":
        total = webp_decode_bytes(im.size)
    elif im.format in ("JPEG", "MPO"):
        total += jpeg_coefficient_bytes(im, declared)
    return total


def too_much_message(size: tuple[int, int], cost: int, what: str = "image") -> str:
    w, h = size
    return (
        f"This {what} is {w} x {h} pixels: decoding it would take about {cost / 2**20:.0f} MB of memory, and "
        f"the limit is {MAX_DECODE_BYTES / 2**20:.0f} MB. Scale it down (or save it as a baseline JPEG or PNG) "
        "and upload it again."
    )
