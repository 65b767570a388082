"""Corpus statistics on one machine and on Ray Data: sentences per second, at equal cores.

    python benchmarks/corpus_engines.py                      # 20,000 sentences, the bundled encoder
    python benchmarks/corpus_engines.py --sentences 4000     # quicker
    python benchmarks/corpus_engines.py --model SmolLM2-135M-Instruct --sentences 2000

Each run is a fresh process (``python -m attnviz.text.corpus_cli`` would do the same work; the
runs here call the library so that they can time the phases apart):

- **local, 1 thread** and **local, 2 threads**: ``corpus_head_stats`` with
  ``torch.set_num_threads``; the model's load is timed apart.
- **Ray, 1 worker** and **Ray, 2 workers**: ``ray_corpus_head_stats`` on a local Ray instance with
  2 CPUs, one CPU and one PyTorch thread per worker. Three times are kept apart: Ray's start-up
  (``ray.init``), the time to the first batch's sums (the actors start and load the model), and the
  rest, whose rate is the steady throughput that more machines multiply.

It also splits one batch's work into the forward pass and the head statistics (numpy, on the
CPU), which bounds what a GPU worker can gain, and checks that every engine's table is the local
one (largest difference). The generated file (``--out-dir``) has varied English-like sentences of
5 to 40 words. Figures are printed and written to ``benchmarks/results-corpus-engines.md``;
nothing is asserted. The load average is printed beside them: other work on the machine slows
every engine alike.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere

SUBJECTS = "the cat|a small dog|my neighbour|the old teacher|two students|the committee|our team|she|he|they".split("|")
VERBS = "saw|found|wrote about|asked for|could not explain|painted|remembered|carried|sold|wanted".split("|")
OBJECTS = (
    "the red house|a letter to the editor|the results of the experiment|three loaves of bread|"
    "the river near the station|an answer nobody expected|the map of the island|a quiet afternoon"
).split("|")
TAILS = (
    "before the rain started|because it was late|while everyone was asleep|and then went home|"
    "in the summer of 1998|without saying a word|although the shop was closed|as the guide had said"
).split("|")


def write_corpus(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` sentences of 5 to 40 words: a clause, sometimes two, sometimes a question."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(n):
        parts = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        for _ in range(int(rng.integers(0, 4))):
            parts.append(rng.choice(TAILS))
        if rng.random() < 0.3:
            parts += ["and", rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        text = " ".join(parts)
        lines.append(text[0].upper() + text[1:] + ("?" if rng.random() < 0.15 else "."))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def one_run(engine: str, cores: int, model: str, path: str, batch_size: int, table_out: str) -> dict:
    """One engine in this process (called in a fresh process by :func:`main`)."""
    import torch

    if engine == "local":
        from attnviz.text.corpus import corpus_head_stats
        from attnviz.text.loading import load_text_model

        torch.set_num_threads(cores)
        started = time.perf_counter()
        tm = load_text_model(model)
        load = time.perf_counter() - started
        stats = corpus_head_stats(tm, path, batch_size=batch_size, skip_bad_lines=True)
        stats.table.to_csv(table_out, index=False)
        return {"load_s": load, "run_s": stats.seconds, "sentences": stats.sentences}
    from attnviz.text.corpus_ray import ray_corpus_head_stats

    done = []
    run = ray_corpus_head_stats(
        model,
        path,
        workers=cores,
        threads=1,
        batch_size=batch_size,
        local_cpus=2,
        progress=lambda d, t: done.append((time.perf_counter(), d)),
    )
    run.stats.table.to_csv(table_out, index=False)
    # The first actor task's batches arrive together: the steady rate counts from the end of that arrival.
    first_time = next(t for t, d in done if d > 0)
    first_done = max(d for t, d in done if t - first_time < 0.1)
    steady = (done[-1][1] - first_done) / (done[-1][0] - first_time) if done[-1][0] > first_time else float("nan")
    return {
        "startup_s": run.startup_seconds,
        "first_batch_s": run.first_batch_seconds,
        "run_s": run.stats.seconds,
        "steady_per_s": steady,
        "sentences": run.stats.sentences,
    }


def split_one_batch(model: str, path: str, batch_size: int) -> dict:
    """Seconds of one batch in the forward pass and in the head statistics (1 thread)."""
    import torch

    from attnviz.maths.head_statistics import HeadTotals
    from attnviz.text.corpus import batch_attention
    from attnviz.text.forward_cost import forward_flops
    from attnviz.text.loading import load_text_model

    torch.set_num_threads(1)
    tm = load_text_model(model)
    lines = Path(path).read_text(encoding="utf-8").splitlines()[:batch_size]
    batch_attention(tm, lines[:4])  # warm-up
    started = time.perf_counter()
    results = batch_attention(tm, lines)
    forward = time.perf_counter() - started
    totals = HeadTotals(tm.n_layers, tm.n_heads)
    started = time.perf_counter()
    for r in results:
        totals.add(r.weights, r.tokens, r.special)
    stats = time.perf_counter() - started
    tokens = sum(len(r.tokens) for r in results)
    flops = sum(forward_flops(tm, len(r.tokens)) for r in results)
    return {
        "forward_s_per_sentence": forward / len(lines),
        "stats_s_per_sentence": stats / len(lines),
        "tokens_per_sentence": tokens / len(lines),
        "gflop_per_sentence": flops / len(lines) / 1e9,
    }


def _fresh(args: list[str]) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sentences", type=int, default=20_000)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "out")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results-corpus-engines.md")
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "CORES"), help=argparse.SUPPRESS)
    ap.add_argument("--split", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--table-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(
            json.dumps(one_run(args.one[0], int(args.one[1]), args.model, args.corpus, args.batch_size, args.table_out))
        )
        return
    if args.split:
        print(json.dumps(split_one_batch(args.model, args.corpus, args.batch_size)))
        return

    import numpy as np
    import pandas as pd

    corpus = write_corpus(args.out_dir / f"corpus-{args.sentences}.txt", args.sentences)
    common = ["--model", args.model, "--corpus", str(corpus), "--batch-size", str(args.batch_size)]
    print(f"{args.sentences:,} sentences · {args.model} · batch {args.batch_size}", file=sys.stderr)
    rows, tables = [], {}
    for engine, cores in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
        load = os.getloadavg()[0]
        table_out = args.out_dir / f"table-{engine}-{cores}.csv"
        print(f"{engine} × {cores} …", file=sys.stderr)
        result = _fresh([*common, "--one", engine, str(cores), "--table-out", str(table_out)])
        result.update(engine=engine, cores=cores, load=load, per_s=result["sentences"] / result["run_s"])
        rows.append(result)
        tables[(engine, cores)] = pd.read_csv(table_out).select_dtypes("number").to_numpy()
        print(json.dumps(result), file=sys.stderr)
    split = _fresh([*common, "--split"])
    reference = tables[("local", 1)]
    worst = max(float(np.abs(t - reference).max()) for t in tables.values())

    lines = [
        f"# Corpus engines: {args.sentences:,} sentences, {args.model}, batch {args.batch_size}",
        "",
        f"Machine: {os.cpu_count()} cores; load average (1 min) before each run in the table. "
        f"Largest difference of any engine's table from local × 1: {worst:.1e}.",
        "",
        "| engine | cores | sentences/s (whole run) | steady sentences/s | start-up s | to first batch s | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        startup = f"{r['startup_s']:.1f}" if "startup_s" in r else f"{r['load_s']:.1f} (model load)"
        first = f"{r['first_batch_s']:.1f}" if "first_batch_s" in r else "–"
        steady = f"{r['steady_per_s']:.0f}" if "steady_per_s" in r else f"{r['per_s']:.0f}"
        lines.append(
            f"| {r['engine']} | {r['cores']} | {r['per_s']:.0f} | {steady} | {startup} | {first} | {r['load']:.2f} |"
        )
    lines += [
        "",
        "One batch on one thread, per sentence: "
        f"forward pass {split['forward_s_per_sentence'] * 1e3:.1f} ms, head statistics (numpy) "
        f"{split['stats_s_per_sentence'] * 1e3:.1f} ms; {split['tokens_per_sentence']:.1f} tokens and "
        f"{split['gflop_per_sentence']:.3f} GFLOP per sentence.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.results.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
