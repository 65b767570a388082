"""The shareable-link codec (attnviz.ui.share_links): round trips, compression, bounds, hostile values."""

from __future__ import annotations

import base64
import zlib

import pytest

from attnviz.ui import share_links as sl
from attnviz.ui.share_links import Field, LinkError, decode_text, encode, encode_text, parse

FIELDS = [
    Field("text", "text"),
    Field("layer", "index"),
    Field("head", "index", words=("mean",)),
    Field("heads", "indices"),
    Field("view", "choice", choices=("Single head", "All heads of a layer", "A→B")),
    Field("hide", "flag"),
    Field("threshold", "number", low=0.01, high=0.5, step=0.01),
    Field("stat", "word"),
]

LONG = " ".join(f"The cat number {i} sat on the mat, and then it slept for a while." for i in range(60))


def test_streamlit_is_not_imported_by_the_codec():
    source = sl.__file__
    with open(source, encoding="utf-8") as f:
        assert "streamlit" not in f.read().split('"""', 2)[2]  # past the docstring


@pytest.mark.parametrize(
    "values",
    [
        {"text": "The cat sat.", "layer": 3, "head": 7, "view": "All heads of a layer", "hide": True},
        {"text": LONG, "heads": [0, 3, 11], "threshold": 0.07, "view": "A→B"},
        {"head": "mean", "stat": "cls_mass", "hide": False},
        {"text": "Ünïcödé ✓ 猫 $x$ **bold** <b>html</b> & = ? # %"},
        {"text": sl.PREFIX + "looks like a compressed value"},
        {"text": ""},
    ],
)
def test_round_trip(values):
    params, left_out = encode(values, FIELDS)
    assert not left_out
    assert all(isinstance(v, str) for v in params.values())
    back, problems = parse(params, FIELDS)
    assert problems == []
    assert back == values


def test_short_text_goes_raw_long_text_compressed_and_short():
    assert encode_text("The cat sat on the mat.") == "The cat sat on the mat."
    value = encode_text(LONG)
    assert value.startswith(sl.PREFIX)
    assert len(value) < len(LONG) / 3
    assert set(value[len(sl.PREFIX) :]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_text(value) == LONG


def test_length_bound():
    rng = __import__("random").Random(0)
    noise = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(20_000))
    assert encode_text(noise) is None  # incompressible text too long for an address: left out
    params, left_out = encode({"text": noise, "layer": 2}, FIELDS)
    assert left_out == ["text"] and params == {"layer": "2"}
    for n in (10, 1000, 5000):
        value = encode_text(noise[:n])
        assert value is None or len(value) <= sl.MAX_VALUE
    with pytest.raises(LinkError):
        decode_text("a" * (sl.MAX_VALUE + 1))


def test_zip_bomb_is_refused():
    bomb = sl.PREFIX + base64.urlsafe_b64encode(zlib.compress(b"a" * 3_000_000, 9)).decode().rstrip("=")
    assert len(bomb) < sl.MAX_VALUE
    with pytest.raises(LinkError, match="unpacks to more"):
        decode_text(bomb)


@pytest.mark.parametrize(
    "params, bad",
    [
        ({"text": "~zGARBAGE!!"}, "text"),
        ({"text": sl.PREFIX + base64.urlsafe_b64encode(zlib.compress(b"\xff\xfe")).decode()}, "text"),
        ({"text": sl.PREFIX + base64.urlsafe_b64encode(zlib.compress(b"abc"))[:-4].decode()}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"layer": "-1"}, "layer"),
        ({"layer": "3.5"}, "layer"),
        ({"layer": "1e9"}, "layer"),
        ({"layer": "99999999999999999999"}, "layer"),
        ({"layer": "NaN"}, "layer"),
        ({"head": "max"}, "head"),
        ({"heads": "1.x.3"}, "heads"),
        ({"heads": ".".join(["1"] * 100)}, "heads"),
        ({"view": "<script>alert(1)</script>"}, "view"),
        ({"hide": "maybe"}, "hide"),
        ({"threshold": "inf"}, "threshold"),
        ({"threshold": "0.9"}, "threshold"),
        ({"threshold": "-0.1"}, "threshold"),
        ({"stat": "__import__('os')"}, "stat"),
        ({"layer": "x" * 10_000}, "layer"),
    ],
)
def test_hostile_values_are_refused_with_a_reason(params, bad):
    values, problems = parse(params, FIELDS)
    assert bad not in values
    assert len(problems) == 1 and problems[0].startswith(f"`{bad}`")
    assert "<" not in problems[0] and "(" not in problems[0].split(":", 1)[1].split("is")[0]


def test_unknown_keys_are_ignored_and_repeated_keys_take_the_last():
    values, problems = parse({"embed": "true", "layer": ["1", "4"], "evil": "x"}, FIELDS)
    assert values == {"layer": 4} and problems == []


def test_choices_accept_their_slug_or_their_name():
    field = FIELDS[4]
    assert sl.parse_value(field, "single-head") == "Single head"
    assert sl.parse_value(field, "Single head") == "Single head"
    assert sl.parse_value(field, "a-b") == "A→B"
    assert sl.slug("All heads of a layer") == "all-heads-of-a-layer"


def test_numbers_snap_to_their_step():
    assert sl.parse_value(FIELDS[6], "0.071") == 0.07
    assert sl.encode_value(FIELDS[6], 0.05) == "0.05"
