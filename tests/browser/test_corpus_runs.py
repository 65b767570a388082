"""A corpus run in real Chromium, clicked at while it runs: the statistics stay exact.

Streamlit's fast reruns start a new script thread while the old one is still inside a batch, so
Stop and Continue clicked during a run once counted a batch twice and skipped another, while the
page still said "600 sentences". A download clicked during a run did nothing (its deferred file
was gone after the rerun). Both are checked here against the library on the same sentences.
"""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest

import attnviz
from attnviz.maths.head_statistics import COLUMNS
from tests.browser.live_app import wait_idle
from tests.browser.page_tools import alerts, assert_no_errors, open_page, screenshot, upload, wait_for_text

pytestmark = pytest.mark.bundled

WORDS = """the a cat dog bird sat ran sang on under over mat tree house street quickly slowly because it
was tired happy and then later morning night people saw heard small big old new river""".split()
STOPPED = re.compile(r"Stopped at ([\d,]+) of 600 sentences")


def corpus_lines(n: int = 600) -> list[str]:
    rng = np.random.default_rng(7)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 30)))).capitalize() + "." for _ in range(n)]


def button(page, label: str):
    # In the page's main part: Streamlit's own header has a "Stop" button while a script runs.
    return page.locator("[data-testid=stMain]").get_by_role("button", name=label, exact=True)


def download_table(page) -> pd.DataFrame:
    with page.expect_download(timeout=30_000) as event:
        page.locator("[data-testid=stDownloadButton] button").filter(has_text="Table (CSV)").click()
    return pd.read_csv(io.BytesIO(event.value.path().read_bytes()))


def stop_and_read_position(page) -> int:
    button(page, "Stop").click()
    wait_for_text(page, "Stopped at")
    wait_idle(page)
    text = page.locator("[data-testid=stProgress]").first.inner_text()
    return int(STOPPED.search(text).group(1).replace(",", ""))


def assert_table_equals(got: pd.DataFrame, want: pd.DataFrame) -> None:
    numbers = list(COLUMNS)
    np.testing.assert_allclose(got[numbers].to_numpy(), want[numbers].to_numpy(), atol=5e-5)
    assert got["label"].tolist() == want["label"].tolist()


def test_clicks_during_a_run_change_no_number(live_app, page, page_events, bundled_model):
    lines = corpus_lines()
    open_page(page, live_app.url("head_stats"))
    page.get_by_text("Corpus file", exact=True).click()
    wait_for_text(page, "Upload a corpus to see the statistics")
    upload(page, "clicks.txt", ("\n".join(lines) + "\n").encode(), "text/plain")
    wait_for_text(page, "The statistics appear here when the run ends")

    # While it runs there is no stale download button to click, only the note with the estimate.
    assert page.locator("[data-testid=stDownloadButton]").count() == 0
    assert "about" in " ".join(alerts(page, "Info"))

    # Stop: the part done so far, and its CSV, equal the library on those sentences.
    done = stop_and_read_position(page)
    assert 0 < done < 600
    assert_table_equals(download_table(page), attnviz.corpus_head_stats(bundled_model, lines[:done]).table)

    # Continue and Stop in quick succession, each click landing inside a running batch.
    for pause_ms in (150, 400, 50, 700):
        button(page, "Continue").click()
        page.wait_for_timeout(pause_ms)
        if button(page, "Stop").count():
            button(page, "Stop").click()
            wait_idle(page)  # "Stopped at" may still be on screen from the previous stop
    # The last click may have been a Stop whose rerun is still drawing: let the page settle
    # before asking whether it waits for Continue (asked too early, the run stayed stopped).
    wait_idle(page, timeout_ms=300_000)
    if button(page, "Continue").count():
        button(page, "Continue").click()
    wait_for_text(page, "clicks.txt: 600 sentences", "[data-testid=stCaptionContainer]", timeout_ms=300_000)
    wait_idle(page)

    full = attnviz.corpus_head_stats(bundled_model, lines)
    caption = " ".join(page.locator("[data-testid=stCaptionContainer]").all_inner_texts())
    assert f"600 sentences, {full.tokens:,} tokens" in caption, caption
    assert_table_equals(download_table(page), full.table)
    assert_no_errors(page)
    screenshot(page, "head-stats-corpus-after-clicks")
    page_events.assert_clean()
