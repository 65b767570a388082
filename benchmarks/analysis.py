#!/usr/bin/env python
"""Benchmark of the analysis features: head statistics, corpus throughput,
integrated-gradients attribution, rollout, and the payload of the head-statistics page's charts.

Run from the repository root::

    python benchmarks/analysis.py            # about 1-2 min on 2 idle CPU cores
    python benchmarks/analysis.py --quick    # fewer repeats and a smaller corpus

Everything runs in-process on the bundled all-MiniLM-L6-v2 (no browser, no network). Times are
medians; the 1-minute load average is printed, because times taken on a shared machine are
inflated (payload bytes are not). Nothing is asserted: the figures are printed as markdown.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import attnviz  # noqa: E402
from attnviz.examples import TEXT_EXAMPLES  # noqa: E402
from attnviz.figures.compare import attention_vs_attribution  # noqa: E402
from attnviz.figures.stats import head_map_figure, label_map, stat_heatmap  # noqa: E402
from attnviz.maths.divergence import head_divergence, head_map  # noqa: E402
from attnviz.text.comparison import compare_attention_attribution  # noqa: E402

PROSE = (
    "Attention weights are one signal among several. Researchers want to know what each head does, how "
    "attention composes across layers, and whether attention agrees with gradient attributions. A head that "
    "always looks at the previous token is easy to spot; a head that spreads its attention over the whole "
    "sentence is harder to read. The cat sat on the mat because it was tired, and the dog, which had run "
    "across the long road, lay down beside it. "
)


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up: imports, caches, first-call allocation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def text_of(tm, n_tokens: int) -> str:
    """A prefix of PROSE (repeated) that tokenizes to exactly ``n_tokens`` tokens, [CLS]/[SEP] included."""
    words = (PROSE * 40).split()
    lo, hi = 1, len(words)
    while lo < hi:  # the longest prefix that fits
        mid = (lo + hi + 1) // 2
        if len(tm.tokenizer(" ".join(words[:mid]))["input_ids"]) <= n_tokens:
            lo = mid
        else:
            hi = mid - 1
    return " ".join(words[:lo])


def corpus(n: int) -> list[str]:
    base = [t for t, _ in TEXT_EXAMPLES.values()] + [s.strip() + "." for s in PROSE.split(".") if s.strip()]
    return [f"{base[i % len(base)]} ({i})" for i in range(n)]


def kb(n: int) -> str:
    return f"{n / 1000:,.1f} kB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--threads", type=int, default=None, help="CPU threads for PyTorch (default: ATTNVIZ_THREADS, else 1)"
    )
    args = ap.parse_args()
    if args.threads is not None:
        # Read when the model loads (attnviz.device.apply_thread_setting), which would undo a
        # torch.set_num_threads made here.
        os.environ["ATTNVIZ_THREADS"] = str(args.threads)
    repeats = 3 if args.quick else 7
    n_corpus = 200 if args.quick else 600

    tm = attnviz.load_text_model()
    load = os.getloadavg()[0]
    print("# attnviz analysis benchmark\n")
    print(
        f"Model {tm.name} ({tm.n_layers} layers × {tm.n_heads} heads) on {tm.device}, "
        f"torch threads {__import__('torch').get_num_threads()}, {os.cpu_count()} CPUs, "
        f"1-minute load average at start {load:.2f}.\n"
    )

    print(f"## Per-sentence analysis (median of {repeats} runs)\n")
    print("| tokens | text_attention | head_stats | rollout (mean) | head divergence (map) |")
    print("|---:|---:|---:|---:|---:|")
    for n in (16, 128, 512):
        text = text_of(tm, n) if n < 512 else PROSE * 20
        ta = attnviz.text_attention(tm, text)
        t_fwd = median_time(lambda text=text: attnviz.text_attention(tm, text), repeats)
        t_stats = median_time(lambda ta=ta: attnviz.head_stats(ta), repeats)
        t_roll = median_time(lambda ta=ta: attnviz.rollout(ta.weights), repeats)
        t_div = median_time(lambda ta=ta: head_divergence(ta.weights), max(1, repeats // 2))
        print(
            f"| {ta.n_tokens} | {t_fwd * 1e3:,.0f} ms | {t_stats * 1e3:,.1f} ms | {t_roll * 1e3:,.1f} ms "
            f"| {t_div * 1e3:,.0f} ms |"
        )

    print(f"\n## Corpus throughput ({n_corpus} sentences, {np.mean([len(s) for s in corpus(50)]):.0f} chars each)\n")
    print("| batch size | sentences/s | tokens/s | seconds |")
    print("|---:|---:|---:|---:|")
    sentences = corpus(n_corpus)
    for batch in (8, 32):
        t0 = time.perf_counter()
        stats = attnviz.corpus_head_stats(tm, sentences, batch_size=batch)
        dt = time.perf_counter() - t0
        print(f"| {batch} | {stats.sentences / dt:,.0f} | {stats.tokens / dt:,.0f} | {dt:,.1f} |")
    print(
        "\nThe first 200 sentences also feed the head map (Jensen–Shannon divergence); the rest run "
        "the model and the statistics only."
    )

    print("\n## Integrated gradients (LayerIntegratedGradients on the embeddings, 50 steps)\n")
    print("| input | tokens | target | seconds | convergence delta | delta / change |")
    print("|---|---:|---|---:|---:|---:|")
    inputs = [
        ("sentence", (TEXT_EXAMPLES["Coreference"][0],)),
        ("pair", TEXT_EXAMPLES["Paraphrase (pair)"]),
        ("128 tokens", (text_of(tm, 128),)),
    ]
    attnviz.token_attributions(tm, "warm up", n_steps=4)
    for label, args_ in inputs:
        t0 = time.perf_counter()
        a = attnviz.token_attributions(tm, *args_)
        dt = time.perf_counter() - t0
        print(f"| {label} | {len(a.tokens)} | {a.kind} | {dt:,.2f} | {a.delta:+.2e} | {a.relative_delta:.3%} |")

    print("\n## Payload of the head-statistics page's charts (figure JSON, bytes sent per chart)\n")
    print("| chart | 6 × 12 (bundled) | 12 × 12 (bert-base sized, random) |")
    print("|---|---:|---:|")
    ta = attnviz.text_attention(tm, TEXT_EXAMPLES["Coreference"][0])
    table = attnviz.head_stats(ta)
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=2.0, size=(12, 12, ta.n_tokens, ta.n_tokens))
    big_w = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    import dataclasses

    big = dataclasses.replace(ta, weights=big_w.astype(np.float32))
    big_table = attnviz.head_stats(big)
    cmp = compare_attention_attribution(ta, attnviz.token_attributions(tm, ta.text, n_steps=16))
    rows = [
        ("statistic heatmap", lambda t, w: stat_heatmap(t, "entropy")),
        ("label map", lambda t, w: label_map(t)),
        ("head map (JSD + MDS)", lambda t, w: head_map_figure(head_map(head_divergence(w)), t)),
    ]
    for name, build in rows:
        small = len(build(table, ta.weights).to_json())
        large = len(build(big_table, big.weights).to_json())
        print(f"| {name} | {kb(small)} | {kb(large)} |")
    bars = len(attention_vs_attribution(cmp).to_json())
    print(f"| attention vs attribution bars ({len(cmp.tokens)} tokens) | {kb(bars)} | |")
    print(f"| table as CSV download | {kb(len(table.to_csv(index=False, float_format='%.6g')))} | |")
    print(f"\n1-minute load average at the end: {os.getloadavg()[0]:.2f}.")


if __name__ == "__main__":
    main()
