"""Plotly figures: values, safe and unique labels, the click layer, mosaics and the payload budget."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import plotly.graph_objects as go
import pytest
from matplotlib import colormaps
from PIL import Image

import attnviz
from attnviz import figures, text_attention
from attnviz.figures.labels import ZWSP
from attnviz.figures.overlay import COLUMN_PX, overlay, predictions_bar, small_multiples
from attnviz.text.views import AttentionView
from tests.helpers import constructed_view

TOKENS = ["[CLS]", "the", "<b>x</b>", "$x$", "cat", "the", "sat", "&amp;", "[SEP]"]


def decode_png(source: str) -> Image.Image:
    prefix = "data:image/png;base64,"
    assert source.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(source[len(prefix) :])))
    assert image.format == "PNG"
    return image


def line_segments(fig: go.Figure) -> dict[str, set[tuple[int, int]]]:
    """(query row, key row) of every drawn line, per head name; each segment is x 0→1 then a NaN gap."""
    out: dict[str, set[tuple[int, int]]] = {}
    count: dict[str, int] = {}
    for trace in fig.data:
        if trace.mode != "lines" or trace.x is None or len(trace.x) < 3:
            continue
        x, y = np.asarray(trace.x, dtype=float), np.asarray(trace.y, dtype=float)
        assert len(x) % 3 == 0
        np.testing.assert_array_equal(x[0::3], 0.0)
        np.testing.assert_array_equal(x[1::3], 1.0)
        assert np.isnan(x[2::3]).all() and np.isnan(y[2::3]).all()
        pairs = {(int(a), int(b)) for a, b in zip(y[0::3], y[1::3], strict=True)}
        out.setdefault(trace.name, set()).update(pairs)
        count[trace.name] = count.get(trace.name, 0) + len(x) // 3
    for name, pairs in out.items():
        assert count[name] == len(pairs), f"{name}: a segment is drawn twice"
    return out


@pytest.fixture
def view(rng):
    return constructed_view(rng, TOKENS)


@pytest.mark.parametrize("layer, head", [(0, 0), (1, 2)])
def test_head_matrix_z_is_the_view_weights(view, layer, head):
    fig = figures.head_matrix(view, layer, head)
    heatmap = fig.data[0]
    assert isinstance(heatmap, go.Heatmap)
    np.testing.assert_array_equal(np.asarray(heatmap.z), view.weights[layer, head])
    assert heatmap.zmin == 0 and heatmap.zmax == 1.0
    assert f"Layer {layer}" in fig.layout.title.text and f"head {head}" in fig.layout.title.text


def test_head_matrix_scale_head_max(view):
    fig = figures.head_matrix(view, 1, 1, scale="head max")
    assert fig.data[0].zmax == pytest.approx(float(view.weights[1, 1].max()))


def test_head_matrix_labels_are_unique_and_escaped(view):
    fig = figures.head_matrix(view, 0, 0)
    x = list(fig.data[0].x)
    ticks = list(fig.layout.yaxis.ticktext)
    for labels in (x, ticks):
        assert len(labels) == len(TOKENS)
        assert len(set(labels)) == len(labels), "repeated tokens collapsed into one label"
        assert not any("<b>" in label or "</b>" in label for label in labels)
        assert not any(label.startswith("$") for label in labels)
        # Stripping the invisible disambiguators gives back the escaped token text.
        assert [label.replace(ZWSP, "") for label in labels][2] == "&lt;b&gt;x&lt;/b&gt;"
        assert [label.replace(ZWSP, "") for label in labels][7] == "&amp;amp;"
        assert labels[1].replace(ZWSP, "") == labels[5].replace(ZWSP, "") == "the"
        assert labels[3].replace(ZWSP, "") == "$x$"
    assert "<b>" not in json.dumps([x, ticks])


def test_labels_do_not_obey_bidi_or_control_characters(rng):
    tokens = ["[CLS]", "\u202eevil", "tab\there", "\u2066iso\u2069", "[SEP]"]
    view = constructed_view(rng, tokens, n_layers=1, n_heads=1)
    matrix = figures.head_matrix(view, 0, 0)
    lines = figures.head_lines(view, 0, [0])
    shown = [
        *matrix.data[0].x,
        *matrix.layout.yaxis.ticktext,
        *figures.token_heads(view, 1).data[0].x,
        figures.token_heads(view, 1).layout.title.text,
        *[label for trace in lines.data if trace.mode == "text" for label in trace.text],
    ]
    assert len(shown) == 5 * len(tokens) + 1
    for label in shown:
        assert not any(ch in label for ch in ("\u202e", "\t", "\u2066", "\u2069")), repr(label)
    assert any("evil" in label for label in matrix.data[0].x)


def test_head_matrix_click_layer_up_to_256_tokens(rng):
    tokens = [f"tok{i % 50}" for i in range(256)]
    view = constructed_view(rng, tokens, n_layers=1, n_heads=1)
    assert figures.is_clickable(view)
    fig = figures.head_matrix(view, 0, 0)
    (layer,) = [t for t in fig.data if isinstance(t, go.Scatter)]  # one trace: Plotly's cost is per trace
    assert layer.marker.opacity == 0
    assert layer.marker.maxdisplayed == 1  # hover and click see every point, the DOM gets one
    rows, cols = np.asarray(layer.y), np.asarray(layer.x)
    assert rows.itemsize == cols.itemsize == 1  # a coordinate in one byte up to 256 tokens
    # A point on every cell, each carrying that cell's weight.
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) == len(rows) == 256 * 256
    np.testing.assert_array_equal(np.asarray(layer.marker.color), view.weights[0, 0][rows, cols])
    # Its axes lie over the heatmap's cell for cell, draw nothing, and name every token for the hover.
    assert (layer.xaxis, layer.yaxis) == ("x2", "y2")
    x2, y2 = fig.layout.xaxis2, fig.layout.yaxis2
    assert (x2.overlaying, y2.overlaying) == ("x", "y")
    assert list(x2.range) == list(fig.layout.xaxis.range) == [-0.5, 255.5]
    assert list(y2.range) == list(fig.layout.yaxis.range) == [255.5, -0.5]
    assert not x2.showticklabels and not y2.showticklabels
    assert list(x2.tickvals) == list(y2.tickvals) == list(range(256))
    assert list(x2.ticktext) == list(fig.data[0].x) and list(y2.ticktext) == list(fig.data[0].y)
    assert fig.layout.xaxis.fixedrange and fig.layout.yaxis.fixedrange  # no zoom: the layer stays on its cells
    assert fig.data[0].hoverinfo == "skip"
    # Rows are labelled sparsely (drawing 256 labels was slow); each label names its row.
    labels = list(fig.data[0].y)
    assert list(fig.layout.yaxis.tickvals) == list(fig.layout.yaxis.ticktext)  # a category's own name
    assert 0 < len(fig.layout.yaxis.tickvals) <= figures.matrix.MAX_ROW_LABELS
    for label in fig.layout.yaxis.tickvals:
        assert label.replace("\u200b", "") == tokens[labels.index(label)]


def test_head_matrix_labels_every_row_of_a_short_sentence(view):
    fig = figures.head_matrix(view, 0, 0)
    assert list(fig.layout.yaxis.tickvals) == list(fig.data[0].y)


def test_head_matrix_colours_run_from_light_to_dark(view):
    # Built unvalidated, a bare "Blues" went to the browser, where plotly.js's own "Blues" runs from dark
    # blue (weight 0) to light grey (weight 1): the opposite of every other chart and of the PNG export.
    scale = figures.head_matrix(view, 0, 0).data[0].colorscale
    first, last = (sum(int(v) for v in colour[4:-1].split(",")) for _, colour in (scale[0], scale[-1]))
    assert scale[0][0] == 0 and scale[-1][0] == 1 and first > last  # weight 0 light, weight 1 dark
    assert [list(stop) for stop in scale] == [list(stop) for stop in go.Heatmap(colorscale="Blues").colorscale]


def test_head_matrix_row_labels_that_look_like_numbers_stay_on_their_rows(rng):
    # Tick values that were row numbers put the label of token "1" (row 3) on row 1 and left row 3 bare.
    tokens = ["[CLS]", "a", "=", "1", "0", "[SEP]"]
    fig = figures.head_matrix(constructed_view(rng, tokens, n_layers=1, n_heads=1), 0, 0, selected_query=3)
    assert list(fig.data[0].y) == tokens
    assert list(fig.layout.yaxis.tickvals) == list(fig.layout.yaxis.ticktext) == tokens
    shape = fig.layout.shapes[0]
    assert shape.yref == "paper" and (shape.y0, shape.y1) == pytest.approx((2 / 6, 3 / 6))  # rows 3 of 6 from the top


def test_head_matrix_has_no_click_layer_above_256_tokens(rng):
    tokens = [f"tok{i % 50}" for i in range(257)]
    view = constructed_view(rng, tokens, n_layers=1, n_heads=1)
    assert not figures.is_clickable(view)
    fig = figures.head_matrix(view, 0, 0)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), view.weights[0, 0])
    assert len(set(fig.data[0].y)) == 257  # categorical rows keep the repeated tokens apart


def test_head_matrix_selected_query_outline(view):
    fig = figures.head_matrix(view, 0, 0, selected_query=3)
    assert len(fig.layout.shapes) == 1
    shape = fig.layout.shapes[0]
    n = len(view.query_tokens)
    # Row 3 of n rows that fill the plot from the top (the y axis's range is exactly the rows).
    assert list(fig.layout.yaxis.range) == [n - 0.5, -0.5]
    assert shape.yref == "paper" and (shape.y0, shape.y1) == pytest.approx((1 - 4 / n, 1 - 3 / n))
    assert len(figures.head_matrix(view, 0, 0, selected_query=99).layout.shapes) == 0


def test_token_heads_rows_are_every_layer_and_head(view):
    query = 4
    fig = figures.token_heads(view, query)
    heatmap = fig.data[0]
    z = np.asarray(heatmap.z)
    assert z.shape == (view.n_layers * view.n_heads, len(view.key_tokens))
    for l in range(view.n_layers):
        for h in range(view.n_heads):
            np.testing.assert_array_equal(z[l * view.n_heads + h], view.weights[l, h, query])
    assert list(heatmap.y) == [f"L{l} H{h}" for l in range(view.n_layers) for h in range(view.n_heads)]
    assert len(set(heatmap.x)) == len(view.key_tokens)
    assert "cat" in fig.layout.title.text


def test_token_heads_escapes_the_title(view):
    fig = figures.token_heads(view, 2)
    assert "<b>" not in fig.layout.title.text


def test_layer_heads_mosaic(rng):
    tokens = [f"w{i}" for i in range(40)]  # large enough for full 128-pixel tiles
    n_heads = 6
    view = constructed_view(rng, tokens, n_layers=2, n_heads=n_heads)
    fig = figures.layer_heads(view, 1)
    images = [t for t in fig.data if isinstance(t, go.Image)]
    assert len(images) == 1
    image = decode_png(images[0].source)
    size, gap, n_cols = 128, 3, 4
    row_gap = round(0.14 * size)  # room for every tile's "head h" above it
    n_rows = -(-n_heads // n_cols)
    assert image.size == (n_cols * size + (n_cols - 1) * gap, n_rows * size + (n_rows - 1) * row_gap)
    points = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert len(points) == 1 and len(points[0].x) == n_heads
    assert list(points[0].hovertext) == [f"layer 1 · head {h}" for h in range(n_heads)]
    np.testing.assert_allclose(np.asarray(points[0].customdata), view.weights[1].reshape(n_heads, -1).max(axis=1))
    # Each scatter point sits on the centre of its tile.
    for h in range(n_heads):
        r, c = divmod(h, n_cols)
        assert points[0].x[h] == pytest.approx(c * (size + gap) + size / 2)
        assert points[0].y[h] == pytest.approx(r * (size + row_gap) + size / 2)


def test_model_overview_mosaic_and_tile_colours(rng):
    n_layers, n_heads, n, size, gap = 3, 5, 12, 48, 3
    # Head (l, h) is a constant matrix, so its whole tile is one known colour.
    levels = np.linspace(0.05, 0.95, n_layers * n_heads).reshape(n_layers, n_heads)
    weights = np.broadcast_to(levels[:, :, None, None], (n_layers, n_heads, n, n)).astype(np.float32)
    tokens = [f"t{i}" for i in range(n)]
    view = AttentionView(tokens, tokens, weights, np.arange(n), np.arange(n), "constant heads")
    fig = figures.model_overview(view, scale="fixed")
    images = [t for t in fig.data if isinstance(t, go.Image)]
    assert len(images) == 1
    image = decode_png(images[0].source).convert("RGB")
    assert image.size == (n_heads * size + (n_heads - 1) * gap, n_layers * size + (n_layers - 1) * gap)
    pixels = np.asarray(image)
    cmap = colormaps["Blues"]
    for l in range(n_layers):
        for h in range(n_heads):
            y, x = l * (size + gap) + size // 2, h * (size + gap) + size // 2
            expected = np.array(cmap(float(levels[l, h]))[:3]) * 255
            np.testing.assert_allclose(pixels[y, x], expected, atol=2)
    # The gaps between tiles are white.
    np.testing.assert_array_equal(pixels[:, size : size + gap], 255)
    points = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert len(points) == 1 and len(points[0].x) == n_layers * n_heads
    assert points[0].marker.opacity == 0


def test_model_overview_of_the_tiny_model(tiny_model):
    ta = text_attention(tiny_model, "The cat sat on the mat.")
    view = attnviz.make_view(ta)
    fig = figures.model_overview(view)
    image = decode_png([t for t in fig.data if isinstance(t, go.Image)][0].source)
    assert image.size == (4 * 48 + 3 * 3, 2 * 48 + 1 * 3)
    points = [t for t in fig.data if isinstance(t, go.Scatter)][0]
    assert len(points.x) == 8


@pytest.mark.parametrize("threshold", [0.05, 0.1, 0.3])
def test_head_lines_draw_exactly_the_weights_over_threshold(rng, threshold):
    view = constructed_view(rng, TOKENS, n_layers=2, n_heads=4)
    heads = [0, 2, 3]
    fig = figures.head_lines(view, 1, heads, threshold=threshold)
    drawn = line_segments(fig)
    for h in heads:
        w = view.weights[1, h]
        expected = {(i, j) for i in range(w.shape[0]) for j in range(w.shape[1]) if w[i, j] >= threshold}
        assert drawn.get(f"head {h}", set()) == expected
    assert "head 1" not in drawn
    total = sum(len(v) for v in drawn.values())
    assert total == sum(int((view.weights[1, h] >= threshold).sum()) for h in heads)


@pytest.mark.parametrize("threshold", [0.0, -0.1])
def test_head_lines_refuse_a_threshold_that_would_draw_every_line(rng, threshold):
    view = constructed_view(rng, TOKENS, n_layers=1, n_heads=2)
    with pytest.raises(ValueError, match="threshold"):
        figures.head_lines(view, 0, [0, 1], threshold=threshold, query=3)


@pytest.mark.parametrize("threshold", [1e-9, 0.05, 0.2])
def test_head_lines_from_one_query(rng, threshold):
    view = constructed_view(rng, TOKENS, n_layers=1, n_heads=2)
    query = 3
    drawn = line_segments(figures.head_lines(view, 0, [0, 1], threshold=threshold, query=query))
    for h in (0, 1):
        w = view.weights[0, h]
        expected = {(query, j) for j in range(w.shape[1]) if w[query, j] >= threshold}
        assert drawn.get(f"head {h}", set()) == expected, f"lines from rows other than {query} were drawn"


def test_head_lines_labels_are_escaped(view):
    fig = figures.head_lines(view, 0, [0])
    texts = [t for t in fig.data if t.mode == "text"]
    assert len(texts) == 2
    for trace in texts:
        assert len(trace.text) == len(TOKENS)
        assert not any("<b>" in s or s.startswith("$") for s in trace.text)


@pytest.mark.bundled
def test_model_overview_of_128_tokens_stays_under_300_kb(bundled_model):
    paragraph = (
        "Attention lets every token of a sentence look at every other token, and each head learns its own "
        "pattern: some follow the previous word, some the next, some gather at the full stop or the separator, "
        "and a few link a pronoun to the noun it stands for, which is what this tool is meant to reveal. "
    ) * 4
    words = paragraph.split()
    k = max(k for k in range(len(words) + 1) if len(bundled_model.tokenizer(" ".join(words[:k]))["input_ids"]) <= 128)
    text = " ".join(words[:k] + ["a"] * (128 - len(bundled_model.tokenizer(" ".join(words[:k]))["input_ids"])))
    ta = text_attention(bundled_model, text)
    assert ta.n_tokens == 128
    view = attnviz.make_view(ta)
    for scale in ("head max", "fixed"):
        size = len(figures.model_overview(view, scale=scale).to_json().encode("utf-8"))
        assert size < 300_000, f"{scale}: {size} bytes"


# ------------------------------------------- model-supplied names are text

HOSTILE_CLASSES = [
    '<a href="http://evil.example">link</a>',
    "<b>bold</b>",
    "![x](http://evil.example/pixel.png)",
    "$\\frac{1}{2}$",
    "<img src=x onerror=alert(1)>",
    "line<br>break",
    "&lt;b&gt;entity",
    "[click](http://evil.example)",
]


def _no_live_markup(text: str) -> None:
    """Plotly renders <a>, <b>, <br>, <img>-like tags and entities, and $...$ as LaTeX."""
    assert "<" not in text and ">" not in text, text
    assert "&lt;b&gt;entity" not in text or "&amp;lt;" in text, text  # an entity shows as written
    assert not text.startswith("$"), text


def test_predictions_bar_shows_class_names_as_text():
    predictions = [(name, 0.3 - 0.01 * i) for i, name in enumerate(HOSTILE_CLASSES)]
    fig = predictions_bar(predictions, k=8, chosen=HOSTILE_CLASSES[1])
    (bar,) = fig.data
    assert len(set(bar.y)) == 8
    for label in bar.y:
        _no_live_markup(label)
    assert list(bar.marker.color).count("#d62728") == 1  # the chosen class is still the highlighted one
    assert bar.y[list(bar.marker.color).index("#d62728")].startswith("&lt;b&gt;bold")


def test_image_figure_titles_are_text():
    image = Image.new("RGB", (64, 64), (100, 100, 100))
    grid = np.full((8, 8), 1 / 64, dtype=np.float32)
    maps = [(f"Grad-CAM: {name}", grid) for name in HOSTILE_CLASSES]
    annotations = small_multiples(image, maps).layout.annotations
    assert len(annotations) == len(maps)
    for annotation in annotations:
        _no_live_markup(annotation.text)
    assert annotations[0].text == 'Grad-CAM: &lt;a href="http://evil.example"&gt;link&lt;/a&gt;'  # whole, not cut
    _no_live_markup(overlay(image, grid, title=f"Class {HOSTILE_CLASSES[0]}").layout.title.text)


# ------------------------------------- a 1 x 40,000 image's overlay is clickable


def _cell_px(fig: go.Figure, rows: int, cols: int) -> tuple[float, float]:
    """On-screen (width, height) of one grid cell, in pixels, when the figure fills the page's column.

    The y axis is anchored to x (one unit is the same length on both), so the plot takes the largest
    scale at which the whole x and y ranges fit the column's width and the figure's height.
    """
    x0, x1 = fig.layout.xaxis.range
    y1, y0 = fig.layout.yaxis.range
    assert fig.layout.yaxis.scaleanchor == "x"
    margin = fig.layout.margin
    scale = min(COLUMN_PX / (x1 - x0), (fig.layout.height - margin.t - margin.b) / (y1 - y0))
    return (x1 - x0) / cols * scale, (y1 - y0) / rows * scale


@pytest.mark.parametrize("size", [(1, 40_000), (40_000, 1), (3, 2000), (64, 64), (4000, 3000), (1, 1)])
def test_every_overlay_cell_is_large_enough_to_click(size):
    from attnviz.figures.overlay import display_image

    shown = display_image(Image.new("RGB", size, (90, 90, 90)).resize(_fit(size), Image.Resampling.NEAREST))
    fig = overlay(shown, np.ones((8, 8), dtype=np.float32) / 64, clickable=True, title="t")
    width, height = _cell_px(fig, 8, 8)
    assert width >= 12 and height >= 12, f"{size}: cells of {width:.2f} x {height:.2f} px"
    (scatter,) = [t for t in fig.data if t.type == "scatter"]
    x0, x1 = fig.layout.xaxis.range
    y1, y0 = fig.layout.yaxis.range
    assert x0 <= min(scatter.x) and max(scatter.x) <= x1 and y0 <= min(scatter.y) and max(scatter.y) <= y1
    (image,) = fig.layout.images
    assert (image.sizex, image.sizey) == (x1 - x0, y1 - y0)  # the picture fills the cells it is clicked on
    # Plotly selects the nearest point within 20 px of its edge: every part of a cell is that close.
    assert scatter.marker.size / 2 + 20 >= max(width, height) / 2


def _fit(size: tuple[int, int], side: int = 1024) -> tuple[int, int]:
    """The size open_image(max_side=1024) gives (Pillow's thumbnail keeps at least 1 pixel a side)."""
    w, h = size
    scale = min(1.0, side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))


def test_small_multiples_of_an_extreme_image_keep_visible_panels():
    shown = Image.new("RGB", (1, 512))
    fig = small_multiples(shown, [("a", np.ones((8, 8))), ("b", np.ones((8, 8)))], n_cols=2)
    x0, x1 = fig.layout.xaxis.range
    y1, y0 = fig.layout.yaxis.range
    assert (y1 - y0) / (x1 - x0) <= 4
