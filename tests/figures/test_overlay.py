"""Image figures (attnviz.figures.overlay): the map over the image, small multiples, prediction bars.

Each figure is read back as the browser gets it: the heatmap's numbers are the map's, its cells sit
on the image's grid, the image is the one given, and every title and label is plain text.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image
from plotly.colors import get_colorscale, hex_to_rgb, unlabel_rgb

from attnviz.figures.labels import MAX_TITLE, ZWSP
from attnviz.figures.overlay import (
    DISPLAY_SIDE,
    MIN_DISPLAY_SIDE,
    fading_colorscale,
    overlay,
    predictions_bar,
    small_multiples,
)


def decode_jpeg(source: str) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    assert source.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(source[len(prefix) :])))
    assert image.format == "JPEG"
    return image.convert("RGB")


def heatmaps(fig: go.Figure) -> list:
    return [t for t in fig.data if t.type == "heatmap"]


def cell_centres(trace) -> tuple[np.ndarray, np.ndarray]:
    """x of each column's centre and y of each row's centre, as Plotly places a heatmap with x0/dx, y0/dy."""
    rows, cols = np.asarray(trace.z).shape
    return trace.x0 + trace.dx * np.arange(cols), trace.y0 + trace.dy * np.arange(rows)


def gradient(size: tuple[int, int]) -> Image.Image:
    """An image whose colour tells where a pixel is: red grows to the right, green downwards."""
    w, h = size
    r = np.broadcast_to(np.linspace(0, 255, w)[None, :], (h, w))
    g = np.broadcast_to(np.linspace(0, 255, h)[:, None], (h, w))
    return Image.fromarray(np.stack([r, g, np.full((h, w), 90.0)], axis=-1).astype(np.uint8))


@pytest.fixture
def grid_map() -> np.ndarray:
    """A 4 x 6 map (not square: rows and columns must not be swapped), every value different."""
    return np.random.default_rng(0).random((4, 6)).astype(np.float32)


# ------------------------------------------------------------------ overlay


@pytest.mark.parametrize(
    "size, shown",
    [
        ((600, 300), (DISPLAY_SIDE, DISPLAY_SIDE // 2)),  # shrunk to DISPLAY_SIDE
        ((64, 64), (MIN_DISPLAY_SIDE, MIN_DISPLAY_SIDE)),  # small demos enlarged
        ((400, 200), (400, 200)),  # kept as it is
    ],
)
def test_overlay_draws_the_map_over_the_image_on_its_grid(grid_map, size, shown):
    image = gradient(size)
    fig = overlay(image, grid_map)
    (heat,) = heatmaps(fig)
    np.testing.assert_array_equal(np.asarray(heat.z), grid_map)
    # Cells cover the whole picture: column c is centred at (c + 0.5) / cols of its width, row r likewise.
    (picture,) = fig.layout.images
    w, h = picture.sizex, picture.sizey
    assert (w, h) == shown and (picture.x, picture.y) == (0, 0) and picture.sizing == "stretch"
    xs, ys = cell_centres(heat)
    np.testing.assert_allclose(xs, (np.arange(6) + 0.5) * w / 6)
    np.testing.assert_allclose(ys, (np.arange(4) + 0.5) * h / 4)
    assert tuple(fig.layout.xaxis.range) == (0, w) and tuple(fig.layout.yaxis.range) == (h, 0)  # row 0 on top
    # The picture sent is the image given, at the size shown (JPEG: close, not exact).
    sent = decode_jpeg(picture.source)
    assert sent.size == shown
    expected = np.asarray(image.resize(shown, Image.Resampling.BILINEAR), dtype=float)
    assert np.abs(np.asarray(sent, dtype=float) - expected).mean() < 4
    # The colour scale runs from 0 to the map's maximum; nothing else is drawn.
    assert (heat.zmin, heat.zmax) == (0.0, pytest.approx(float(grid_map.max())))
    assert [t.type for t in fig.data] == ["heatmap"]
    assert not fig.layout.shapes and fig.layout.title.text is None


def test_overlay_scale_options(grid_map):
    low = float(grid_map.min())
    (heat,) = heatmaps(overlay(gradient((64, 64)), grid_map, from_min=True))
    assert (heat.zmin, heat.zmax) == (pytest.approx(low), pytest.approx(float(grid_map.max())))
    (heat,) = heatmaps(overlay(gradient((64, 64)), grid_map, zmax=3.0, opacity=0.25))
    assert (heat.zmin, heat.zmax, heat.opacity) == (0.0, 3.0, 0.25)
    (flat,) = heatmaps(overlay(gradient((64, 64)), np.full((4, 6), 0.2), from_min=True))
    assert flat.zmin == 0.0  # a flat map keeps the scale from 0 (min == max would leave no range)


def test_overlay_click_layer_is_one_point_per_cell(grid_map):
    fig = overlay(gradient((400, 200)), grid_map, clickable=True)
    heat, points = fig.data
    assert points.type == "scatter" and points.marker.opacity == 0 and points.mode == "markers"
    assert len(points.x) == grid_map.size
    # Point i is cell divmod(i, cols), at that cell's centre, and says its value.
    r, c = np.divmod(np.arange(24), 6)
    np.testing.assert_array_equal(np.asarray(points.customdata), np.stack([r, c], axis=1))
    xs, ys = cell_centres(heat)
    np.testing.assert_allclose(points.x, xs[c])
    np.testing.assert_allclose(points.y, ys[r])
    assert list(points.text) == [f"{grid_map[i, j]:.3f}" for i, j in zip(r, c, strict=True)]
    assert fig.layout.clickmode == "event+select"


def test_overlay_outlines_the_selected_cell(grid_map):
    fig = overlay(gradient((600, 300)), grid_map, selected=(2, 5))
    (box,) = fig.layout.shapes
    w, h = fig.layout.images[0].sizex, fig.layout.images[0].sizey
    assert (box.x0, box.x1) == (pytest.approx(5 * w / 6), pytest.approx(w))
    assert (box.y0, box.y1) == (pytest.approx(2 * h / 4), pytest.approx(3 * h / 4))


def test_overlay_title_is_plain_text_and_cut_at_the_title_length(grid_map):
    fig = overlay(gradient((64, 64)), grid_map, title="Rollout <b>bold</b> & $x$")
    assert fig.layout.title.text == "Rollout &lt;b&gt;bold&lt;/b&gt; &amp; $x$"
    long = overlay(gradient((64, 64)), grid_map, title="x" * 500).layout.title.text
    assert long == "x" * (MAX_TITLE - 1) + "…"
    assert overlay(gradient((64, 64)), grid_map, title="$x$").layout.title.text == ZWSP + "$x$"


def test_fading_colorscale_keeps_plotlys_colours_and_fades_the_low_end():
    scale = fading_colorscale("viridis")
    plotly = get_colorscale("Viridis")
    assert [pos for pos, _ in scale] == [pos for pos, _ in plotly]
    for (pos, rgba), (_, colour) in zip(scale, plotly, strict=True):
        r, g, b, a = rgba.removeprefix("rgba(").removesuffix(")").split(",")
        expected = unlabel_rgb(colour) if colour.startswith("rgb") else hex_to_rgb(colour)
        assert (int(r), int(g), int(b)) == tuple(int(v) for v in expected)
        assert float(a) == pytest.approx(min(1.0, pos / 0.35), abs=0.005)
    assert scale[0][1].endswith(",0.00)") and scale[-1][1].endswith(",1.00)")


# ------------------------------------------------------------------ small multiples


def test_small_multiples_draw_every_map_in_order_on_its_own_panel(grid_map):
    maps = [(f"head {i}", grid_map * (i + 1)) for i in range(6)]
    fig = small_multiples(gradient((300, 150)), maps, n_cols=4)
    drawn = heatmaps(fig)
    assert len(drawn) == 6 and len(fig.layout.images) == 6  # nothing dropped
    for i, (heat, (_, expected)) in enumerate(zip(drawn, maps, strict=True)):
        np.testing.assert_allclose(np.asarray(heat.z), expected, rtol=1e-6)
        axis = "" if i == 0 else str(i + 1)
        assert (heat.xaxis, heat.yaxis) == (f"x{axis}", f"y{axis}")
        assert heat.zmax == pytest.approx(float(expected.max()))  # each panel on its own scale
        picture = fig.layout.images[i]
        assert (picture.xref, picture.yref) == (f"x{axis}", f"y{axis}")
    # Two rows of four columns: panel 5 (index 4) starts the second row.
    assert fig.layout.xaxis5.domain == fig.layout.xaxis.domain
    assert fig.layout.yaxis5.domain[1] < fig.layout.yaxis.domain[0]
    assert [a.text for a in fig.layout.annotations] == [title for title, _ in maps]
    sent = decode_jpeg(fig.layout.images[0].source)
    assert max(sent.size) <= 256


def test_small_multiples_shared_scale_and_plain_titles(grid_map):
    maps = [("<i>a</i>", grid_map), ("b & c", grid_map * 4)]
    fig = small_multiples(gradient((64, 64)), maps, shared_scale=True)
    assert [h.zmax for h in heatmaps(fig)] == [pytest.approx(4 * float(grid_map.max()))] * 2
    assert [a.text for a in fig.layout.annotations] == ["&lt;i&gt;a&lt;/i&gt;", "b &amp; c"]


# ------------------------------------------------------------------ prediction bars


def test_predictions_bar_shows_the_top_k_best_on_top():
    predictions = [("circle", 0.5), ("ring", 0.2), ("square", 0.15), ("star", 0.1), ("cross", 0.04), ("x", 0.01)]
    (bar,) = predictions_bar(predictions, k=5, chosen="ring").data
    assert bar.orientation == "h"
    # Plotly draws the first category at the bottom: the list is reversed so the best is on top.
    assert list(bar.y) == ["cross", "star", "square", "ring", "circle"]
    assert list(bar.x) == [0.04, 0.1, 0.15, 0.2, 0.5]
    assert list(bar.text) == ["4.0%", "10.0%", "15.0%", "20.0%", "50.0%"]
    colours = list(bar.marker.color)
    assert colours[3] != colours[0] and len(set(colours)) == 2 and colours.count(colours[3]) == 1
    fewer = predictions_bar(predictions[:2], k=5).data[0]
    assert list(fewer.y) == ["ring", "circle"] and len(set(fewer.marker.color)) == 1


def test_predictions_bar_keeps_classes_whose_cut_names_are_equal():
    long = "a very long class name that goes on and on"
    (bar,) = predictions_bar([(long + " one", 0.6), (long + " two", 0.4)]).data
    assert len(set(bar.y)) == 2  # a category axis would merge equal labels into one bar
    assert all(label.replace(ZWSP, "").startswith(long[:39]) and len(label.replace(ZWSP, "")) == 40 for label in bar.y)
