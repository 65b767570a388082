"""How long one next-token attribution of a 16-token prompt takes on the bundled SmolLM2.

    python benchmarks/decoder_attribution.py [--repeats 3] [--device cpu]

Prints the median wall time (and the convergence delta) of integrated gradients at 16 and 50
steps and of feature ablation, after one warm-up call; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import attnviz  # noqa: E402
from attnviz.text.next_token_attribution import ABLATION, IG, next_token_attributions  # noqa: E402

#: 16 tokens for SmolLM2's tokenizer (checked below).
PROMPT = "The cat sat on the mat because it was tired and then the dog came to"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    tm = attnviz.load_text_model("SmolLM2-135M-Instruct", device=args.device)
    n = len(attnviz.text_attention(tm, PROMPT).tokens)
    if n != 16:
        print(f"warning: the prompt is {n} tokens for this tokenizer, not 16", file=sys.stderr)
    print(f"SmolLM2-135M-Instruct on {tm.device}, {n} tokens, torch threads {__import__('torch').get_num_threads()}")
    next_token_attributions(tm, PROMPT, n_steps=4)  # warm-up: captum's import, first allocations
    for method, steps in ((IG, 16), (IG, 50), (ABLATION, 50)):
        times, result = [], None
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = next_token_attributions(tm, PROMPT, n_steps=steps, method=method)
            times.append(time.perf_counter() - start)
        label = f"{method}, {steps} steps" if method == IG else method
        delta = f", delta {result.relative_delta:.2%} of the change" if method == IG else ""
        print(
            f"{label:34s} median {statistics.median(times):6.2f} s (min {min(times):.2f}, max {max(times):.2f})"
            f"; next token {result.next_token!r} p = {result.next_token_probability:.3f}{delta}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
