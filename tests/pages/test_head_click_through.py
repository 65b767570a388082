"""Click through: a head-statistics cell opens that head on the text page.

AppTest cannot click a chart, so the click's handler is run on a selection shaped like the one
Streamlit hands it, and the page flow after it (the switch to the text page) through AppTest.
"""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import attnviz
from attnviz.figures.stats import clickable_cells, label_map, stat_heatmap
from tests.pages.apptest_helpers import APP, TIMEOUT, assert_clean, chart, figure, heatmap_z

pytestmark = pytest.mark.bundled

SENTENCE = "The cat sat on the mat because it was tired."


@pytest.fixture(scope="module")
def table(bundled_model):
    return attnviz.head_stats(attnviz.text_attention(bundled_model, SENTENCE))


@pytest.mark.parametrize("draw", [lambda t: stat_heatmap(t, "cls_mass"), label_map])
def test_every_cell_has_a_clickable_point_on_it(table, draw):
    fig = clickable_cells(draw(table))
    points = [t for t in fig.data if t.type == "scatter" and t.x is not None and t.x[0] is not None]
    assert len(points) == 1
    layer_head = set(zip(np.asarray(points[0].y).tolist(), np.asarray(points[0].x).tolist(), strict=True))
    assert layer_head == set(zip(table["layer"], table["head"], strict=True))
    assert points[0].marker.opacity == 0
    assert "click" in points[0].hovertemplate and "%{customdata[1]}" in points[0].hovertemplate


def _click(layer: int, head: int) -> None:
    import streamlit as st

    from attnviz.ui.stats_page import _open_clicked_head

    point = {"x": head, "y": layer, "curve_number": 1, "point_number": 0, "point_index": 0}
    st.session_state["clicked_chart"] = {"selection": {"points": [point], "box": [], "lasso": []}}
    _open_clicked_head("clicked_chart")


def test_the_click_handler_sets_the_text_page_head():
    at = AppTest.from_function(_click, args=(4, 9), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    state = at.session_state
    assert (state["layer"], state["head"], state["view"]) == (4, 9, "Single head")
    assert state["_attnviz_goto_text"] is True


def test_after_a_click_the_page_switches_to_that_head(bundled_model):
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page("pages/head_stats.py")
    at.session_state["text_input"] = SENTENCE
    at.run()
    assert_clean(at)
    assert chart(at, "stats_heatmap")  # the clickable map is there
    # What _open_clicked_head leaves in the session (tested above), then the rerun the click causes.
    at.session_state["layer"], at.session_state["head"], at.session_state["view"] = 3, 7, "Single head"
    at.session_state["_attnviz_goto_text"] = True
    at.run()
    assert_clean(at)
    matrix = chart(at, "matrix_chart")
    assert "Layer 3 · head 7" in figure(matrix)["layout"]["title"]["text"]
    ta = attnviz.text_attention(bundled_model, SENTENCE)
    np.testing.assert_allclose(heatmap_z(matrix), ta.weights[3, 7], atol=1e-6)
