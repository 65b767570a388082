"""open_image: odd but valid files become RGB images; bad ones raise InputError."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import tracemalloc
import zlib
from pathlib import Path

import image_bombs as bombs
import numpy as np
import pytest
from PIL import Image

from attnviz import InputError, open_image
from attnviz.image import decode_budget, decoding
from attnviz.image.decode_budget import webp_size
from attnviz.image.decoding import MAX_PIXELS, as_rgb


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


# ------------------------------------------------- tiny files, huge memory

GREY16_EXPECTED = round(0x8000 * 255 / 65535)  # the bombs' grey, in 8 bits


def _subprocess_growth_mb(code: str) -> float:
    """Peak RSS growth (MB) of ``code`` in a fresh Python, measured after its imports and input.

    ``code`` builds ``source`` and defines ``work()``; a fresh process, because a freed-but-kept
    heap in this one would hide the growth.
    """
    script = (
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "import image_bombs as bombs\n"
        "from attnviz.image import decoding\n"
        f"{code}\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent (pytest) through fork and exec.
        "peak = lambda: next(int(s.split()[1]) for s in open('/proc/self/status') if s.startswith('VmHWM:')) / 1024\n"
        "before = peak()\n"
        "work()\n"
        "print(peak() - before)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


@pytest.mark.parametrize(
    ("bomb", "frame_mb"),
    [("grey16_png", 80), ("rgba_png", 160), ("palette_png", 40)],
)
def test_huge_images_from_small_files_open_near_the_cost_of_their_frame(bomb, frame_mb):
    """Before: converting at full size took 430-700 MB more than the frame (float64 grey, RGBA copies)."""
    w, h = bombs.BOMB_SIZE
    growth = _subprocess_growth_mb(
        f"source = bombs.{bomb}({w}, {h})\n"
        "def work():\n"
        "    im = decoding.open_image(source, max_side=1024)\n"
        "    assert im.size == (1024, 640), im.size\n"
    )
    assert growth < frame_mb + 64, f"{bomb}: {growth:.0f} MB for a {frame_mb} MB frame"


def test_a_40_megapixel_16_bit_png_is_reduced_without_a_full_size_float_copy():
    """The 82 KB file of the issue: numpy (traced by tracemalloc) used to hold ~900 MB of float64."""
    data = bombs.grey16_png(*bombs.BOMB_SIZE)
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        im = open_image(data, max_side=1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert im.size == (1024, 640) and im.mode == "RGB"
    assert np.all(np.asarray(im) == GREY16_EXPECTED)
    assert peak < 24 * 2**20, f"{peak / 2**20:.0f} MB traced"


def test_a_40_megapixel_webp_is_refused_before_pillow_allocates_its_canvases():
    """38 bytes that Pillow's WebP decoder turns into ~620 MB at Image.open (measured), so refused from the header."""
    data = bombs.WEBP_40MP_RGBA
    with pytest.raises(InputError, match=r"8000 x 5000 pixels.*MB of memory.*limit is 256 MB"):
        open_image(data, max_side=1024)
    growth = _subprocess_growth_mb(
        "source = bombs.WEBP_40MP_RGBA\n"
        "def work():\n"
        "    try:\n"
        "        decoding.open_image(source, max_side=1024)\n"
        "    except decoding.InputError:\n"
        "        pass\n"
    )
    assert growth < 16


def test_webp_header_sizes_are_read_like_pillow_reads_them():
    for mode, kw in [("RGB", {"lossless": True}), ("RGBA", {"lossless": True}), ("RGB", {"quality": 50})]:
        data = _save(Image.new(mode, (123, 45)), "WEBP", **kw)
        assert webp_size(data) == (123, 45) == Image.open(io.BytesIO(data)).size
    exif = Image.Exif()
    exif[0x0112] = 1
    extended = _save(Image.new("RGB", (77, 9)), "WEBP", exif=exif.tobytes())  # a VP8X container
    assert extended[12:16] == b"VP8X" and webp_size(extended) == (77, 9)
    assert webp_size(b"RIFF....WEBPVP8L") is None and webp_size(_save(_rgb(), "PNG")) is None


def test_a_small_webp_still_opens():
    data = _save(Image.new("RGBA", (300, 200), (255, 0, 0, 255)), "WEBP", lossless=True)
    im = open_image(data, max_side=1024)
    assert im.size == (300, 200) and tuple(np.asarray(im)[0, 0]) == (255, 0, 0)


def test_the_decode_budget_counts_a_progressive_jpegs_coefficients(monkeypatch):
    """libjpeg keeps a progressive file's coefficients at full size even when draft decodes at 1/8."""
    image = _rgb(1200, 1000)
    progressive = _save(image, "JPEG", progressive=True, subsampling=0, quality=80)
    baseline = _save(image, "JPEG", subsampling=0, quality=80)
    monkeypatch.setattr(decode_budget, "MAX_DECODE_BYTES", 4 * 2**20)  # 1.2 MP x 6 bytes = 6.9 MB of coefficients
    assert open_image(baseline, max_side=128).size == (128, 107)  # drafted to 150 x 125: 75 kB
    with pytest.raises(InputError, match=r"1200 x 1000 pixels.*7 MB of memory"):
        open_image(progressive, max_side=128)


def test_a_frame_over_the_decode_budget_is_refused(monkeypatch):
    monkeypatch.setattr(decode_budget, "MAX_DECODE_BYTES", 1000)
    with pytest.raises(InputError, match="limit is 0 MB"):
        open_image(_save(_rgb(40, 30), "PNG"))  # 40 x 30 x 4 bytes = 4,800 bytes


def test_a_float_tiff_is_read_through_its_window_and_an_8_bit_tiff_is_refused():
    """TIFF is read only for more than 8 bits of grey (scans): a flat float TIFF comes through its
    percentile window (a flat image: every value at the threshold, black); an 8-bit TIFF is refused."""
    rgb = open_image(bombs.float_tiff(64, 30))
    assert rgb.mode == "RGB" and rgb.size == (64, 30)
    assert np.asarray(rgb).max() == 0
    buf = io.BytesIO()
    Image.new("L", (8, 8), 7).save(buf, "TIFF")
    with pytest.raises(InputError, match="PNG, JPEG.*16-bit grey TIFF"):
        open_image(buf.getvalue())


def _expected_grey(values: np.ndarray, offset: float, top: float) -> np.ndarray:
    """The conversion computed independently, in float64: (v - offset) / top * 255, rounded, clipped."""
    return np.clip(np.floor((values.astype(np.float64) - offset) / top * 255 + 0.5), 0, 255).astype(np.uint8)


HIGH_BIT_CASES = {
    "I;16": (np.array([[0, 1, 128, 129, 257], [32767, 32768, 65278, 65534, 65535]], dtype=np.uint16), 0, 65535),
    "I-small": (np.array([[0, 1, 2, 100, 254], [255, 7, 9, 200, 128]], dtype=np.int32), 0, 255),
    "I-large": (np.array([[-5, 0, 300, 65535, 70000], [1000, 257, 128, 40000, 2]], dtype=np.int32), 0, 65535),
    "F": (np.array([[-1.5, 0.0, 0.25, 2.0, 3.5], [1.0, -1.0, 3.0, 0.5, 1.75]], dtype=np.float32), -1.5, 5.0),
}


@pytest.mark.parametrize("case", sorted(HIGH_BIT_CASES))
def test_high_bit_grey_modes_convert_to_the_right_8_bit_values(case, monkeypatch):
    values, offset, top = HIGH_BIT_CASES[case]
    im = Image.fromarray(values) if case == "I;16" else Image.fromarray(values, "F" if case == "F" else "I")
    assert im.mode == case.split("-")[0]
    monkeypatch.setattr(decoding, "STRIP_PIXELS", 5)  # one row a strip: the extremes must be the frame's
    out = np.asarray(as_rgb(im))
    assert out.shape == (2, 5, 3)
    expected = _expected_grey(values, offset, top)
    assert np.array_equal(out[..., 0], expected) and np.array_equal(out[..., 1], expected)


def test_16_bit_grey_png_pixels_survive_open_image_exactly():
    rng = np.random.default_rng(2)
    values = rng.integers(0, 65536, (30, 40), dtype=np.uint16)
    out = np.asarray(open_image(_save(Image.fromarray(values), "PNG")))
    assert np.array_equal(out[..., 2], _expected_grey(values, 0, 65535))


def test_non_finite_floats_count_as_the_minimum():
    values = np.array([[np.nan, 0.0, 1.0, np.inf, -np.inf]], dtype=np.float32)
    out = np.asarray(as_rgb(Image.fromarray(values, "F")))[0, :, 0]
    assert out[1] == 0 and out[2] == 255 and out[0] == 0


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "I;16", "CMYK"])
def test_strips_and_reduction_give_the_same_image_as_one_piece(mode, monkeypatch):
    """Each box of the reduction lies inside one strip: strip size cannot change a pixel."""
    rng = np.random.default_rng(3)
    rgba = Image.fromarray(rng.integers(0, 255, (61, 97, 4), dtype=np.uint8), "RGBA")
    im = {
        "P": lambda: rgba.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE),
        "I;16": lambda: Image.fromarray(rng.integers(0, 65536, (61, 97), dtype=np.uint16)),
    }.get(mode, lambda: rgba.convert(mode))()
    whole = decoding._reduced(im, 3)
    monkeypatch.setattr(decoding, "STRIP_PIXELS", 97 * 4)  # 3 rows a strip
    assert np.array_equal(np.asarray(decoding._reduced(im, 3)), np.asarray(whole))
    assert whole.size == (33, 21)


def test_reducing_before_converting_matches_converting_then_shrinking():
    """The old order (convert at full size, then a Lanczos thumbnail) and the new one agree."""
    ramp = np.tile(np.linspace(0, 65535, 3000), (2000, 1)).astype(np.uint16)
    im = Image.fromarray(ramp)
    new = np.asarray(as_rgb(im, max_side=300), dtype=np.int16)
    old = Image.fromarray(_expected_grey(ramp, 0, 65535), "L")
    old.thumbnail((300, 300), Image.Resampling.LANCZOS)
    assert new.shape[:2] == (200, 300)
    assert np.abs(new[..., 0] - np.asarray(old, dtype=np.int16)).max() <= 1


def test_transparent_pixels_are_composited_on_white_exactly():
    colour, alpha = np.array([200, 40, 10]), np.array([0, 64, 128, 255])
    pixels = np.array([[[*colour, a] for a in alpha]], dtype=np.uint8)
    out = np.asarray(open_image(_save(Image.fromarray(pixels, "RGBA"), "PNG")), dtype=np.float64)[0]
    expected = (colour[None, :] * alpha[:, None] + 255 * (255 - alpha[:, None])) / 255
    assert np.abs(out - expected).max() <= 1


def test_exif_orientation_is_honoured_after_reduction():
    im = _rgb(400, 300)
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    out = open_image(_save(im, "PNG", exif=exif.tobytes()), max_side=100)
    assert out.size == (75, 100)
