"""Click → drawn for each interaction of issue 16, in the real app and headless Chromium.

    python benchmarks/interaction_latency.py                 # every interaction, 5 times each
    python benchmarks/interaction_latency.py --only worked   # a group: text, decoder, image, worked, toy, first
    python benchmarks/interaction_latency.py --repeats 3 --first-repeats 2 --note "after fragments"

For each interaction it prints and writes (``benchmarks/results-interaction-latency.md``):

- **drawn**: the action (click, option chosen, cell committed) → the page's last DOM mutation, once
  the page has been quiet for 1.2 s (Streamlit's status widget gone, no skeleton);
- **server**: the action's first websocket message to the server → the last message from it (the
  script run, fragment or page, and its transfer), timed by Chromium's network layer (the DevTools
  protocol's websocket frame events): timed in the page instead, by wrapping ``WebSocket``, a main
  thread busy drawing the first chart delayed the next message's event by up to half a second, so a
  slow draw also counted as server time;
- **bytes**: what the server sent over the websocket in that time (compression is off in Streamlit).

Median and worst of ``--repeats``. Clicks are measured once the server's warm start has loaded every
bundled model (the home page's "Loading models in the background" line gone): before, the text and
decoder groups ran while it loaded the image model and the decoder on the same two cores. First
visits start a fresh server (``streamlit run app.py``, warm starts on, as deployed) and a fresh browser
context for each repeat: the home page until its title is drawn, the worked example until its first
chart is drawn. Figures only; nothing is asserted.
Times depend on the machine: the 2 cores here are shared with other work, which the report says.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.live_app import IDLE_JS, VIEWPORT, LiveApp, launch_chromium  # noqa: E402

OUT = ROOT / "benchmarks" / "results-interaction-latency.md"
LOGS = ROOT / "benchmarks" / "out"

#: Wraps WebSocket before Streamlit opens it: bytes received, time of the last message each way.
WS_JS = """
(() => {
  const W = window.WebSocket;
  const s = (window.__ws = {bytes: 0, firstSend: 0, lastRecv: 0, armed: false});
  function Wrapped(...args) {
    const ws = new W(...args);
    ws.addEventListener('message', (e) => {
      const d = e.data;
      s.bytes += d.byteLength ?? d.size ?? d.length ?? 0;
      s.lastRecv = performance.now();
    });
    const send = ws.send.bind(ws);
    ws.send = (d) => { if (s.armed && !s.firstSend) s.firstSend = performance.now(); return send(d); };
    return ws;
  }
  Wrapped.prototype = W.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Wrapped[k] = W[k];
  window.WebSocket = Wrapped;
  window.__last = performance.now();
  const watch = () => new MutationObserver(() => { window.__last = performance.now(); })
    .observe(document.documentElement, {subtree: true, childList: true, attributes: true, characterData: true});
  if (document.documentElement) watch(); else document.addEventListener('DOMContentLoaded', watch);
})();
"""
ARM_JS = """() => {
  Object.assign(window.__ws, {bytes: 0, firstSend: 0, lastRecv: 0, armed: true});
  return performance.now();
}"""
QUIET_S = 1.2


def _cpu_note() -> str:
    try:
        load = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) on {os.cpu_count()} cores"


def _wait_quiet(page, timeout_ms: int = 180_000) -> None:
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)
    while True:
        gap = page.evaluate("() => performance.now() - window.__last")
        if gap > QUIET_S * 1000:
            return
        page.wait_for_timeout(200)
        page.wait_for_function(IDLE_JS, timeout=timeout_ms)


#: Each page's websocket frames as Chromium's network layer saw them: ("sent" | "recv", seconds).
_FRAMES: dict = {}


def _network_server_time(frames: list) -> float:
    """The first frame sent → the last frame received after it, in seconds (0 when none)."""
    sent = [t for kind, t in frames if kind == "sent"]
    if not sent:
        return 0.0
    received = [t for kind, t in frames if kind == "recv" and t > sent[0]]
    return max(received) - sent[0] if received else 0.0


def measure(page, act) -> tuple[float, float, int]:
    """(drawn s, server s, bytes) of one action on an idle page."""
    _wait_quiet(page)
    frames = _FRAMES[page]
    t0 = page.evaluate(ARM_JS)
    frames.clear()
    act()
    # The server has answered (under load it may start later than the page's quiet time).
    page.wait_for_function(
        "() => window.__ws.firstSend && window.__ws.lastRecv > window.__ws.firstSend", timeout=180_000
    )
    _wait_quiet(page)
    last, ws = page.evaluate("() => [window.__last, window.__ws]")
    page.evaluate("() => { window.__ws.armed = false; }")
    return (last - t0) / 1000, _network_server_time(frames), int(ws["bytes"])


def pick(page, label: str, index: int) -> None:
    page.get_by_role("combobox", name=label).first.click()
    page.get_by_role("option").nth(index).click()


#: Page coordinates of point ``k`` of the first chart's trace whose hover template contains ``marker``
#: (the invisible click layers of the mosaic and the overlay), from Plotly's own axes.
POINT_JS = """
([marker, k]) => {
  for (const g of document.querySelectorAll('.js-plotly-plot')) {
    const t = (g._fullData || []).find((d) => (d.hovertemplate || '').includes(marker));
    if (!t) continue;
    g.scrollIntoView({block: 'center'});
    const r = g.getBoundingClientRect(), fl = g._fullLayout;
    const xa = fl[(t.xaxis || 'x').replace('x', 'xaxis')], ya = fl[(t.yaxis || 'y').replace('y', 'yaxis')];
    const i = k % t.x.length;
    return [r.left + xa._offset + xa.d2p(t.x[i]), r.top + ya._offset + ya.d2p(t.y[i]), t.x.length];
  }
  return null;
}
"""


def click_point(page, marker: str, k: int) -> None:
    """Hover, then click, point ``k`` (modulo the trace's length) of a chart's click layer."""
    try:
        page.wait_for_function(POINT_JS, arg=[marker, k], timeout=120_000)
    except Exception:  # noqa: BLE001  (said below, with what was looked for)
        pass
    found = page.evaluate(POINT_JS, [marker, k])
    if found is None:
        raise RuntimeError(f"no chart with a trace whose hover template contains {marker!r}")
    x, y, _ = found
    page.mouse.move(x - 2, y - 2)
    page.mouse.move(x, y)
    page.wait_for_timeout(150)
    page.mouse.click(x, y)


# ---------------------------------------------------------------- the interactions


def _texts() -> dict[int, str]:
    from transformers import AutoTokenizer

    from benchmarks.textbench.inputs import bundled_model_dir, text_with_tokens

    tok = AutoTokenizer.from_pretrained(bundled_model_dir(), trust_remote_code=False)
    return {n: text_with_tokens(tok, n) for n in (16, 128)}


def text_group(app, browser, repeats: int, rows: list) -> None:
    for n, text in _texts().items():
        page = _page(browser)
        page.goto(app.url("text?text=" + quote(text)))
        page.wait_for_selector(".js-plotly-plot", timeout=180_000)
        _record(
            rows,
            "Text",
            f"change head, {n} tokens",
            [measure(page, lambda k=k, pg=page: pick(pg, "Head", 1 + k % 11)) for k in range(repeats)],
        )
        if n == 16:
            runs = []
            for k in range(repeats):
                page.get_by_text("Model overview", exact=True).click()
                _wait_quiet(page)
                tile = 13 * k + 5  # a different layer and head each time
                runs.append(measure(page, lambda t=tile, pg=page: click_point(pg, "click to open", t)))
            _record(rows, "Text", "click an overview tile, 16 tokens", runs)
        page.context.close()


def _decoder_text(n: int = 128) -> str:
    from transformers import AutoTokenizer

    from attnviz.text.bundled_decoder import converted_folder
    from benchmarks.textbench.inputs import text_with_tokens

    tok = AutoTokenizer.from_pretrained(converted_folder(), trust_remote_code=False)
    return text_with_tokens(tok, n)


def decoder_group(app, browser, repeats: int, rows: list) -> None:
    """The bundled decoder (SmolLM2-135M-Instruct, 30 layers x 9 heads) at ~128 tokens, opened by a link:
    a head change in the single-head view, and its own view, the attention sinks (every head's mass on
    the first token), chosen from the single head."""
    page = _page(browser)
    page.goto(app.url("text?model=SmolLM2-135M-Instruct&text=" + quote(_decoder_text())))
    page.wait_for_selector(".js-plotly-plot", timeout=300_000)
    caption = page.get_by_text("decoder SmolLM2").first.inner_text()  # "128 tokens · 30 layers × 9 heads · ..."
    n = caption.split(" tokens")[0].strip()
    _record(rows, "Text, decoder", f"change head, {n} tokens",
            [measure(page, lambda k=k: pick(page, "Head", 1 + k % 8)) for k in range(repeats)])  # fmt: skip
    runs = []
    for _ in range(repeats):
        runs.append(measure(page, lambda: page.get_by_text("Attention sinks", exact=True).click()))
        _wait_quiet(page)
        page.get_by_text("Single head", exact=True).click()  # back, not timed
    _record(rows, "Text, decoder", f"view: attention sinks, {n} tokens", runs)
    page.context.close()


#: The image page's overlay title contains ``text``; every map over the image has opacity ``v``.
OVERLAY_TITLE_JS = """(text) => {
  const g = document.querySelector('.st-key-image_overlay .js-plotly-plot');
  return !!g && ((g.layout.title || {}).text || '').includes(text);
}"""
OPACITY_JS = """(v) => [...document.querySelectorAll('.js-plotly-plot')].flatMap((g) => g.data || [])
  .filter((t) => t.type === 'heatmap').every((t) => Math.abs(t.opacity - v) < 1e-6)"""


def image_group(app, browser, repeats: int, rows: list) -> None:
    page = _page(browser)
    page.goto(app.url("image"))
    page.wait_for_selector(".js-plotly-plot", timeout=180_000)

    def until(act, js: str, arg):
        """``act``, then wait until the page shows its result: a view's own rerun shows no status widget."""

        def run():
            act()
            page.wait_for_function(js, arg=arg, timeout=180_000)

        return run

    thumb = page.locator(".st-key-image_opacity input[type=range]").first
    cells = [11 * k + 9 for k in range(repeats)]  # a different patch each time
    interactions = {
        "click a patch": [
            until(
                lambda c=c: click_point(page, "cell row", c),
                OVERLAY_TITLE_JS,
                "From patch ({}, {})".format(*divmod(c, 8)),
            )
            for c in cells
        ],
        "change head": [
            until(lambda k=k: pick(page, "Head", 1 + k % 4), OVERLAY_TITLE_JS, f"head {k % 4}") for k in range(repeats)
        ],
        "change layer": [
            until(lambda k=k: pick(page, "Layer", k % 2), OVERLAY_TITLE_JS, f"layer {k % 2},") for k in range(repeats)
        ],
        "opacity, one step": [  # a new value each time: Streamlit's browser keeps messages it was sent
            until(lambda: thumb.press("ArrowRight"), OPACITY_JS, round(0.55 + 0.05 * (k + 1), 2))
            for k in range(repeats)
        ],
    }
    for what, acts in interactions.items():
        _record(rows, "Image", what, [measure(page, act) for act in acts])
        page.locator("h1").first.click()  # a clicked chart keeps the focus: a click on a picker would only take it
    page.context.close()


def worked_group(app, browser, repeats: int, rows: list) -> None:
    page = _page(browser)
    page.goto(app.url("worked_example?mode=Real+model"))
    page.wait_for_selector(".js-plotly-plot", timeout=180_000)
    _record(rows, "Worked example, real mode", "change query token",
            [measure(page, lambda k=k: pick(page, "Query token i", 2 + k % 5)) for k in range(repeats)])  # fmt: skip
    _record(rows, "Worked example, real mode", "change head",
            [measure(page, lambda k=k: pick(page, "Head", 1 + k % 11)) for k in range(repeats)])  # fmt: skip
    runs = []
    toggle = page.get_by_text("Show every dimension").first
    for _ in range(repeats):
        runs.append(measure(page, toggle.click))
        _wait_quiet(page)
        toggle.click()  # back off, not timed
        _wait_quiet(page)
    _record(rows, "Worked example, real mode", '"Show every dimension" (on)', runs)
    page.context.close()


def toy_group(app, browser, repeats: int, rows: list) -> None:
    page = _page(browser)
    page.goto(app.url("worked_example"))
    page.wait_for_selector(".js-plotly-plot", timeout=180_000)

    def edit(value: str) -> None:
        box = (
            page.locator("[data-testid=stDataFrame]")
            .first.locator("canvas[data-testid=data-grid-canvas]")
            .bounding_box()
        )
        page.mouse.dblclick(box["x"] + box["width"] * 0.62, box["y"] + 35 + 35 * 1.5)
        field = page.locator("input.gdg-input, textarea.gdg-input").first
        field.wait_for(timeout=10_000)
        field.fill(value)
        field.press("Enter")

    _record(rows, "Worked example, toy mode", "edit one cell",
            [measure(page, lambda k=k: edit(str(2 + k))) for k in range(repeats)])  # fmt: skip
    page.context.close()


#: A drawn chart with data: not the empty 10-px chart a page shows while the warm start imports
#: (it makes the browser load Plotly's script meanwhile).
CHART_WITH_DATA_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].some(
  (g) => g.querySelector('.main-svg') && g._fullData && g._fullData.length > 0)"""


def first_group(_app, browser, repeats: int, rows: list) -> None:
    for label, path, ready in (
        ("home page (title drawn)", "", "() => !!document.querySelector('h1')"),
        ("worked example (first chart drawn)", "worked_example", CHART_WITH_DATA_JS),
    ):
        runs = []
        for k in range(repeats):
            with LiveApp(log_path=LOGS / f"interaction-first-{k}.log") as fresh:
                page = _page(browser)  # a new context: nothing cached in the browser either
                t0 = time.perf_counter()
                page.goto(fresh.url(path))
                page.wait_for_function(ready, timeout=300_000)
                page.wait_for_function(IDLE_JS, timeout=300_000)
                runs.append((time.perf_counter() - t0, 0.0, 0))
                page.context.close()
        _record(rows, "First visit", label, runs)


GROUPS = {
    "text": text_group,
    "decoder": decoder_group,
    "image": image_group,
    "worked": worked_group,
    "toy": toy_group,
    "first": first_group,
}


# ---------------------------------------------------------------- report


def wait_for_warm_start(app, browser) -> float:
    """Wait until the server's warm start has loaded every bundled model; returns the seconds waited.

    The models load in the background of a fresh server (the decoder's first conversion takes minutes):
    a click measured meanwhile shares the two cores with that loading, which is a first visit's cost
    (measured by the "first" group), not a click's.
    """
    t0 = time.perf_counter()
    page = _page(browser)
    for _ in range(200):
        page.goto(app.url(""))
        page.wait_for_selector("h1", timeout=180_000)
        _wait_quiet(page)
        if not page.get_by_text("Loading models in the background").count():
            break
        page.wait_for_timeout(3000)
    page.context.close()
    return time.perf_counter() - t0


def _page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(WS_JS)
    page = context.new_page()
    frames: list = []
    cdp = context.new_cdp_session(page)
    cdp.on("Network.webSocketFrameSent", lambda e: frames.append(("sent", e["timestamp"])))
    cdp.on("Network.webSocketFrameReceived", lambda e: frames.append(("recv", e["timestamp"])))
    cdp.send("Network.enable")
    _FRAMES[page] = frames
    return page


def _record(rows: list, where: str, what: str, runs: list[tuple[float, float, int]]) -> None:
    drawn, server, sent = zip(*runs, strict=True)
    row = {
        "page": where,
        "interaction": what,
        "drawn": (statistics.median(drawn), max(drawn)),
        "server": (statistics.median(server), max(server)) if any(server) else None,
        "bytes": (statistics.median(sent), max(sent)) if any(sent) else None,
        "n": len(runs),
        "load": os.getloadavg()[0],
    }
    rows.append(row)
    print(_line(row), flush=True)


def _line(r: dict) -> str:
    drawn = f"{r['drawn'][0]:.2f} s / {r['drawn'][1]:.2f} s"
    server = f"{r['server'][0]:.2f} s / {r['server'][1]:.2f} s" if r["server"] else "—"
    sent = f"{r['bytes'][0] / 1e3:,.0f} kB / {r['bytes'][1] / 1e3:,.0f} kB" if r["bytes"] else "—"
    return f"| {r['page']} | {r['interaction']} | {drawn} | {server} | {sent} | {r['n']} | {r['load']:.1f} |"


def report(rows: list, note: str, started: str) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    head = [
        "# Interaction latency (issue 16)",
        "",
        f"Run {started} UTC, commit {commit.strip() or '?'}{', ' + note if note else ''}; {_cpu_note()} at the end.",
        "Headless Chromium (Debian's) through Playwright, the real app (`streamlit run app.py`).",
        "The machine's 2 cores were shared with other work: times are pessimistic, bytes are not affected.",
        "",
        "drawn: action → last DOM mutation (the page then quiet 1.2 s); server: the action's first websocket",
        "message → the server's last message of the run, at Chromium's network layer; bytes: websocket bytes",
        "the server sent.",
        "Each cell: median / worst.",
        "",
        "| page | interaction | drawn | server | bytes sent | runs | load (1 min) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(head + [_line(r) for r in rows]) + "\n"


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--first-repeats", type=int, default=5, help="fresh server starts per first visit")
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated: " + ", ".join(GROUPS))
    parser.add_argument("--note", default="", help="said in the report's first line")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    rows: list = []
    groups = [g.strip() for g in args.only.split(",") if g.strip()]
    LOGS.mkdir(parents=True, exist_ok=True)
    with LiveApp(log_path=LOGS / "interaction-latency.log") as app, sync_playwright() as p:
        browser = launch_chromium(p)
        if any(name != "first" for name in groups):
            print(f"-- the warm start loaded the models in {wait_for_warm_start(app, browser):.0f} s", file=sys.stderr)
        for name in groups:
            print(f"-- {name}", file=sys.stderr, flush=True)
            repeats = args.first_repeats if name == "first" else args.repeats
            GROUPS[name](app, browser, repeats, rows)
        browser.close()
    text = report(rows, args.note, started)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
