"""Click on a matrix cell: does the page rerun, outline the row, and does 'From one token' follow it?"""

from __future__ import annotations

from .app_server import App
from .common import CLICK_SIZE, log
from .inputs import ModelCase
from .measure import (
    Measure,
    WsCounter,
    act_and_settle,
    caption_for,
    click_view,
    expect_for,
    open_text_page,
    submit_sentence,
)
from .page_js import CELL_JS, SHAPES_JS


def _query_value(page) -> str | None:
    """The value shown in the 'Query token' select box, e.g. "5: morning" (None: not on the page)."""
    box = page.locator('[data-testid="stSelectbox"] input[aria-label="Query token"]')
    return box.first.input_value() if box.count() else None


def _click_cell(page, ws: WsCounter, row: int, col: int, caption: str) -> tuple[Measure, list, dict]:
    page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
    page.wait_for_timeout(300)
    pos = page.evaluate(CELL_JS, [row, col])
    page.mouse.move(pos["x"], pos["y"])
    page.wait_for_timeout(400)  # Plotly resolves the clicked point from the hover
    m = act_and_settle(
        page, ws, lambda: page.mouse.click(pos["x"], pos["y"]), expect_for("Single head", caption), timeout=20
    )
    page.mouse.move(5, 5)
    return m, page.evaluate(SHAPES_JS), pos


def _click_then_follow(page, ws: WsCounter, tag: str, row: int, col: int, caption: str, quiet_each: float) -> dict:
    """Click cell (row, col) in 'Single head', then open 'From one token' and read its 'Query token'."""
    m, shapes, pos = _click_cell(page, ws, row, col, caption)
    click_view(page, ws, "From one token", caption, quiet_each)
    return {
        f"{tag}_rerun": m.ok,
        f"{tag}_shapes": shapes,
        f"{tag}_pos": pos,
        f"{tag}_row": row,
        f"{tag}_query": _query_value(page),
    }


def click_smoke(browser, app: App, case: ModelCase, quiet_each: float) -> dict:
    """Single head at ~20 tokens: click a cell, then open "From one token": did the query follow?"""
    tm = case.tm
    ws = WsCounter()
    page, _ = open_text_page(browser, app, ws)
    text = case.texts[CLICK_SIZE]
    tokens = tm.tokenizer(text)["input_ids"]
    toks = tm.tokenizer.convert_ids_to_tokens(tokens)
    caption = caption_for(CLICK_SIZE, tm)
    out: dict = {"n": CLICK_SIZE, "tokens": toks}
    submit_sentence(page, ws, text, expect_for("Single head", caption), quiet_each)

    # A: fresh session, "From one token" never opened before.
    out.update(_click_then_follow(page, ws, "a", 5, 3, caption, quiet_each))

    # B: after "From one token" has been open once: back to Single head, click another row.
    click_view(page, ws, "Single head", caption, quiet_each)
    out.update(_click_then_follow(page, ws, "b", 9, 2, caption, quiet_each))
    page.close()
    log(f"browser: click smoke: {out}")
    return out
