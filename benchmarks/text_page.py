#!/usr/bin/env python
"""Performance benchmark of the text-attention page (payload, server time, browser draw time).

Run from the repository root::

    python benchmarks/text_page.py                 # 16, 64, 128, 256 and 512 tokens (~5-7 min on 2 idle cores)
    python benchmarks/text_page.py --quick         # 16 and 128 tokens only
    python benchmarks/text_page.py --sizes 16,64   # any token counts (special tokens included)

It prints markdown tables and writes them to ``benchmarks/results-text.md``. Targets are
printed next to the results, never asserted. See ``benchmarks/README.md`` for what each
column means. Two models are measured: the bundled all-MiniLM-L6-v2 and a bert-base-sized
model with random weights (``BertConfig()`` defaults) written to a temporary folder.

Needs: torch, transformers, streamlit, plotly, bertviz, playwright (Python) and a Chromium
binary (``--chromium``, default ``/usr/bin/chromium``). No network access is used.
The parts live in ``benchmarks/textbench/``, one module each; this file is the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from textbench.common import DEFAULT_SIZES, QUICK_SIZES
from textbench.run import run

OUT_MD = Path(__file__).resolve().parent / "results-text.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=None, help="comma-separated token counts (default 16,64,128,256,512)")
    ap.add_argument("--quick", action="store_true", help="only 16 and 128 tokens")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--draw-rounds", type=int, default=3, help="clicks per view for the draw-time median")
    ap.add_argument("--no-browser", action="store_true", help="skip the Streamlit + Chromium measurements")
    ap.add_argument("--no-bertviz", action="store_true", help="skip the BertViz payload comparison")
    ap.add_argument("--out", type=Path, default=OUT_MD)
    ap.add_argument(
        "--wait-quiet", type=float, default=60.0,
        help="before each timed phase, wait up to this many seconds for other processes to leave the CPU idle",
    )  # fmt: skip
    args = ap.parse_args(argv)
    if args.sizes:
        args.sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    else:
        args.sizes = QUICK_SIZES if args.quick else DEFAULT_SIZES
    if any(n < 4 or n > 512 for n in args.sizes):
        raise SystemExit("sizes must be between 4 and 512 tokens")
    return args


def main() -> None:
    run(parse_args())


if __name__ == "__main__":
    main()
