"""open_image: odd but valid files become RGB images; bad ones raise InputError."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from attnviz import InputError, open_image
from attnviz.image_io import MAX_PIXELS


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb(w=40, h=30) -> Image.Image:
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    arr[: h // 2, :, 2] = 200
    return Image.fromarray(arr, "RGB")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_each_accepted_format_opens_as_rgb(fmt):
    im = open_image(_save(_rgb(), fmt))
    assert im.mode == "RGB" and im.size == (40, 30)


def test_path_bytes_and_file_object_give_the_same_image(tmp_path):
    data = _save(_rgb(), "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(data)
    a, b, c = open_image(data), open_image(path), open_image(io.BytesIO(data))
    assert np.array_equal(np.asarray(a), np.asarray(b)) and np.array_equal(np.asarray(a), np.asarray(c))
    assert np.array_equal(np.asarray(open_image(str(path))), np.asarray(a))


def test_exif_orientation_is_honoured():
    im = _rgb(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = open_image(_save(im, "JPEG", exif=exif.tobytes()))
    assert out.size == (30, 40)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (20, 10), (0, 255, 255, 0))  # pure red in CMYK
    out = open_image(_save(cmyk, "JPEG", quality=95))
    r, g, b = np.asarray(out).reshape(-1, 3).mean(axis=0)
    assert out.mode == "RGB" and r > 200 and g < 60 and b < 60


def test_16_bit_grey_png_is_rescaled_not_clipped():
    arr = np.full((8, 8), 32768, dtype=np.uint16)  # mid-grey in 16 bits
    out = open_image(_save(Image.fromarray(arr), "PNG"))
    value = np.asarray(out)[..., 0].mean()
    assert out.mode == "RGB" and 120 <= value <= 136


def test_palette_grey_and_alpha_images():
    pal = _rgb().convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    assert open_image(_save(pal, "PNG")).mode == "RGB"
    grey = _rgb().convert("L")
    out = open_image(_save(grey, "PNG"))
    assert out.mode == "RGB" and np.array_equal(np.asarray(out)[..., 0], np.asarray(out)[..., 2])
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))  # fully transparent red -> white background
    assert np.asarray(open_image(_save(rgba, "PNG"))).min() == 255
    la = Image.new("LA", (10, 10), (0, 255))
    assert np.asarray(open_image(_save(la, "PNG"))).max() == 0


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (12, 12), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    out = np.asarray(open_image(buf.getvalue())).reshape(-1, 3).mean(axis=0)
    assert out[0] > 200 and out[2] < 50


def test_max_side_shrinks_large_images():
    big = Image.new("RGB", (2000, 1000), (10, 20, 30))
    out = open_image(_save(big, "JPEG"), max_side=512)
    assert max(out.size) == 512 and out.size[0] / out.size[1] == pytest.approx(2, rel=0.02)


def test_empty_file_is_refused():
    with pytest.raises(InputError, match="empty"):
        open_image(b"")


@pytest.mark.parametrize("data", [b"hello, this is text", b"%PDF-1.4\n...", b"\x00" * 200, b"<svg></svg>"])
def test_non_images_are_refused(data):
    with pytest.raises(InputError, match="PNG, JPEG"):
        open_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_files_are_refused(fmt):
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = _save(noisy, fmt)
    with pytest.raises(InputError):
        open_image(data[: len(data) // 2])


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares ``width x height``, with one tiny (invalid) data chunk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b"")
    )


def test_declared_size_over_the_limit_is_refused_before_decoding():
    with pytest.raises(InputError, match="megapixels"):
        open_image(_png_header_only(50_000, 50_000))
    assert 50_000 * 50_000 > MAX_PIXELS


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError):
        open_image(12345)
