#!/usr/bin/env python
"""Draw time of every page in headless Chromium: navigation -> the page has finished drawing.

Run from the repository root::

    python benchmarks/page_draw.py              # 5 warm runs per page after the cold one (~2-3 min)
    python benchmarks/page_draw.py --runs 3     # fewer runs

Starts the real app (``streamlit run app.py`` on a free port, log in ``benchmarks/out/``) and
Chromium (``tests/browser/live_app.py``, shared with the browser tests). For each page (home,
text, image, worked example, head statistics), in a new browser context each time (a new
Streamlit session, as a new visitor), it measures from ``page.goto`` until:

- Streamlit has sent ``script_finished`` (success) for a run of the page, its title (``h1``) is
  shown, its status widget ("Running...") is gone, no element is stale (greyed out) and none
  is a skeleton (an element whose code is still loading: Plotly's is loaded on first use),
- every Plotly chart (``.js-plotly-plot``) has drawn (it holds its ``.main-svg``),
- and nothing changed for ``--quiet`` seconds: neither the number of charts nor any node inside them.

The time reported is when the last of these happened: the later of "ready" and the last DOM
mutation inside a chart (a MutationObserver installed before the page's own scripts), on the
page's own clock (``performance.now()``, 0 = start of the navigation). The first visit of each
page on the fresh server (*cold*: models loaded and results computed, then cached for every
session) is reported apart from the median of the ``--runs`` later visits (*warm*). Websocket
bytes are the payload lengths of the frames Chromium received from the app until then.
Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser.live_app import VIEWPORT, LiveApp, launch_chromium  # noqa: E402

LOG_DIR = Path(__file__).resolve().parent / "out"  # git-ignored
PAGES = {
    "home": "",
    "text": "text",
    "image": "image",
    "worked example": "worked_example",
    "head statistics": "head_stats",
}

# Installed before the page's scripts: the time of the last DOM change inside a chart (or of a
# chart being added or removed).
INIT_JS = """
(() => {
  window.__draw = {last: 0};
  const inPlot = (n) => {
    const e = n && (n.nodeType === 1 ? n : n.parentElement);
    return !!(e && e.closest && e.closest('.js-plotly-plot'));
  };
  const touchesPlot = (r) => {
    for (const list of [r.addedNodes, r.removedNodes]) {
      for (const a of list) {
        if (a.nodeType === 1 && (a.matches('.js-plotly-plot') || a.querySelector?.('.js-plotly-plot'))) return true;
      }
    }
    return false;
  };
  new MutationObserver((records) => {
    for (const r of records) {
      if (inPlot(r.target) || touchesPlot(r)) {
        window.__draw.last = performance.now(); break;
      }
    }
  }).observe(document, {subtree: true, childList: true, characterData: true, attributes: true,
                        attributeFilter: ['href', 'xlink:href', 'width', 'height', 'viewBox']});
})();
"""

STATE_JS = """
() => {
  const charts = [...document.querySelectorAll('.js-plotly-plot')];
  return {
    now: performance.now(),
    title: !!document.querySelector('[data-testid=stMain] h1'),
    running: !!document.querySelector('[data-testid=stStatusWidget]'),
    stale: !!document.querySelector('[data-stale="true"]'),
    // An element whose code is still loading (Plotly's is loaded on first use) shows a skeleton.
    skeleton: !!document.querySelector('[data-testid=stSkeleton]'),
    charts: charts.length,
    drawn: charts.filter((g) => g.querySelector('.main-svg')).length,
    last: window.__draw ? window.__draw.last : 0,
  };
}
"""


@dataclass
class Visit:
    ms: float  # navigation -> finished drawing, page clock
    charts: int
    ws_bytes: int
    ok: bool = True
    note: str = ""


@dataclass
class PageResult:
    name: str
    cold: Visit | None = None
    warm: list[Visit] = field(default_factory=list)


def visit(browser, url: str, quiet: float, timeout: float) -> Visit:
    """One visit in a new context: navigation -> finished drawing (see the module docstring)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.add_init_script(INIT_JS)
    frames: list[tuple[float, int]] = []
    finished_runs: list[float] = []  # when Streamlit said a script run finished successfully

    def on_frame(payload) -> None:
        now = time.perf_counter()
        data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode("utf-8")
        frames.append((now, len(data)))
        msg = ForwardMsg()
        try:
            msg.ParseFromString(bytes(data))
        except Exception:  # not a ForwardMsg: counted, not parsed
            return
        if msg.WhichOneof("type") == "script_finished" and msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
            finished_runs.append(now)

    def on_ws(ws):
        ws.on("framereceived", on_frame)

    page.on("websocket", on_ws)
    try:
        page.goto(url, wait_until="commit")
        deadline = time.perf_counter() + timeout
        ready_since = None  # page time from which the page has been ready with the same charts
        signature = None
        state = None
        while time.perf_counter() < deadline:
            state = page.evaluate(STATE_JS)
            ready = (
                bool(finished_runs)
                and state["title"]
                and not state["running"]
                and not state["stale"]
                and not state["skeleton"]
                and state["charts"] == state["drawn"]
            )
            sig = (ready, state["charts"])
            if sig != signature:
                signature = sig
                ready_since = state["now"] if ready else None
            finished = max(ready_since or 0.0, state["last"])
            if ready_since is not None and state["now"] - finished >= quiet * 1000:
                done_at = time.perf_counter() - (state["now"] - finished) / 1000
                ws_bytes = sum(n for t, n in frames if t <= done_at)
                return Visit(ms=finished, charts=state["charts"], ws_bytes=ws_bytes)
            time.sleep(0.05)
        return Visit(ms=float("nan"), charts=-1, ws_bytes=sum(n for _, n in frames), ok=False, note=f"timeout {state}")
    finally:
        context.close()


def fmt_ms(v: float) -> str:
    return "–" if v != v else f"{v:,.0f}"


def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def table(results: list[PageResult], runs: int) -> str:
    lines = [
        f"| page | charts | cold (ms) | warm median (ms), {runs} runs | warm min–max (ms) | websocket bytes (warm) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        warm = [v for v in r.warm if v.ok]
        med = statistics.median(v.ms for v in warm) if warm else float("nan")
        lo = min((v.ms for v in warm), default=float("nan"))
        hi = max((v.ms for v in warm), default=float("nan"))
        ws = statistics.median(v.ws_bytes for v in warm) if warm else 0
        charts = warm[0].charts if warm else (r.cold.charts if r.cold else -1)
        cold = fmt_ms(r.cold.ms) if r.cold and r.cold.ok else "–"
        lines.append(f"| {r.name} | {charts} | {cold} | {fmt_ms(med)} | {fmt_ms(lo)}–{fmt_ms(hi)} | {fmt_bytes(ws)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="warm visits per page (median reported)")
    ap.add_argument("--quiet", type=float, default=1.0, help="seconds without change that mean 'finished'")
    ap.add_argument("--timeout", type=float, default=180.0, help="seconds one visit may take")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    results = [PageResult(name) for name in PAGES]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with LiveApp(log_path=LOG_DIR / "streamlit-page-draw.log") as app, sync_playwright() as p:
        browser = launch_chromium(p)
        for r, path in zip(results, PAGES.values(), strict=True):  # cold: first visit on this server
            r.cold = visit(browser, app.url(path), args.quiet, args.timeout)
            print(f"cold {r.name}: {fmt_ms(r.cold.ms)} ms {r.cold.note}", file=sys.stderr, flush=True)
        for i in range(args.runs):  # warm: pages in turn, so that no page is always measured first
            for r, path in zip(results, PAGES.values(), strict=True):
                v = visit(browser, app.url(path), args.quiet, args.timeout)
                r.warm.append(v)
                print(f"warm {i + 1} {r.name}: {fmt_ms(v.ms)} ms {v.note}", file=sys.stderr, flush=True)
        browser.close()
    print(
        f"Page draw time in headless Chromium (navigation -> finished drawing), {os.cpu_count()} CPU cores, "
        f"load average {load_before:.2f} before / {os.getloadavg()[0]:.2f} after, "
        f"{time.perf_counter() - started:.0f} s in all.\n"
    )
    print(table(results, args.runs))


if __name__ == "__main__":
    main()
