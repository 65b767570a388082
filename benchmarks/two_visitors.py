#!/usr/bin/env python
"""Two visitors at once (issue 13): does one visitor's 8,192-token prompt slow the other down?

Run from the repository root::

    python benchmarks/two_visitors.py              # visitor A pastes 8,192 tokens
    python benchmarks/two_visitors.py --chars 20000  # a shorter prompt, for a quick check

It starts the app and opens two headless Chromium pages. Visitor B uses the bundled encoder on
the text page and switches heads (click -> chart updated), first alone, then while visitor A's
decoder runs its long prompt, then while A's page draws its views. It also runs B's own short
prompt on the *same* decoder during A's run (which waits for the model: one forward pass at a
time per shared model). The server process's resident memory is sampled every 0.2 s.
Figures are printed and written to ``benchmarks/results-two-visitors.md``; nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import date
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.live_app import VIEWPORT, LiveApp, launch_chromium, wait_idle  # noqa: E402

OUT = Path(__file__).resolve().parent / "results-two-visitors.md"
DECODER = "Use bundled SmolLM2-135M-Instruct (decoder)"


class Memory:
    """The server's resident memory, sampled in a thread: the peak since :meth:`mark`."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in [self.proc, *self.proc.children(recursive=True)])

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(0.2)

    def mark(self) -> int:
        self.peak = self.rss()
        return self.peak

    def close(self) -> None:
        self._stop.set()


def choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label, exact=True).click()
    page.keyboard.type(option)
    page.keyboard.press("Enter")


def head_switch_seconds(page, heads: list[int]) -> list[float]:
    """Click -> the single-head chart shows the new head, for each head in turn."""
    times = []
    for h in heads:
        start = time.perf_counter()
        choose(page, "Head", str(h))
        page.wait_for_function(
            f"() => [...document.querySelectorAll('.gtitle')].some(t => /head {h}\\b/.test(t.textContent))",
            timeout=600_000,
        )
        times.append(time.perf_counter() - start)
    return times


def open_text_page(browser, url: str):
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{url}/text")
    page.wait_for_selector(".js-plotly-plot", timeout=180_000)
    wait_idle(page)
    return page


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chars", type=int, default=200_000, help="characters visitor A pastes (cut to 8,192 tokens)")
    args = ap.parse_args()
    long_text = ((ROOT / "README.md").read_text(encoding="utf-8") * 40)[: args.chars]
    rows: list[tuple[str, str]] = []
    log = ROOT / "test-output" / "streamlit-two-visitors.log"
    with LiveApp(log_path=log) as app, sync_playwright() as p:
        memory = Memory(app.proc.pid)
        browser = launch_chromium(p)
        a, b = open_text_page(browser, app.base_url), open_text_page(browser, app.base_url)
        a.get_by_role("button", name=DECODER).click()
        wait_idle(a, timeout_ms=300_000)
        idle = head_switch_seconds(b, [1, 2, 3, 4, 5])
        rows.append(("B switches heads (encoder), alone", f"median {statistics.median(idle):.2f} s"))
        before = memory.mark()

        box = a.get_by_label("Sentence", exact=True)
        box.fill(long_text)
        started = time.perf_counter()
        box.press("Control+Enter")
        a.get_by_text("tokens through 30 layers").wait_for(timeout=120_000)
        during = head_switch_seconds(b, [6, 7, 8, 9, 10, 11])
        rows.append(("B switches heads (encoder) while A's forward runs", f"median {statistics.median(during):.2f} s"))
        a.get_by_text("Zoom: exact weights").wait_for(timeout=900_000)
        forward = time.perf_counter() - started
        wait_idle(a, timeout_ms=300_000)
        rows.append(("A: paste -> first long view drawn", f"{forward:.1f} s"))
        above = (memory.peak - before) / 2**20
        rows.append(("server RSS peak above the app with both models loaded, during A's run", f"{above:,.0f} MB"))

        # B now runs a short prompt on the same decoder while A asks for another head (no model run).
        b.get_by_role("button", name=DECODER).click()
        wait_idle(b, timeout_ms=300_000)
        bbox = b.get_by_label("Sentence", exact=True)
        bbox.fill("The cat sat on the mat. The cat")
        start = time.perf_counter()
        bbox.press("Control+Enter")
        choose(a, "Head", "4")
        b.wait_for_function("() => [...document.querySelectorAll('.gtitle')].length > 0", timeout=300_000)
        wait_idle(b, timeout_ms=300_000)
        took = time.perf_counter() - start
        rows.append(("B's short decoder prompt while A switches heads of its long one", f"{took:.2f} s"))
        a_switch = head_switch_seconds(a, [5, 6, 7])
        rows.append(("A switches heads of its 8,192-token prompt", f"median {statistics.median(a_switch):.2f} s"))
        whole = (memory.peak - before) / 2**20
        rows.append(("server RSS peak above the app with both models loaded, whole run", f"{whole:,.0f} MB"))
        memory.close()
        browser.close()
        errors = [line for line in app.log_tail(400).splitlines() if "Traceback" in line or "Error" in line]
    table = "\n".join(["| measurement | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])
    cores = psutil.cpu_count()
    text = (
        f"# Two visitors at once ({date.today()}, {cores} cores, other jobs may run)\n\n"
        f"Visitor A pastes {args.chars:,} characters (cut to the decoder's 8,192 tokens); visitor B uses the "
        "text page at the same time. Produced by `python benchmarks/two_visitors.py`.\n\n"
        f"{table}\n\nErrors in the server log: {len(errors)}.\n"
    )
    OUT.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
