"""Files: the .npz round trip, the per-head CSV, and static PNGs of every view."""

from __future__ import annotations

import csv
import dataclasses
import io
import zipfile

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz import text_attention
from attnviz.export import attention_npz, head_csv
from attnviz.export import png as png_export
from tests.helpers import constructed_pair, constructed_view

ODD_TOKENS = ["[CLS]", "$", "price", "$x$", "猫", "座った", "<b>", "\\", "a_b^c", "[SEP]"]


def test_npz_round_trip(tiny_model):
    ta = text_attention(tiny_model, "Where did the Cat sit?", "On the mat.")
    data = np.load(io.BytesIO(attention_npz(ta)), allow_pickle=False)
    np.testing.assert_array_equal(data["weights"], ta.weights)
    assert data["weights"].dtype == np.float32
    assert data["tokens"].tolist() == ta.tokens
    assert data["words"].tolist() == ta.words
    np.testing.assert_array_equal(data["special"], ta.special)
    np.testing.assert_array_equal(data["segment"], ta.segment)
    np.testing.assert_array_equal(data["word_index"], ta.word_index)
    assert str(data["text"]) == ta.text
    assert str(data["text_pair"]) == ta.text_pair
    assert str(data["model"]) == ta.model_name


def test_npz_round_trip_of_odd_tokens(rng):
    ta = constructed_pair(rng)
    odd = ["[CLS]", "$x$", "猫", "👍🏽", "", "a,b", '"q"', "[SEP]", "é", "x y", "[SEP]"]
    ta = dataclasses.replace(ta, tokens=odd, text_pair=None)
    blob = attention_npz(ta)
    assert zipfile.is_zipfile(io.BytesIO(blob))
    data = np.load(io.BytesIO(blob), allow_pickle=False)
    assert data["tokens"].tolist() == odd
    np.testing.assert_array_equal(data["weights"], ta.weights)
    assert str(data["text_pair"]) == ""


@pytest.mark.parametrize("words, block, hide", [(False, "All", False), (True, "A→B", False), (True, "All", True)])
def test_head_csv(rng, words, block, hide):
    ta = constructed_pair(rng)
    view = attnviz.make_view(ta, words=words, block=block, hide_special=hide)
    layer, head = 1, 2
    rows = list(csv.reader(io.StringIO(head_csv(view, layer, head).decode("utf-8"))))
    assert rows[0] == ["layer", "head", "query_index", "query", "key_index", "key", "weight"]
    data = rows[1:]
    n_q, n_k = len(view.query_tokens), len(view.key_tokens)
    assert len(data) == n_q * n_k
    for row in data:
        assert (int(row[0]), int(row[1])) == (layer, head)
    got = np.zeros((n_q, n_k))
    for idx, row in enumerate(data):
        i, j = divmod(idx, n_k)
        assert int(row[2]) == view.query_positions[i] and row[3] == view.query_tokens[i]
        assert int(row[4]) == view.key_positions[j] and row[5] == view.key_tokens[j]
        got[i, j] = float(row[6])
    np.testing.assert_allclose(got, view.weights[layer, head], atol=5e-7)


def test_head_csv_quotes_commas_and_quotes(rng):
    tokens = ["[CLS]", "a,b", '"q"', "new\nline", "[SEP]"]
    view = constructed_view(rng, tokens, n_layers=1, n_heads=1)
    rows = list(csv.reader(io.StringIO(head_csv(view, 0, 0).decode("utf-8"), newline="")))
    assert len(rows) == 1 + 25
    assert [r[3] for r in rows[1::5]] == tokens


def is_png(data: bytes) -> tuple[int, int]:
    assert isinstance(data, bytes) and data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image.size


PNG_FUNCTIONS = sorted(name for name in dir(png_export) if name.endswith("_png") and not name.startswith("_"))


def call_png(name: str, view) -> bytes:
    fn = getattr(png_export, name)
    if name == "head_matrix_png":
        return fn(view, 1, 0)
    if name == "layer_heads_png":
        return fn(view, 1, scale="head max")
    if name == "overview_png":
        return fn(view)
    if name == "token_heads_png":
        return fn(view, 1)
    if name == "head_lines_png":
        return fn(view, 0, [0, 1], threshold=0.1)
    if name == "grid_png":
        matrices = view.weights[0]  # (heads, q, k)
        return fn(matrices, [f"猫 {h}" for h in range(len(matrices))], 2, "grid")
    raise AssertionError(f"no call written for attnviz.export.png.{name}: add one")


def test_every_png_function_is_covered():
    assert set(PNG_FUNCTIONS) == {
        "grid_png",
        "head_lines_png",
        "head_matrix_png",
        "layer_heads_png",
        "overview_png",
        "token_heads_png",
    }


@pytest.mark.parametrize("name", PNG_FUNCTIONS)
def test_png_exports_with_dollars_and_cjk(rng, name):
    view = constructed_view(rng, ODD_TOKENS, n_layers=2, n_heads=2)
    width, height = is_png(call_png(name, view))
    assert width > 50 and height > 50


@pytest.mark.parametrize("name", PNG_FUNCTIONS)
def test_png_exports_of_the_tiny_model(tiny_model, name):
    ta = text_attention(tiny_model, "The cat sat on the mat.", "Where did it sit?")
    view = attnviz.make_view(ta, words=True, block="A→B")
    is_png(call_png(name, view))


def test_token_heads_png_title_shows_the_token_as_typed(rng, monkeypatch):
    """A "$" token must show as "$" in the title, not as a backslash and a dollar."""
    captured = []
    original = png_export._png
    monkeypatch.setattr(png_export, "_png", lambda fig, *a: captured.append(fig) or original(fig, *a))
    view = constructed_view(rng, ["[CLS]", "$", "[SEP]"], n_layers=1, n_heads=1)
    png_export.token_heads_png(view, 1)
    title = captured[0].axes[0].title
    # What matplotlib draws: the text after its own "$" handling (math or escaped dollars).
    drawn, _ = title._preprocess_math(title.get_text())
    assert "\\" not in drawn, f"the title reads {drawn!r}"


def test_head_matrix_png_labels_escape_dollars(rng, monkeypatch):
    captured = []
    original = png_export._png
    monkeypatch.setattr(png_export, "_png", lambda fig, *a: captured.append(fig) or original(fig, *a))
    view = constructed_view(rng, ODD_TOKENS, n_layers=1, n_heads=1)
    png_export.head_matrix_png(view, 0, 0)
    ax = captured[0].axes[0]
    for tick in ax.get_xticklabels():
        drawn, math = tick._preprocess_math(tick.get_text())
        assert not math
        assert drawn in ODD_TOKENS
    assert [t.get_text().replace("\\$", "$") for t in ax.get_yticklabels()] == ODD_TOKENS


# ---------------------------------------------------------------- spreadsheet formulas

#: Words a spreadsheet would run as formulas; the space-splitting tokenizer keeps each one whole.
FORMULA_WORDS = ['=HYPERLINK("http://evil.example","Click")', "+1", "-2", "@SUM(A1)"]


@pytest.fixture(scope="module")
def space_split_model(tmp_path_factory):
    from tests.space_split_model import write_space_split_model

    return attnviz.load_text_model(str(write_space_split_model(tmp_path_factory.mktemp("space_split"))), device="cpu")


def _cells(data: bytes, column: int) -> list[str]:
    return [row[column] for row in csv.reader(io.StringIO(data.decode("utf-8"), newline=""))][1:]


def test_word_mode_head_csv_does_not_export_formulas(space_split_model):
    ta = text_attention(space_split_model, " ".join(["the", *FORMULA_WORDS, "cat"]))
    view = attnviz.make_view(ta, words=True)
    assert view.query_tokens[2:6] == FORMULA_WORDS  # the words as typed, one cell each
    data = head_csv(view, 0, 0)
    queries, keys = set(_cells(data, 3)), set(_cells(data, 5))
    expected = {"[CLS]", "the", *(f"'{w}" for w in FORMULA_WORDS), "cat", "[SEP]"}
    assert queries == keys == expected
    assert {float(w) for w in _cells(data, 6)} <= set(np.round(view.weights[0, 0].ravel().astype(float), 6))


def test_word_mode_rollout_csv_does_not_export_formulas(space_split_model):
    from attnviz.export.rollout_files import rollout_csv
    from attnviz.text.views import rollout_view

    ta = text_attention(space_split_model, " ".join(["the", *FORMULA_WORDS]), "cat")
    data = rollout_csv(rollout_view(ta, words=True))
    expected = {"[CLS]", "the", *(f"'{w}" for w in FORMULA_WORDS), "[SEP]", "cat"}
    assert set(_cells(data, 1)) == set(_cells(data, 3)) == expected


def test_head_csv_neutralises_tab_and_carriage_return_tokens(rng):
    """No tokenizer here keeps a leading tab or CR, but a model's vocabulary may: crafted tokens."""
    tokens = ["[CLS]", "\tcmd", "\r=1+1", "a-b", "x@y", "[SEP]"]
    view = constructed_view(rng, tokens, n_layers=1, n_heads=1)
    assert _cells(head_csv(view, 0, 0), 3)[:: len(tokens)] == ["[CLS]", "'\tcmd", "'\r=1+1", "a-b", "x@y", "[SEP]"]


# ---------------------------------------------------------------- large PNGs


@pytest.mark.parametrize("export", ["head_matrix", "rollout", "token_heads"])
def test_a_512_token_png_labels_at_most_64_tokens_per_axis_like_the_page(rng, monkeypatch, export):
    """1,024 tick labels laid out twice (tight bounding box) made a 512-token export take 4-17 s."""
    from attnviz.export import rollout_files
    from attnviz.figures.matrix import MAX_ROW_LABELS

    captured = []
    original = png_export._png
    monkeypatch.setattr(png_export, "_png", lambda fig, *a: captured.append(fig) or original(fig, *a))
    monkeypatch.setattr(rollout_files, "_png", png_export._png)
    tokens = [f"t{i}" for i in range(512)]
    view = constructed_view(rng, tokens, n_layers=1, n_heads=1)
    {
        "head_matrix": lambda: png_export.head_matrix_png(view, 0, 0),
        "rollout": lambda: rollout_files.rollout_png(view),
        "token_heads": lambda: png_export.token_heads_png(view, 3),
    }[export]()
    ax = captured[0].axes[0]
    step = 512 // MAX_ROW_LABELS
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens[::step]
    assert list(ax.get_xticks()) == list(range(0, 512, step))
    assert f"every {step}th" in ax.get_xlabel()
    if export != "token_heads":  # its rows are the 1 x 1 layers and heads
        assert [t.get_text() for t in ax.get_yticklabels()] == tokens[::step]
    assert ax.get_images()[0].get_interpolation() == "nearest"


def test_a_64_token_png_still_labels_every_token(rng, monkeypatch):
    captured = []
    original = png_export._png
    monkeypatch.setattr(png_export, "_png", lambda fig, *a: captured.append(fig) or original(fig, *a))
    tokens = [f"t{i}" for i in range(64)]
    png_export.head_matrix_png(constructed_view(rng, tokens, n_layers=1, n_heads=1), 0, 0)
    ax = captured[0].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens == [t.get_text() for t in ax.get_yticklabels()]
    assert ax.get_xlabel() == ""
