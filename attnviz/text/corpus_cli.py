"""Command line: per-head statistics of a text model over a corpus.

    python -m attnviz.text.corpus_cli sentences.txt --out stats.csv
    python -m attnviz.text.corpus_cli sentences.txt --model bert-base-uncased --out stats.csv --batch-size 16
    python -m attnviz.text.corpus_cli sentences.txt --model SmolLM2-135M-Instruct --out stats.csv
    python -m attnviz.text.corpus_cli sentences.txt --engine ray --workers 4            # Ray Data, local
    python -m attnviz.text.corpus_cli sentences.txt --engine ray --address HEAD:6379 --gpus-per-worker 1

The file holds one sentence per line (UTF-8; a line that is not UTF-8 is skipped and counted in
the notes). The CSV has one row per (layer, head) with the columns of :func:`attnviz.head_stats`
(a decoder's own columns for a decoder). ``--engine local`` (the default) runs in this process;
``--engine ray`` runs the same statistics on a Ray Data actor pool (:mod:`attnviz.text.corpus_ray`)
and writes the same table. Progress goes to stderr; Ctrl+C stops after the current batch and
writes the statistics of the sentences done so far.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from attnviz.errors import InputError

EXIT_INPUT, EXIT_STOPPED = 2, 130


class ProgressBar:
    """A one-line progress bar on a stream (stderr); plain lines every 10% when it is not a terminal."""

    def __init__(self, total: int | None, stream=None, width: int = 30):
        self.total, self.width = total, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self._last_tenth = -1

    def __call__(self, done: int, total: int | None = None) -> None:
        total = total if total is not None else self.total
        if done == 0:  # the run starts now: the rate leaves out loading the model and starting Ray
            self.started = time.perf_counter()
            return
        elapsed = time.perf_counter() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        if total:
            share = min(1.0, done / total)
            filled = int(round(share * self.width))
            eta = (total - done) / rate if rate > 0 else float("nan")
            text = (
                f"[{'#' * filled}{'.' * (self.width - filled)}] {done:,}/{total:,} sentences "
                f"{share:4.0%} · {rate:,.1f}/s · {eta:,.0f} s left"
            )
            tenth = int(share * 10)
        else:
            text, tenth = f"{done:,} sentences · {rate:,.1f}/s", self._last_tenth + 1
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width + 60))
            self.stream.flush()
        elif tenth != self._last_tenth:  # a log file gets a line every 10%, not one per batch
            self._last_tenth = tenth
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from attnviz.text.corpus import BATCH_SIZE
    from attnviz.text.loading import BUNDLED_TEXT_MODEL

    ap = argparse.ArgumentParser(
        prog="python -m attnviz.text.corpus_cli",
        description="Per-head attention statistics (Clark et al. 2019) averaged over a corpus, written as CSV.",
    )
    ap.add_argument("file", type=Path, help="UTF-8 text file, one sentence per line")
    ap.add_argument("--model", default=BUNDLED_TEXT_MODEL, help="hub id or local folder (default: the bundled model)")
    ap.add_argument("--out", type=Path, default=Path("stats.csv"), help="CSV to write (default: stats.csv)")
    ap.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"sentences per batch (default {BATCH_SIZE})")
    ap.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for PyTorch (default: its choice); 1 is several times faster on a busy machine",
    )
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ray = ap.add_argument_group("Ray engine (--engine ray)")
    ap.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: an actor pool on Ray Data, local or on a cluster",
    )
    ray.add_argument("--address", default=None, help="a running Ray cluster (HOST:PORT); default: start one here")
    ray.add_argument("--workers", type=int, default=2, help="actors, each with its own copy of the model (default 2)")
    ray.add_argument("--gpus-per-worker", type=float, default=0, help="GPUs each actor reserves (default 0)")
    ray.add_argument("--cpus-per-worker", type=float, default=1, help="CPUs each actor reserves (default 1)")
    return ap.parse_args(argv)


def _run_on_ray(args: argparse.Namespace, total: int, bar, should_stop):
    from attnviz.text.corpus_ray import ray_corpus_head_stats

    where = f"the Ray cluster at {args.address}" if args.address else "a local Ray instance"
    print(
        f"{args.file.name}: {total:,} sentences · model {args.model} · {args.workers} worker"
        f"{'s' if args.workers > 1 else ''} on {where}",
        file=sys.stderr,
    )
    run = ray_corpus_head_stats(
        args.model,
        args.file,
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker,
        threads=args.threads,
        batch_size=args.batch_size,
        device=args.device,
        progress=bar,
        should_stop=should_stop,
    )
    print(f"Ray start-up: {run.startup_seconds:.1f} s (not counted in the rate below).", file=sys.stderr)
    return run.stats


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from attnviz.text.corpus import corpus_head_stats, scan_corpus_file
    from attnviz.text.loading import load_text_model

    stop = {"asked": False}

    def on_interrupt(signum, frame):  # the first Ctrl+C stops cleanly after this batch; a second one kills
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        print("\nStopping after the current batch (Ctrl+C again to abort)…", file=sys.stderr)

    try:
        # The whole file is checked before the model runs (a bad line is counted, not fatal).
        corpus = scan_corpus_file(args.file, skip_bad_lines=True)
        if args.batch_size < 1:
            raise InputError("--batch-size must be at least 1.")
        if args.threads is not None and args.threads < 1:
            raise InputError("--threads must be at least 1.")
        if args.out.is_dir():
            raise InputError(f"--out {args.out} is a folder; give a file name such as stats.csv.")
        total = corpus.lines - corpus.empty_lines - corpus.bad_lines
        bar = None if args.quiet else ProgressBar(total)
        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            if args.engine == "ray":
                stats = _run_on_ray(args, total, bar, lambda: stop["asked"])
            else:
                if args.threads is not None:
                    # Two threads on two cores that another process also uses ran 6x slower than one here.
                    torch.set_num_threads(args.threads)
                tm = load_text_model(args.model, device=args.device)
                print(f"{corpus.name}: {total:,} sentences · model {tm.name} on {tm.device}", file=sys.stderr)
                if bar is not None:
                    bar(0, total)
                stats = corpus_head_stats(
                    tm,
                    args.file,
                    batch_size=args.batch_size,
                    progress=bar,
                    should_stop=lambda: stop["asked"],
                    skip_bad_lines=True,
                )
        finally:
            signal.signal(signal.SIGINT, previous)
            if bar is not None:
                bar.close()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    args.out.parent.mkdir(parents=True, exist_ok=True)
    stats.table.to_csv(args.out, index=False, float_format="%.6g")
    for note in stats.notes():
        print(note, file=sys.stderr)
    labels = stats.table["label"].value_counts()
    print(
        f"{stats.sentences:,} sentences, {stats.tokens:,} tokens in {stats.seconds:.1f} s "
        f"({stats.sentences_per_second:,.1f} sentences/s). Labels: "
        + ", ".join(f"{name} {count}" for name, count in labels.items())
        + f". Written to {args.out}.",
        file=sys.stderr,
    )
    return EXIT_STOPPED if stats.cancelled else 0


if __name__ == "__main__":
    sys.exit(main())
