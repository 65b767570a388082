"""A sentence the model cannot run takes the last sentence's views away (they are fragments, which
Streamlit keeps on the page when a run is stopped before reaching them: the image page kept a removed
upload's maps that way), and a usable sentence brings them back."""

from __future__ import annotations

from tests.browser.live_app import wait_idle
from tests.browser.page_tools import alerts, open_page, select_option, wait_for


def _main_charts(page) -> int:
    return page.locator("[data-testid=stMain] .js-plotly-plot").count()


def test_a_blank_sentence_takes_the_text_views_away(live_app, page, page_events):
    open_page(page, live_app.url("text"))
    assert _main_charts(page) >= 1
    select_option(page, "Head", "3")  # the view reruns alone: its elements now come from a fragment's run
    wait_idle(page)
    box = page.get_by_label("Sentence", exact=True)
    box.fill("   ")
    box.press("Control+Enter")
    wait_idle(page)
    try:
        wait_for(page, "() => !document.querySelector('[data-testid=stMain] .js-plotly-plot')", timeout_ms=30_000)
    except Exception:  # noqa: BLE001 - the assertion below says what is left
        pass
    assert _main_charts(page) == 0, "the previous sentence's views are still on the page"
    said = " ".join(alerts(page, "Info") + alerts(page, "Warning") + alerts(page, "Error"))
    assert said.strip(), "the page says why nothing is drawn"
    # A sentence again: the views come back.
    box.fill("The cat sat on the mat.")
    box.press("Control+Enter")
    page.wait_for_selector("[data-testid=stMain] .js-plotly-plot", timeout=120_000)
    page_events.assert_clean()
