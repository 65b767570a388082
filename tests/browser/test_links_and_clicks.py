"""Shareable links and click-through in the real app: the address follows the widgets, a link
reopens its view, and a click on a head-statistics cell opens that head on the text page."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from tests.browser.live_app import wait_idle
from tests.browser.page_tools import select_option


def _params(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def _wait_for(predicate, seconds: float = 30.0) -> None:
    end = time.monotonic() + seconds
    while not predicate() and time.monotonic() < end:
        time.sleep(0.25)


def test_the_address_follows_the_widgets_and_reopens_the_view(live_app, page, page_events):
    page.goto(live_app.url("text"))
    page.wait_for_selector(".js-plotly-plot")
    wait_idle(page)
    select_option(page, "Layer", "2")
    wait_idle(page)
    page.get_by_text("From one token", exact=True).click()
    wait_idle(page)
    _wait_for(lambda: _params(page).get("view") == "from-one-token")
    params = _params(page)
    assert params["layer"] == "2" and params["view"] == "from-one-token"
    link = page.url
    other = page.context.browser.new_context().new_page()  # a new visitor opens the link
    try:
        other.goto(link)
        other.wait_for_selector(".js-plotly-plot", timeout=120_000)
        wait_idle(other)
        assert other.get_by_role("radio", name="From one token").is_checked()
        assert _params(other)["layer"] == "2"
    finally:
        other.context.close()
    page_events.assert_clean()


def test_a_head_statistics_click_opens_that_head_on_the_text_page(live_app, page, page_events):
    page.goto(live_app.url("head_stats"))
    page.wait_for_selector(".js-plotly-plot")
    wait_idle(page)
    page.locator('[data-testid="stPlotlyChart"]').first.scroll_into_view_if_needed()
    box = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    # The bundled encoder: 6 layers x 12 heads. Layer 4, head 9.
    x, y = box["x"] + box["width"] * 9.5 / 12, box["y"] + box["height"] * 4.5 / 6
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    _wait_for(lambda: urlsplit(page.url).path.endswith("/text"), 60)
    page.wait_for_selector(".js-plotly-plot")
    wait_idle(page)
    assert urlsplit(page.url).path.endswith("/text")
    assert page.get_by_text("Layer 4 · head 9").count() >= 1
    page_events.assert_clean()
