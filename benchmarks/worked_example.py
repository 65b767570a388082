"""Measure the worked-example page: explain_head's server time and the size of the page's charts.

    python benchmarks/worked_example.py [--sizes 16,128,512] [--repeats 7]

Prints a Markdown report. Server time is ``attnviz.explain_head`` on the bundled model (warm,
median of ``--repeats`` calls; the page caches it per sentence, layer and head). Chart sizes
are the figure JSON Streamlit sends (``plotly_chart.proto.spec``), read through AppTest, in
real mode with the default summaries and with "Show every dimension"; browser draw time is not
measured here (see benchmarks/text_page.py for the browser harness).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import attnviz  # noqa: E402
from attnviz.examples import DEFAULT_TEXT  # noqa: E402
from benchmarks.textbench.inputs import text_with_tokens  # noqa: E402


def server_times(tm, sizes: list[int], repeats: int) -> list[tuple[int, float, float]]:
    rows = []
    for n in sizes:
        text = DEFAULT_TEXT if n == 0 else text_with_tokens(tm.tokenizer, n)
        attnviz.explain_head(tm, text, 3, 5)  # warm: tokenizer caches, first-call allocations
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            attnviz.explain_head(tm, text, 3, 5)
            times.append(time.perf_counter() - t)
        n_tok = len(tm.tokenizer(text)["input_ids"])
        rows.append((n_tok, statistics.median(times) * 1000, max(times) * 1000))
    return rows


def page_payloads(text: str | None, show_all: bool) -> tuple[int, dict[str, int], float]:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    at.switch_page("pages/worked_example.py")
    at.run()
    at.radio(key="worked_mode").set_value("Real model").run()
    if text is not None:
        at.text_area(key="worked_text").input(text).run()
    if show_all:
        at.toggle(key="worked_show_all").set_value(True).run()
    t = time.perf_counter()
    at.selectbox(key="worked_head").set_value(5).run()  # one rerun on a new head, cache cold for it
    seconds = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]
    sizes = {c.key: len(c.proto.spec) for c in at.get("plotly_chart")}
    return sum(sizes.values()), sizes, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="0,128,512", help="token counts; 0 = the page's default sentence")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tm = attnviz.load_text_model(device="cpu")
    print("## Worked example (bundled all-MiniLM-L6-v2, CPU)\n")
    print("### explain_head, layer 3 head 5 (warm)\n\n| tokens | median ms | max ms |\n|---:|---:|---:|")
    for n_tok, med, top in server_times(tm, sizes, args.repeats):
        print(f"| {n_tok} | {med:.1f} | {top:.1f} |")
    print("\n### Real-mode page: charts sent on one rerun (new head)\n")
    print("| tokens | show every dimension | charts | total kB | largest chart kB | rerun s (AppTest) |")
    print("|---:|:---:|---:|---:|---:|---:|")
    for n in sizes:
        text = None if n == 0 else text_with_tokens(tm.tokenizer, n)
        n_tok = len(tm.tokenizer(text or DEFAULT_TEXT)["input_ids"])
        for show_all in (False, True):
            total, each, seconds = page_payloads(text, show_all)
            biggest = max(each, key=each.get)
            print(
                f"| {n_tok} | {'yes' if show_all else 'no'} | {len(each)} | {total / 1e3:.1f} | "
                f"{each[biggest] / 1e3:.1f} ({biggest}) | {seconds:.2f} |"
            )


if __name__ == "__main__":
    main()
