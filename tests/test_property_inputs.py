"""Property-based tests: any text into text_attention, any bytes into open_image.

Each input either gives a well-formed result or raises ``attnviz.InputError``; nothing else
escapes (no tokenizer panic, no Pillow ``OSError``/``SyntaxError``/``struct.error``, no hang).
"""

from __future__ import annotations

import io
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

import attnviz
from attnviz.image.decoding import FORMAT_HINT

# Damaged EXIF blocks make Pillow warn while it reads them; the warning is not a failure.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")

# ----------------------------------------------------------------------------- text

#: Every code point Python allows in a str except surrogates (category Cs): controls, NUL,
#: combining marks, RTL letters, emoji, private use, unassigned.
ANY_CHAR = st.characters(exclude_categories=("Cs",))
#: Characters that are known to trouble tokenizers and word alignment.
AWKWARD = st.sampled_from(
    [
        "\x00",
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x1f",
        "\x7f",
        "\u0085",
        "\u00a0",
        "\u200b",
        "\u200d",
        "\u200e",
        "\u200f",
        "\u202e",  # RTL override
        "\u2028",
        "\ufeff",
        "\ufffd",
        "\u0301",  # combining acute
        "\u0308",
        "\u20dd",  # combining enclosing circle
        "e\u0301",
        "\u05e9\u05dc\u05d5\u05dd",  # Hebrew
        "\u0645\u0631\u062d\u0628\u0627",  # Arabic
        "\U0001f600",
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # ZWJ family
        "\U0001f1eb\U0001f1f7",  # flag
        "\u4e2d\u6587",
        "\uac00",
        "\U00010348",  # astral letter
        "\U000e0041",  # tag character
        "\U0010ffff",
        "\ud800",  # lone surrogates: half of a UTF-16 pair, an InputError (ANY_CHAR leaves them out)
        "\udfff",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "##ing",
        " ",
        ".",
    ]
)


@st.composite
def texts(draw) -> str:
    kind = draw(st.sampled_from(["any", "mixed", "long-run", "words"]))
    if kind == "any":
        return draw(st.text(ANY_CHAR, max_size=80))
    if kind == "mixed":
        parts = draw(st.lists(st.one_of(AWKWARD, st.text(ANY_CHAR, max_size=6)), max_size=25))
        return "".join(parts)
    if kind == "long-run":
        # Very long runs: one character or one word repeated past the model's 512-token limit.
        unit = draw(st.one_of(AWKWARD, st.text(ANY_CHAR, min_size=1, max_size=3), st.just("word ")))
        return unit * draw(st.integers(min_value=100, max_value=1200))
    words = draw(st.lists(st.sampled_from(["the", "cat", "sat", "on", "mat", "über", "naïve"]), max_size=12))
    return " ".join(words)


def _check_text_result(ta, n_layers: int, n_heads: int) -> None:
    n = len(ta.tokens)
    assert n >= 2
    assert ta.weights.dtype == np.float32
    assert ta.weights.shape == (n_layers, n_heads, n, n)
    assert np.isfinite(ta.weights).all()
    assert (ta.weights >= 0).all()
    np.testing.assert_allclose(ta.weights.sum(axis=-1), 1.0, atol=1e-4)
    assert ta.special.shape == ta.segment.shape == ta.word_index.shape == (n,)
    # Words are numbered 0..W-1 left to right, and every word has a text.
    assert ta.word_index.min() == 0 and ta.word_index.max() == len(ta.words) - 1
    assert (np.diff(ta.word_index) >= 0).all()
    assert all(isinstance(w, str) and w for w in ta.words)


@pytest.mark.bundled
@settings(
    max_examples=300,
    deadline=timedelta(seconds=5),  # a 512-token forward pass takes ~0.3 s on 2 busy cores
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(text=texts(), pair=st.one_of(st.none(), texts()))
def test_any_text_gives_weights_or_an_input_error(bundled_model, text, pair):
    try:
        ta = attnviz.text_attention(bundled_model, text, pair)
    except attnviz.InputError as exc:
        assert str(exc)
        return
    _check_text_result(ta, bundled_model.n_layers, bundled_model.n_heads)
    assert ta.n_tokens <= bundled_model.max_tokens
    assert ta.truncated == (ta.n_cut > 0)


# ----------------------------------------------------------------------------- images


def _seed_images() -> dict[str, bytes]:
    """Small valid files: the starting points that mutations damage."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    rgb = Image.fromarray(arr, "RGB")
    out = {}
    for name, im, fmt, kw in [
        ("png", rgb, "PNG", {}),
        ("png-rgba", rgb.convert("RGBA"), "PNG", {}),
        ("png-palette", rgb.convert("P"), "PNG", {"transparency": 0}),
        ("png-16bit", Image.fromarray(arr[..., 0].astype(np.uint16) * 257), "PNG", {}),
        ("jpeg", rgb, "JPEG", {"quality": 80}),
        ("jpeg-progressive", rgb, "JPEG", {"progressive": True}),
        ("jpeg-exif", rgb, "JPEG", {"exif": _exif()}),
        ("gif", rgb.convert("P"), "GIF", {}),
        ("webp", rgb, "WEBP", {}),
        ("bmp", rgb, "BMP", {}),
    ]:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **kw)
        out[name] = buf.getvalue()
    frames = [Image.new("P", (10, 8), i) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out["gif-animated"] = buf.getvalue()
    return out


def _exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    return exif.tobytes()


SEEDS = _seed_images()
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"GIF87a", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 "]


@st.composite
def mutated(draw) -> bytes:
    """A valid small image with bytes flipped, inserted, deleted, overwritten or cut off."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "int", "tail"]))
        if not data:
            break
        i = draw(st.integers(min_value=0, max_value=len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif op == "set":
            data[i] = draw(st.integers(min_value=0, max_value=255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[i : i + draw(st.integers(min_value=1, max_value=16))]
        elif op == "truncate":
            del data[i:]
        elif op == "tail":  # junk before the end marker: a GIF's next frame cut short, a JPEG's EOI lost
            data[-1:] = draw(st.binary(max_size=12))
        else:  # a size or length field set to an extreme: 0, 1, 0x7fff..., 0xffff...
            value = draw(st.sampled_from([b"\x00\x00", b"\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x00\x00\x01"]))
            data[i : i + len(value)] = value
    return bytes(data)


def _any_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.builds(lambda m, rest: m + rest, st.sampled_from(MAGIC), st.binary(max_size=300)),
    )


def _check_image(data: bytes, max_side: int | None = None) -> None:
    try:
        im = attnviz.open_image(data, max_side=max_side)
    except attnviz.InputError as exc:
        message = str(exc)
        assert message
        return
    assert isinstance(im, Image.Image)
    assert im.mode == "RGB"
    assert im.width >= 1 and im.height >= 1
    im.tobytes()  # fully decoded


IMAGE_SETTINGS = settings(
    max_examples=300,
    deadline=timedelta(seconds=3),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@IMAGE_SETTINGS
# Found by fuzzing: Pillow counts a GIF's frames by reading the next frame's header, and a
# header cut short raised struct.error / IndexError out of open_image.
@example(data=SEEDS["gif-animated"][:-1] + b"\x2c\x00\x00", max_side=None)
@example(data=SEEDS["gif-animated"][:-1] + b"\x2c\x00\x00\x00\x00", max_side=None)
@example(data=SEEDS["gif"][:-1] + b"\x21", max_side=1024)
@given(data=mutated(), max_side=st.sampled_from([None, 8, 1024]))  # the app decodes with max_side=1024
def test_mutated_images_open_or_raise_an_input_error(data, max_side):
    _check_image(data, max_side)


@pytest.mark.parametrize("tail", [b"\x2c\x00\x00", b"\x2c\x00\x00\x00\x00", b"\x21"])
@pytest.mark.parametrize("seed", ["gif", "gif-animated"])
def test_gif_with_a_cut_frame_header_is_an_input_error(seed, tail):
    """Regression: these raised struct.error / IndexError from Pillow's frame counting."""
    with pytest.raises(attnviz.InputError) as info:
        attnviz.open_image(SEEDS[seed][:-1] + tail)
    assert FORMAT_HINT in str(info.value)


def test_every_truncation_and_byte_flip_of_each_seed():
    """A systematic sweep (about 27,000 files, ~2 s): every prefix, and each byte flipped, zeroed, deleted."""
    for data in SEEDS.values():
        for i in range(len(data)):
            for damaged in (
                data[:i],
                data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :],
                data[:i] + b"\x00" + data[i + 1 :],
                data[:i] + data[i + 1 :],
            ):
                _check_image(damaged)


@IMAGE_SETTINGS
@given(data=_any_bytes())
def test_random_bytes_open_or_raise_an_input_error(data):
    _check_image(data)


def test_input_error_messages_name_the_formats_that_work():
    """Every refusal of a damaged or foreign file says which formats do work."""
    for data in [b"hello", SEEDS["png"][:40], SEEDS["jpeg"][:200], SEEDS["gif"][:30], MAGIC[0] + b"\x00" * 30]:
        with pytest.raises(attnviz.InputError) as info:
            attnviz.open_image(data)
        assert FORMAT_HINT in str(info.value)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_images_are_valid(name):
    """The mutation seeds open cleanly, so the mutated tests start from real files."""
    im = attnviz.open_image(SEEDS[name])
    assert im.mode == "RGB"
