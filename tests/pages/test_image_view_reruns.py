"""The image page's partial reruns (attnviz.ui.image_page.RERUNS): a map control reruns only the views its
value changes, the page's script does not run, and what the views draw equals what a full run draws.

A control's callback names the views to rerun (``st.rerun([...])``); AppTest runs just those, and its
element tree then holds only what they drew, which is what the browser is sent. A click on a patch
takes the same path (its callback names the overlay and the heads); AppTest cannot click a chart,
so tests/browser/test_image_patch_rerun.py clicks one."""

from __future__ import annotations

import pytest

from attnviz.ui import image_drawing
from attnviz.ui import image_page as page
from attnviz.ui.image_families import CAM_LAYER
from attnviz.ui.image_page import COMPARE_VIEW, HEADS_VIEW, OVERLAY_CHART, OVERLAY_VIEW, RERUNS
from tests.pages.apptest_helpers import assert_clean, charts, figure, start_clean

PAGE = "pages/image.py"


@pytest.fixture
def counted(monkeypatch):
    """The app, opened, and the number of full runs of the page's script so far (a list of one count)."""
    runs = [0]
    real = image_drawing.page_caption

    def caption(model):  # drawn once per full run, above every view
        runs[0] += 1
        real(model)

    monkeypatch.setattr(image_drawing, "page_caption", caption)
    return start_clean(PAGE), runs


def _views(at) -> dict[str, dict]:
    """The figure each view drew in the last run, by view (a view that did not run is absent)."""
    out = {}
    for c in charts(at):
        fig = figure(c)
        titles = " ".join(a.get("text", "") for a in fig["layout"].get("annotations", []))
        if c.key == OVERLAY_CHART:
            out[OVERLAY_VIEW] = fig
        elif "head 0" in titles:
            out[HEADS_VIEW] = fig
        elif "Integrated Gradients" in titles:
            out[COMPARE_VIEW] = fig
    return out


CHANGES = [
    (page.HEAD, lambda at: at.selectbox(key=page.HEAD), 2),
    (page.LAYER, lambda at: at.selectbox(key=page.LAYER), 0),
    (page.MAP, lambda at: at.radio(key=page.MAP), "Rollout"),
    (page.OPACITY, lambda at: at.slider(key=page.OPACITY), 0.8),
    (page.FROM_MIN, lambda at: at.toggle(key=page.FROM_MIN), True),
    (page.COLORMAP, lambda at: at.selectbox(key=page.COLORMAP), "viridis"),
    (page.FUSION, lambda at: at.selectbox(key=page.FUSION), "max"),
    (page.DISCARD, lambda at: at.slider(key=page.DISCARD), 0.5),
    (CAM_LAYER, lambda at: at.selectbox(key=CAM_LAYER), "stem.1"),  # the bundled model's default: stem.3
]


@pytest.mark.parametrize(("key", "widget", "value"), CHANGES, ids=[c[0] for c in CHANGES])
def test_a_control_reruns_only_its_views_and_they_match_a_full_run(counted, key, widget, value):
    at, runs = counted
    at.radio(key=page.MAP).set_value("From a clicked patch").run()  # every view then depends on something
    at.run()
    before, full_runs = _views(at), runs[0]
    assert set(before) == {OVERLAY_VIEW, HEADS_VIEW, COMPARE_VIEW}

    widget(at).set_value(value).run()
    assert_clean(at)
    assert runs[0] == full_runs, "the page's script ran"
    assert not at.title, "the page's title was sent again"
    partial = _views(at)
    assert set(partial) == set(RERUNS[key])  # only the views the control changes are sent

    at.run()  # the whole page, as a new visitor with these settings would get it
    assert runs[0] == full_runs + 1
    full = _views(at)
    for view in (OVERLAY_VIEW, HEADS_VIEW, COMPARE_VIEW):
        if view in partial:
            assert partial[view] == full[view], f"{view} after {key} differs from a full run"
        else:  # left out: the control does not change it
            assert before[view] == full[view], f"{key} changes {view}, which its rerun leaves out"
    assert any(partial[v] != before[v] for v in partial), "the change redrew nothing"


def test_a_head_change_sends_the_overlay_and_its_controls_alone(counted):
    at, runs = counted
    at.selectbox(key=page.HEAD).set_value(1).run()
    assert runs[0] == 1
    assert [c.key for c in charts(at)] == [OVERLAY_CHART]
    # The image's pickers, the class to explain and the sidebar's model picker were not sent again.
    assert {s.key for s in at.selectbox} == {page.LAYER, page.HEAD, CAM_LAYER, page.FUSION, page.COLORMAP}
    assert not at.radio(key=page.MAP).value == "" and not [r for r in at.radio if r.key == page.SOURCE]
    assert not at.text_input and not at.subheader  # no model folder box, no "All heads", no comparison
