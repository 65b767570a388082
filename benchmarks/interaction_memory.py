"""Memory over many interactions in the real app: does the server's memory grow with each click?

    python benchmarks/interaction_memory.py                        # 200 interactions per page (about 15 min on 2 cores)
    python benchmarks/interaction_memory.py --interactions 60 --every 20 --pages text

``benchmarks/memory.py`` reruns each page's whole script with a new input (AppTest, one process). This
one drives the served app (``streamlit run app.py``) in headless Chromium the way issue 16's visitor
does: on one input per page, ``--interactions`` clicks that rerun a view's fragment, cycling through
what the page offers (text page, 128 tokens: head, layer, view; image page: a patch, head, layer;
worked example, real mode: query token and head). Fragment reruns keep their own state in the session
and send deltas the browser keeps, so this is where a leak per partial rerun would show.

The server's resident set size (VmRSS of the Streamlit process, from ``/proc``) is read after the
first interaction and every ``--every`` interactions. The table gives each page's readings and its
growth over the last half of its interactions, when the caches of a page's one input are full: it
should be about zero. glibc keeps freed heap pages, so single readings move by tens of MB; the growth
over the last half is the figure to read.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.interaction_latency import LOGS, _texts, click_point  # noqa: E402
from tests.browser.live_app import IDLE_JS, VIEWPORT, LiveApp, launch_chromium  # noqa: E402

OUT = ROOT / "benchmarks" / "results-interaction-memory.md"
PAGES = ("text", "image", "worked")


def server_rss_mb(pid: int) -> float:
    """VmRSS of process ``pid`` in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def pick(page, label: str, option: int, exact: bool = True) -> None:
    """Choose ``option`` in the select box ``label``: the list is virtualised, so type to filter, then Enter."""
    page.get_by_role("combobox", name=label, exact=exact).first.click()
    page.keyboard.type(str(option))
    page.keyboard.press("Enter")


def _idle(page) -> None:
    page.wait_for_timeout(250)
    page.wait_for_function(IDLE_JS, timeout=180_000)


def _open(browser, url: str):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(url)
    page.wait_for_selector(".js-plotly-plot", timeout=300_000)
    _idle(page)
    return page


def text_actions(app, browser):
    page = _open(browser, app.url("text?text=" + quote(_texts()[128])))
    views = ("Single head", "Head lines", "All heads of a layer")

    def act(k: int) -> None:
        if k % 20 == 19:
            page.get_by_text(views[(k // 20) % len(views)], exact=True).click()
        elif k % 10 == 9:
            pick(page, "Layer", k % 6)
        else:
            pick(page, "Head", k % 12)

    return page, act


def image_actions(app, browser):
    page = _open(browser, app.url("image"))
    page.get_by_text("From a clicked patch", exact=True).click()  # a map whose layer and head can be picked
    _idle(page)

    def act(k: int) -> None:
        if k % 10 == 9:
            pick(page, "Layer", k % 2)
        elif k % 5 == 4:
            pick(page, "Head", k % 4)
        else:
            click_point(page, "cell row", 11 * k + 9)

    return page, act


def worked_actions(app, browser):
    page = _open(browser, app.url("worked_example?mode=Real+model"))

    def act(k: int) -> None:
        if k % 2:
            pick(page, "Head", k % 12)
        else:
            pick(page, "Query token i", k % 7, exact=False)

    return page, act


ACTIONS = {"text": text_actions, "image": image_actions, "worked": worked_actions}


def run_page(app, browser, name: str, interactions: int, every: int) -> list[tuple[int, float]]:
    page, act = ACTIONS[name](app, browser)
    readings: list[tuple[int, float]] = []
    for k in range(interactions):
        act(k)
        _idle(page)
        done = k + 1
        if done == 1 or done % every == 0 or done == interactions:
            readings.append((done, server_rss_mb(app.proc.pid)))
            print(f"  {name}: {done} interactions, server RSS {readings[-1][1]:,.0f} MB", flush=True)
    page.context.close()
    return readings


def growth(readings: list[tuple[int, float]]) -> float:
    """MB gained over the last half of the interactions (the reading nearest the middle to the last)."""
    last = readings[-1]
    middle = min(readings, key=lambda r: abs(r[0] - last[0] / 2))
    return last[1] - middle[1]


def report(results: dict[str, list[tuple[int, float]]], started: str, interactions: int) -> str:
    load = os.getloadavg()
    lines = [
        "# Server memory over interactions (issue 16)",
        "",
        f"Run {started} UTC; {interactions} interactions per page in headless Chromium against one "
        f"`streamlit run app.py`; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end.",
        "Server RSS (MB) after the interactions given; growth: the last reading minus the one at half-way.",
        "",
        "| page | readings (interactions: MB) | growth over the last half |",
        "|---|---|---:|",
    ]
    for name, readings in results.items():
        cells = ", ".join(f"{n}: {mb:,.0f}" for n, mb in readings)
        lines.append(f"| {name} | {cells} | {growth(readings):+,.0f} MB |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interactions", type=int, default=200)
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated: " + ", ".join(PAGES))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    results: dict[str, list[tuple[int, float]]] = {}
    LOGS.mkdir(parents=True, exist_ok=True)
    with LiveApp(log_path=LOGS / "interaction-memory.log") as app, sync_playwright() as p:
        browser = launch_chromium(p)
        for name in [n.strip() for n in args.pages.split(",") if n.strip()]:
            print(f"-- {name}", file=sys.stderr, flush=True)
            results[name] = run_page(app, browser, name, args.interactions, args.every)
        browser.close()
    text = report(results, started, args.interactions)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
