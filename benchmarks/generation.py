"""How long does each generated token take on the bundled decoder, with and without keeping attention?

    python benchmarks/generation.py [--sizes 16,128] [--new 32] [--repeats 5]

SmolLM2-135M-Instruct on the CPU (``ATTNVIZ_THREADS``, default 1 thread), greedy, prompts of
exactly ``--sizes`` tokens (prefixes of the benchmark corpus). For each prompt, medians over
``--repeats`` runs of:

* **with attention**: :func:`attnviz.text.generation.generate` (``output_attentions=True`` on each
  step, rows copied to numpy and assembled into ``[layers, heads, n, n]``);
* **without attention**: the same loop, :func:`attnviz.text.generation.continue_ids` with
  ``capture=False`` (no ``output_attentions``; the eager kernels still compute the weights);
* **transformers**: ``model.generate(do_sample=False)`` of the same model, for reference.

"per token" is the marginal cost of one step, ``(t(new) - t(1)) / (new - 1)``, so the prompt's
own forward pass is not spread over the tokens; "first token" is ``t(1)``, the prompt pass plus
(with attention) one step to feed the token back. Figures only, no targets: the exit code is 0.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import attnviz  # noqa: E402
from attnviz.text.generation import continue_ids, generate  # noqa: E402
from benchmarks.textbench.inputs import text_with_tokens  # noqa: E402


def seconds(run) -> float:
    t = time.perf_counter()
    run()
    return time.perf_counter() - t


def measure(tm, prompt: str, new: int, repeats: int) -> dict[str, tuple[float, float]]:
    """mode -> (first token ms, ms per further token).

    The modes take turns within each repeat, so that load from other processes on a shared machine
    falls on all of them alike rather than on whichever ran during it.
    """
    ids = tm.tokenizer(prompt, return_tensors="pt").input_ids.to(tm.device)  # (1, p)
    eos = tm.tokenizer.eos_token_id

    def transformers_generate(m):
        with torch.inference_mode():
            tm.model.generate(ids, do_sample=False, max_new_tokens=m, min_new_tokens=m, pad_token_id=eos)

    modes = {
        "with attention": lambda m: generate(tm, prompt, max_new_tokens=m),
        "without attention": lambda m: continue_ids(tm, ids, m, capture=False),
        "transformers generate": transformers_generate,
    }
    times: dict[str, dict[int, list[float]]] = {name: {1: [], new: []} for name in modes}
    for run in modes.values():  # warm: first-call allocations
        run(1)
    for _ in range(repeats):
        for name, run in modes.items():
            for m in (1, new):
                times[name][m].append(seconds(lambda run=run, m=m: run(m)))
    rows = {}
    for name in modes:
        one, many = statistics.median(times[name][1]), statistics.median(times[name][new])
        rows[name] = (one * 1000, (many - one) * 1000 / (new - 1))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16,128", help="prompt lengths in tokens")
    parser.add_argument("--new", type=int, default=32, help="tokens generated per run (at most 64)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    tm = attnviz.load_text_model("SmolLM2-135M-Instruct", device="cpu")
    print(f"# Generation on {tm.name} ({tm.n_layers} layers x {tm.n_heads} heads), CPU")
    print(
        f"\ntorch threads: {torch.get_num_threads()}; load average before: {os.getloadavg()[0]:.2f}; "
        f"{args.new} new tokens, greedy; medians of {args.repeats}\n"
    )
    print("| prompt tokens | mode | first token (ms) | per further token (ms) |")
    print("|---:|---|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        prompt = text_with_tokens(tm.tokenizer, size)
        check = generate(tm, prompt, max_new_tokens=args.new)
        if check.n_generated != args.new:  # an early end-of-sequence would shorten the runs
            print(f"(prompt of {size} tokens ends after {check.n_generated} tokens; figures are per that many)")
        for mode, (first, per_token) in measure(tm, prompt, args.new, args.repeats).items():
            print(f"| {check.n_prompt} | {mode} | {first:.1f} | {per_token:.1f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
