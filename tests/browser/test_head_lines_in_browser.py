"""Head lines answer in the browser, as BertViz's head view does: hovering a line names it, the
"Lines from" menu keeps one query token's lines and a legend click hides a head, all without a message
to the server (so without a rerun of the page or of the view)."""

from __future__ import annotations

from tests.browser.live_app import wait_idle
from tests.browser.page_tools import assert_no_errors, hover_text, plot_point, screenshot

#: Counts the websocket messages each way (installed before Streamlit opens its socket).
COUNT_WS = """
(() => {
  const W = window.WebSocket;
  const s = (window.__ws = {sent: 0, received: 0});
  function Counted(...args) {
    const ws = new W(...args);
    ws.addEventListener('message', () => { s.received += 1; });
    const send = ws.send.bind(ws);
    ws.send = (d) => { s.sent += 1; return send(d); };
    return ws;
  }
  Counted.prototype = W.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Counted[k] = W[k];
  window.WebSocket = Counted;
})();
"""

#: Every line segment of the chart: its head and its (query, key) rows as drawn (a trace is drawn to
#: the shorter of x and y); the heads whose lines are hidden; how many shapes (the token's band).
LINES_JS = """
() => {
  const g = document.querySelector('.js-plotly-plot');
  const out = {pairs: [], hidden: [], shapes: (g.layout.shapes || []).length};
  for (const t of g._fullData) {  // decoded: g.data keeps the typed arrays as sent (base64)
    if (t.mode !== 'lines' || !t.y || t.y.length < 3) continue;
    const n = Math.min(t.x.length, t.y.length);
    for (let i = 0; i + 1 < n; i += 3) out.pairs.push([t.name, t.y[i], t.y[i + 1]]);
    if (t.visible === 'legendonly') out.hidden.push(t.name);
  }
  return out;
}
"""

SHAPES_JS = "(n) => (document.querySelector('.js-plotly-plot').layout.shapes || []).length === n"


def _click(page, selector: str, index: int = 0) -> None:
    """Click a chart's SVG element at its centre, as a mouse does (Plotly's layers above it take the
    event and pass it down, which Playwright's own click refuses)."""
    element = page.locator(f".js-plotly-plot {selector}").nth(index)
    element.scroll_into_view_if_needed()
    box = element.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def _counts(page) -> tuple[int, int]:
    ws = page.evaluate("() => window.__ws")
    return ws["sent"], ws["received"]


def test_hover_the_menu_and_the_legend_work_without_the_server(live_app, page, page_events):
    page.context.add_init_script(COUNT_WS)
    page.goto(live_app.url("text?view=Head+lines"))
    page.wait_for_selector(".js-plotly-plot .updatemenu-header", timeout=120_000)
    wait_idle(page)
    before = page.evaluate(LINES_JS)
    queries = {q for _, q, _ in before["pairs"]}
    assert len(queries) > 3 and before["shapes"] == 0, before
    quiet = _counts(page)

    # Hover: the first line's hover point names its two tokens and its weight.
    point = page.evaluate(
        """() => { const t = document.querySelector('.js-plotly-plot')._fullData.find((d) => d.mode === 'markers');
                  return [t.x0, t.y[0], t.text[0]]; }"""
    )
    x, y = plot_point(page, 0, point[0], point[1])
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y)
    page.wait_for_selector(".hoverlayer .hovertext", timeout=10_000)
    shown = hover_text(page)
    assert "→" in shown and ":" in shown, shown

    # The menu: keep only token 2's lines, then every token's again.
    _click(page, ".updatemenu-header")
    _click(page, ".updatemenu-dropdown-button", 3)  # 0: every token, 1: token 0
    page.wait_for_function(SHAPES_JS, arg=1, timeout=15_000)
    screenshot(page, "head-lines-one-token")
    one = page.evaluate(LINES_JS)
    assert one["pairs"], "token 2 has no line left"
    assert {q for _, q, _ in one["pairs"]} == {2}, one["pairs"]
    assert {tuple(p) for p in one["pairs"]} == {tuple(p) for p in before["pairs"] if p[1] == 2}
    _click(page, ".updatemenu-header")
    # The open list scrolls to the chosen token: scroll it back to its top, to "every token".
    box = page.locator(".js-plotly-plot .updatemenu-dropdown-button").nth(3).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -2000)
    page.wait_for_timeout(300)
    _click(page, ".updatemenu-dropdown-button", 0)
    page.wait_for_function(SHAPES_JS, arg=0, timeout=15_000)
    again = page.evaluate(LINES_JS)
    assert sorted(map(tuple, again["pairs"])) == sorted(map(tuple, before["pairs"]))

    # The legend: a click on the head hides its lines. Plotly counts a click within 300 ms of the last one
    # on the chart (the menu's) as a double click, which would show the head alone instead.
    page.wait_for_timeout(500)
    _click(page, ".legend .legendtoggle")
    page.wait_for_function(
        "() => document.querySelector('.js-plotly-plot').data.some((t) => t.visible === 'legendonly')", timeout=15_000
    )
    hidden = page.evaluate(LINES_JS)["hidden"]
    assert hidden and set(hidden) == {name for name, _, _ in before["pairs"]}, hidden  # the one head drawn

    page.wait_for_timeout(500)
    assert _counts(page) == quiet, "the server was asked (or answered): the page or the view reran"
    assert_no_errors(page)
    page_events.assert_clean()
