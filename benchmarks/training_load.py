"""Does a training started from the app starve the other visitors? (issue 17: "Several visitors
training at once must not starve the app".)

    python benchmarks/training_load.py                # 6 head changes idle, then 6 while a training runs
    python benchmarks/training_load.py --repeats 10

One served app (``streamlit run app.py``) and headless Chromium with two visitors: one on the text page
(16 tokens, the head picker), one on "Train on your images". The text visitor changes the head
``--repeats`` times on an idle server, then the other visitor uploads the training benchmark's zip
(2 classes x 50 images at 64 x 64, benchmarks/train_in_app.py) and starts a training with the default
60 s budget, and the text visitor changes the head ``--repeats`` times again while it runs. Each change is
timed as in interaction_latency.py (drawn: the action to the page's last DOM mutation; server: the
websocket frames at Chromium's network layer). The training runs in a background thread with one
PyTorch thread (attnviz.ui.image_training), so on 2 cores a visitor should keep one.
Writes ``benchmarks/results-training-load.md``; figures only, nothing asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.interaction_latency import _cpu_note, _page, _texts, _wait_quiet, measure, pick  # noqa: E402
from benchmarks.train_in_app import TRAIN_SEED, shape_zip  # noqa: E402
from tests.browser.live_app import LiveApp, launch_chromium  # noqa: E402
from tests.browser.page_tools import upload  # noqa: E402

OUT = ROOT / "benchmarks" / "results-training-load.md"


def _head_changes(page, repeats: int, offset: int) -> list[tuple[float, float, int]]:
    return [measure(page, lambda k=k: pick(page, "Head", 1 + (offset + k) % 11)) for k in range(repeats)]


def _row(what: str, runs: list[tuple[float, float, int]]) -> str:
    drawn, server, _ = zip(*runs, strict=True)
    return (
        f"| {what} | {statistics.median(drawn):.2f} s / {max(drawn):.2f} s "
        f"| {statistics.median(server):.2f} s / {max(server):.2f} s | {len(runs)} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    data = shape_zip(["circle", "cross"], 50, TRAIN_SEED, 64)
    with LiveApp(ROOT / "benchmarks" / "out" / "training-load-app.log") as app, sync_playwright() as pw:
        browser = launch_chromium(pw)
        text = _page(browser)
        text.goto(app.url("text?text=" + quote(_texts()[16])))
        text.wait_for_selector(".js-plotly-plot", timeout=180_000)
        _wait_quiet(text)
        idle = _head_changes(text, args.repeats, 0)

        trainer = _page(browser)
        trainer.goto(app.url("train_images"))
        trainer.get_by_text("Start training").first.wait_for(timeout=180_000)
        upload(trainer, "shapes.zip", data, "application/zip")
        trainer.locator("[data-testid=stMain]").get_by_role("button", name="Start training", exact=True).click()
        trainer.get_by_text("held-out accuracy").first.wait_for(timeout=120_000)  # the first progress poll
        busy = _head_changes(text, args.repeats, args.repeats)
        still = "Stop" in trainer.locator("[data-testid=stMain]").inner_text()  # the training outlived the clicks
        trainer.get_by_text("It is now the image page's model").first.wait_for(timeout=180_000)
        browser.close()

    lines = [
        "# A visitor's clicks while another trains (issue 17)",
        "",
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {_cpu_note()} at the end. The served app in headless "
        "Chromium: a text-page visitor (16 tokens) changes the head, first on an idle server, then while a second "
        "visitor's training (2 classes x 50 images at 64 x 64, 60 s budget, one PyTorch thread) runs"
        + ("" if still else " (it had ended before the last click: fewer clicks overlapped it)")
        + ". Median / worst.",
        "",
        "| text visitor, change head | drawn | server | runs |",
        "|---|---:|---:|---:|",
        _row("idle server", idle),
        _row("during a training", busy),
        "",
    ]
    report = "\n".join(lines)
    print(report)
    args.out.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
