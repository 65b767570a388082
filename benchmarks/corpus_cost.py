"""How long does a corpus run take, against what :func:`attnviz.text.corpus.estimate_corpus` says?

    python benchmarks/corpus_cost.py            # lines of 16, 64, 128, 256 and 510 tokens
    python benchmarks/corpus_cost.py --quick    # 16 and 256 only
    python benchmarks/corpus_cost.py --model SmolLM2-135M-Instruct --sizes 16,64,256   # the bundled decoder

For each line length it times a real run (``CorpusRun`` stepped to the end, as the app does) of
the model (default: the bundled encoder) over enough lines for ~10 s of work, and prints the measured seconds, the
estimate, and their ratio. It also times the first pass itself (the tokenizer over 20,000
lines), which the app runs on every new upload before the estimate is shown. The figures go
to stdout; nothing is asserted. Run it on an idle machine: the load average is printed first.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: python benchmarks/corpus_cost.py

from attnviz import load_text_model  # noqa: E402
from attnviz.text.corpus import CorpusAccumulator, CorpusRun, estimate_corpus  # noqa: E402

WORDS = "the quick brown fox jumps over the lazy dog while a small cat sat on the warm mat".split()


def line_of(tm, tokens: int) -> str:
    """An English-like line of exactly ``tokens`` tokens, the tokens the tokenizer adds ([CLS] and
    [SEP]; none for SmolLM2) included: each of these words is one token in both tokenizers."""
    added = len(tm.tokenizer("")["input_ids"])
    words = (WORDS * (tokens // len(WORDS) + 2))[: tokens - added]
    line = " ".join(words)
    assert len(tm.tokenizer(line)["input_ids"]) == tokens
    return line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default=None, help="hub id, folder or bundled name (default: the bundled encoder)")
    ap.add_argument("--sizes", default="16,32,64,128,256,510", help="tokens per line, comma-separated")
    args = ap.parse_args()
    sizes = [16, 256] if args.quick else [int(s) for s in args.sizes.split(",")]
    tm = load_text_model(args.model) if args.model else load_text_model()
    print(f"load average {os.getloadavg()[0]:.2f} · model {tm.name} on {tm.device}")
    print(f"{'tokens/line':>11} {'lines':>6} {'measured s':>10} {'estimated s':>11} {'ratio':>6}")
    for n in sizes:
        line = line_of(tm, n)
        lines = [line] * max(8, int(10 / estimate_corpus(tm, [line]).seconds))
        plan = estimate_corpus(tm, lines)
        CorpusRun(sentences=lines[:4], acc=CorpusAccumulator.for_model(tm)).step(tm)  # warm-up, not timed
        run = CorpusRun(sentences=lines, acc=CorpusAccumulator.for_model(tm))
        started = time.perf_counter()
        while run.step(tm):
            pass
        measured = time.perf_counter() - started
        print(f"{n:>11} {len(lines):>6} {measured:>10.1f} {plan.seconds:>11.1f} {measured / plan.seconds:>6.2f}")
    many = [line_of(tm, 24)] * 20_000
    started = time.perf_counter()
    estimate_corpus(tm, many)
    print(f"first pass (tokenizer only) over 20,000 lines of 24 tokens: {time.perf_counter() - started:.2f} s")


if __name__ == "__main__":
    main()
