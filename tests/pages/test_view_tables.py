"""The view tables are the only place a view lives: a new entry in ``text_views.TEXT_VIEWS`` or
``image_maps.IMAGE_MAPS`` shows up on its page and is drawn, with no other change to the code."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from attnviz import image_attention, load_image_model, text_attention
from attnviz.examples import DEFAULT_TEXT
from attnviz.image.generated_shapes import shape_sample
from attnviz.ui import image_maps, text_views
from attnviz.ui.image_maps import FROM_PATCH, ImageMap, MapChoice, heads_entry, patch_of
from tests.pages.apptest_helpers import assert_clean, charts, figure, start_clean

pytestmark = pytest.mark.bundled


def _diagonal(view, picks) -> go.Figure:
    """A view that is not in the app: each token's attention to itself, in the chosen head."""
    diag = np.diagonal(view.weights[picks.layer, picks.head])
    return go.Figure(go.Bar(y=diag.tolist()), layout={"title": {"text": "Self-attention"}})


def test_a_new_text_view_is_one_entry(monkeypatch, bundled_model):
    entry = text_views.TextView("Diagonal", figure=_diagonal, png=lambda v, p: b"", show=text_views._show_plain)
    monkeypatch.setitem(text_views.TEXT_VIEWS, entry.name, entry)
    at = start_clean("pages/text.py")
    assert "Diagonal" in at.radio(key="view").options
    at.selectbox(key="layer").set_value(4).run()
    at.selectbox(key="head").set_value(2).run()
    at.radio(key="view").set_value("Diagonal").run()
    assert_clean(at)
    (chart,) = charts(at)
    bars = figure(chart)["data"][0]
    expected = np.diagonal(text_attention(bundled_model, DEFAULT_TEXT).weights[4, 2])
    np.testing.assert_allclose(bars["y"], expected, atol=1e-6)


def test_a_new_image_map_is_one_entry(monkeypatch):
    corner = ImageMap(
        "Top-left patch",
        grid_map=lambda ia, c, head: ia.cell_attention(c.layer, head, 0, 0),
        title=lambda ia, c: "From the top-left patch",
        heads_what=lambda ia, c: "where the top-left patch attends",
    )
    monkeypatch.setitem(image_maps.IMAGE_MAPS, corner.name, corner)
    at = start_clean("pages/image.py")
    assert "Top-left patch" in at.radio(key="image_map").options
    at.radio(key="image_map").set_value("Top-left patch").run()
    assert_clean(at)
    titles = [figure(c)["layout"].get("title", {}).get("text", "") for c in charts(at)]
    assert any("From the top-left patch" in t for t in titles), titles
    assert any("All heads of layer" in s.value for s in at.subheader)
    assert any("where the top-left patch attends" in c.value.lower() for c in at.caption)


def test_patch_is_kept_inside_the_grid_and_rollout_heads_fall_back_to_the_class_token():
    ia = image_attention(load_image_model(), shape_sample(3, label="star").image)
    rows, cols = ia.grid
    choice = MapChoice(FROM_PATCH.name, 1, None, "mean", 0.0, 0.5, "viridis", patch=(rows + 5, cols + 5))
    assert patch_of(ia, choice) == (rows - 1, cols - 1)
    assert patch_of(ia, MapChoice(FROM_PATCH.name, 1, None, "mean", 0.0, 0.5, "viridis")) == (rows // 2, cols // 2)
    np.testing.assert_allclose(FROM_PATCH.grid_map(ia, choice, 2), ia.cell_attention(1, 2, rows - 1, cols - 1))
    assert heads_entry(image_maps.ROLLOUT) is image_maps.CLASS_TOKEN
    assert heads_entry(FROM_PATCH) is FROM_PATCH
