"""A bad ATTNVIZ_DEVICE: every page says so exactly once per run, and still works on the CPU.

The router reads the device once per run (attnviz.ui.cache.read_device) and shows the problem
there; nothing else reads the setting with a warning. Before that, the home page showed it
three times, the text page twice and the worked example's toy mode not at all.
"""

from __future__ import annotations

import pytest

from attnviz.device import DEVICE_ENV
from attnviz.ui import worked_page as wp
from tests.pages.apptest_helpers import assert_clean, chart, charts, start_clean

pytestmark = pytest.mark.bundled  # every page but the toy worked example loads a bundled model

BAD = "tpu"


@pytest.fixture(autouse=True)
def bad_device(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, BAD)


def device_warnings(at) -> list[str]:
    return [w.value for w in at.warning if f"{DEVICE_ENV}='{BAD}'" in w.value]


def assert_one_warning(at) -> None:
    assert_clean(at)
    found = device_warnings(at)
    assert len(found) == 1, found
    assert "Using the CPU." in found[0]


def test_home_page():
    at = start_clean("pages/home.py")
    assert_one_warning(at)
    table = at.dataframe[0].value
    assert table["status"].tolist() == ["loaded, runs on cpu", "loaded, runs on cpu (8x8 grid + class token)"]
    assert any("(`cpu`)" in m.value for m in at.markdown)


def test_text_page():
    at = start_clean("pages/text.py")
    assert_one_warning(at)
    assert chart(at, "matrix_chart")
    at.text_area(key="text_input").input("A bad device setting still gives attention on the CPU.").run()
    assert_one_warning(at)
    assert chart(at, "matrix_chart")
    assert "runs on CPU" in "\n".join(c.value for c in at.sidebar.caption)


def test_image_page():
    at = start_clean("pages/image.py")
    assert_one_warning(at)
    assert len(charts(at)) == 4


def test_worked_example_toy_mode():
    at = start_clean("pages/worked_example.py")
    assert_one_warning(at)
    assert chart(at, wp.WEIGHTS_CHART)


def test_worked_example_real_mode():
    at = start_clean("pages/worked_example.py")
    at.radio(key=wp.MODE).set_value(wp.REAL_MODE).run()
    assert_one_warning(at)
    assert chart(at, wp.WEIGHTS_CHART)
    assert any("Same numbers as the model" in s.value for s in at.success)


def test_head_statistics_page():
    at = start_clean("pages/head_stats.py")
    assert_one_warning(at)
    assert chart(at, "stats_heatmap")
    at.segmented_control(key="stats_section").set_value("Attention vs attribution").run()
    assert_one_warning(at)
    assert chart(at, "attribution_chart")
