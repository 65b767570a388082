"""Every page's figures download as PNG, SVG and PDF, with a paper-ready switch (issue 18, item 1).

The files themselves are tested in tests/export/test_figure_formats.py; here: the buttons are
there, with the file names and types a person expects, and the files a button would make open.
"""

from __future__ import annotations

import pytest

from attnviz.ui import worked_page as wp
from attnviz.ui.text_views import VIEWS
from tests.pages.apptest_helpers import assert_clean, start_clean

pytestmark = pytest.mark.bundled


def labels(at) -> list[str]:
    return [b.label for b in at.get("download_button")]


@pytest.mark.parametrize("view", VIEWS)
def test_every_text_view_offers_png_svg_and_pdf(bundled_model, view):
    at = start_clean("pages/text.py")
    at.radio(key="view").set_value(view).run()
    assert_clean(at)
    assert labels(at)[:3] == ["PNG", "SVG", "PDF"]
    paper = at.toggle(key="text_figure_paper")
    assert paper.label == "Paper-ready" and not paper.value
    paper.set_value(True).run()
    assert_clean(at)
    assert labels(at)[:3] == ["PNG", "SVG", "PDF"]


def test_the_image_page_offers_the_overlay_heads_and_maps_as_figures():
    at = start_clean("pages/image.py")
    keys = {t.key for t in at.toggle}
    assert {"overlay_figure_paper", "image_heads_figure_paper", "image_compare_figure_paper"} <= keys
    assert labels(at).count("PDF") == 3 and labels(at).count("SVG") == 3


def test_the_worked_example_offers_the_chosen_matrix_as_a_figure(bundled_model):
    at = start_clean("pages/worked_example.py")
    at.radio(key=wp.MODE).set_value(wp.REAL_MODE).run()
    assert_clean(at)
    assert at.toggle(key="worked_figure_paper")
    assert {"PNG", "SVG", "PDF"} <= set(labels(at))


def test_head_statistics_offer_the_map_as_a_figure(bundled_model):
    at = start_clean("pages/head_stats.py")
    assert at.toggle(key="stats_figure_paper")
    assert labels(at)[:3] == ["PNG", "SVG", "PDF"]


def test_a_long_inputs_views_offer_figures(bundled_decoder):
    """Past 344 tokens the decoder's views are pooled: the pooled head, the zoom window and a layer's heads."""
    from attnviz.ui import long_text

    at = start_clean("pages/text.py")
    [b for b in at.button if b.label.startswith("Use bundled SmolLM2")][0].click().run()
    at.text_area(key="text_input").input("The cat sat on the mat, and then it slept for a while. " * 40).run()
    assert_clean(at)
    keys = {t.key for t in at.toggle}
    assert {"pooled_figure_paper", "zoom_figure_paper"} <= keys
    at.radio(key=long_text.LONG_VIEW).set_value(long_text.LAYER_VIEW).run()
    assert_clean(at)
    assert "long_layer_figure_paper" in {t.key for t in at.toggle}
    assert labels(at)[:3] == ["PNG", "SVG", "PDF"]
    # The ranked views: one token's strongest keys and a head's strongest pairs (the rollout row's figure is the
    # same writer: tests/export/test_long_view_figures.py).
    for view, key in ((long_text.FROM_TOKEN, "from_token_figure"), (long_text.PAIRS, "pairs_figure")):
        at.radio(key=long_text.LONG_VIEW).set_value(view).run()
        assert_clean(at)
        assert f"{key}_paper" in {t.key for t in at.toggle}
        assert labels(at)[:3] == ["PNG", "SVG", "PDF"]
