"""A view's own rerun (an st.fragment, attnviz.ui.fragments) in the real app: the worked example's head
changes without the page running, and the address and the sidebar's "Share this view" still follow it."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

from tests.browser.live_app import wait_idle
from tests.browser.page_tools import alerts, assert_no_errors, select_option


def _params(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query).items()}


def test_a_head_change_in_the_worked_example_moves_the_address_and_the_share_box(live_app, page, page_events):
    page.goto(live_app.url("worked_example?mode=Real+model"))
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    wait_idle(page)
    select_option(page, "Head", "3")
    end = time.monotonic() + 30
    while _params(page).get("head") != "3" and time.monotonic() < end:
        time.sleep(0.25)
    assert _params(page).get("head") == "3"
    page.locator("[data-testid=stSidebar]").get_by_text("Share this view").click()
    share = page.locator("[data-testid=stSidebar] [data-testid=stCode]").first.inner_text()
    assert "head=3" in share and "mode=" in share, share
    # The view redrew for head 3: the check panel names it.
    assert any("layer 0, head 3" in s for s in alerts(page, "Success"))
    assert_no_errors(page)
    page_events.assert_clean()
