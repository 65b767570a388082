"""1. and 3. in the browser: the page's payload per size, each view's payload and draw time, click check.

The real app runs under ``streamlit run``; Chromium, driven by Playwright, opens ``/text``.
"""

from __future__ import annotations

from .app_server import App
from .click_check import click_smoke
from .common import VIEW_SIZE, VIEWS, fmt_bytes, log
from .inputs import ModelCase, n_tokens
from .measure import WsCounter, act_and_settle, caption_for, click_view, expect_for, open_text_page, submit_sentence


def browser_phase(cases: list[ModelCase], sizes: list[int], chromium: str, draw_rounds: int, quiet_each: float) -> dict:
    """Payload and draw time per case and size, the view cycle at ``VIEW_SIZE`` tokens and the click check.

    ``quiet_each``: before each measurement, wait up to this long for an idle CPU.
    """
    from playwright.sync_api import sync_playwright

    res: dict = {"payload": {}, "views": {}, "click": {}, "open_bytes": None}
    with App() as app, sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip
        # Opened directly, as a visitor's bookmark would be, on a server nobody has visited yet.
        ws = WsCounter()
        page, open_bytes = open_text_page(browser, app, ws)
        res["open_bytes"] = open_bytes
        # Did the visit go through app.py (st.navigation: page title "attnviz", nav "Text attention")?
        nav = (
            page.locator('[data-testid="stSidebarNav"]').inner_text()
            if page.locator('[data-testid="stSidebarNav"]').count()
            else ""
        )
        res["router"] = {"title": page.title(), "nav": " / ".join(x for x in nav.split("\n") if x.strip())}
        log(f"browser: /text opened ({fmt_bytes(open_bytes)} over the websocket)")

        for case in cases:
            tm = case.tm
            if case.load_name is not None:
                _load_in_sidebar(page, ws, case, quiet_each)
            for n in sizes:
                m = submit_sentence(page, ws, case.texts[n], expect_for("Single head", caption_for(n, tm)), quiet_each)
                res["payload"][(case.key, n)] = m
                log(f"browser: {case.key} n={n}: {fmt_bytes(m.bytes)}, {m.drawn_text()}")
                if case.key == "minilm" and n == VIEW_SIZE:
                    res["views"] = view_cycle(page, ws, caption_for(n, tm), draw_rounds, quiet_each)
        page.close()

        # Click-on-cell smoke check, in a new session (fresh session state).
        res["click"] = click_smoke(browser, app, cases[0], quiet_each)
        browser.close()
    return res


def _load_in_sidebar(page, ws: WsCounter, case: ModelCase, quiet_each: float) -> None:
    """Load ``case``'s model as a user would: 'Another model' in the sidebar, then 'Load'."""
    tm = case.tm
    # A short sentence first, so that no size below equals the text on the page.
    filler = "Loading another model."
    submit_sentence(page, ws, filler, expect_for("Single head", " tokens · "), quiet_each)
    field_ = page.locator('[data-testid="stTextInput"] input[aria-label="Another model"]')
    field_.fill(case.load_name)
    load = page.locator('[data-testid="stFormSubmitButton"] button').filter(has_text="Load")
    caption = f"{n_tokens(tm.tokenizer, filler)} tokens · {tm.n_layers} layers"
    m = act_and_settle(page, ws, load.click, expect_for("Single head", caption))
    log(f"browser: loaded {case.label} in the sidebar ({'ok' if m.ok else m.note})")


def view_cycle(page, ws: WsCounter, caption: str, rounds: int, quiet_each: float) -> dict:
    """Click every view in turn, ``rounds`` times; the first visit of a view sends its figure."""
    out = {v: [] for v in VIEWS}
    order = VIEWS[1:] + VIEWS[:1]  # the page is on "Single head"
    for r in range(rounds):
        for v in order:
            m = click_view(page, ws, v, caption, quiet_each)
            out[v].append(m)
            log(f"browser: view {v!r} round {r + 1}: {fmt_bytes(m.bytes)} ({m.refs} cached refs), {m.drawn_text()}")
    return out
