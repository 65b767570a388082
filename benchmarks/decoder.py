#!/usr/bin/env python
"""Benchmark of the bundled decoder, SmolLM2-135M-Instruct (30 layers x 9 heads), on the CPU.

Run from the repository root::

    python benchmarks/decoder.py                          # loading, then 16, 128 and 512 tokens, with BertViz
    python benchmarks/decoder.py --sizes 16,128 --no-load # quicker: no load measurements, two sizes
    python benchmarks/decoder.py --no-bertviz             # skip the BertViz comparison (slow at 512 tokens)

1. Loading: the first load (GGUF -> safetensors conversion into an empty ``ATTNVIZ_CACHE_DIR``) and
   warm loads, each in a fresh process; their times and resident memory.
2. At each size (inputs of exactly n tokens cut from English prose): the forward pass
   (``text_attention``), new text -> default view (``text_attention`` + ``make_view`` + the
   'Single head' figure + ``to_json``), and every view's figure: build time and JSON bytes.
3. BertViz: the length of the HTML ``head_view`` / ``model_view`` return for the same attention.

Prints markdown tables and writes them to ``benchmarks/results-decoder.md`` (``--out``). Targets
are printed next to the results (met / MISSED), never asserted. See ``benchmarks/README.md``.
The parts live in ``benchmarks/decoderbench/``; this file is the command line.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import decoderbench  # noqa: F401  (puts the repository root on sys.path)
from decoderbench.common import DEFAULT_SIZES
from decoderbench.run import run

OUT_MD = Path(__file__).resolve().parent / "results-decoder.md"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default=None, help="comma-separated token counts (default 16,128,512; at most 512)")
    ap.add_argument("--no-bertviz", action="store_true", help="skip the BertViz comparison")
    ap.add_argument("--no-load", action="store_true", help="skip the load measurements (1.)")
    ap.add_argument("--out", type=Path, default=OUT_MD, help="markdown file written (default results-decoder.md)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per measurement, after one warm-up")
    ap.add_argument("--warm-loads", type=int, default=2, help="warm loads after the first one (fresh processes)")
    ap.add_argument(
        "--wait-quiet", type=float, default=20.0,
        help="before each size, wait up to this many seconds for other processes to leave the CPU idle",
    )  # fmt: skip
    ap.add_argument("--bertviz-timeout", type=float, default=900.0, help="seconds per BertViz process")
    ap.add_argument(
        "--bertviz-limit-gb", type=float, default=12.0,
        help="address-space cap of the BertViz process (a MemoryError there, not the OOM killer); 0: none",
    )  # fmt: skip
    args = ap.parse_args(argv)
    sizes = args.sizes.split(",") if args.sizes else DEFAULT_SIZES
    args.sizes = sorted({int(s) for s in sizes if str(s).strip()})
    if any(n < 2 or n > 512 for n in args.sizes):
        raise SystemExit("sizes must be between 2 and 512 tokens (the bundled decoder's limit in attnviz)")
    return args


def main() -> None:
    run(parse_args())


if __name__ == "__main__":
    main()
