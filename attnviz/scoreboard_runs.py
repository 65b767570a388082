"""The scoreboard over many inputs, as the two commands run it: the loop, a clean stop, the files.

``python -m attnviz.text.scoreboard_cli`` (a text file) and ``python -m attnviz.image.scoreboard_cli``
(generated images) both score each input with :func:`attnviz.score_explanations`, then summarise
with :mod:`attnviz.maths.score_summary`. What they share is here, above the wings like
:mod:`attnviz.scoreboard`: it imports no wing, only the maths.

- :func:`add_options`: the options both commands take (``--steps``, ``--random-orders``, ...).
- :class:`StopRequest`: the first Ctrl+C (or SIGTERM) asks the loop to stop after the current
  input; a second Ctrl+C aborts.
- :func:`score_inputs`: the loop. An input the scorer refuses (``InputError``: a blank line, a
  sentence with nothing removable) is skipped and reported, never fatal.
- :func:`write_results`: the per-input CSV, the JSON (settings, summary, every row) and the
  Markdown table.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from attnviz.errors import InputError
from attnviz.maths.score_summary import stack_tables, summarise_scores, summary_markdown

EXIT_INPUT, EXIT_STOPPED = 2, 130


def add_options(ap: argparse.ArgumentParser) -> None:
    """The options both scoreboard commands take."""
    ap.add_argument("--steps", type=int, default=20, help="curve points are steps + 1 fractions 0..1 (default 20)")
    ap.add_argument("--random-orders", type=int, default=20, help="random orders per input (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random orders (default 0)")
    ap.add_argument("--methods", default=None, help="comma-separated method names (default: every method)")
    ap.add_argument("--out", type=Path, default=None, help="CSV of every input's rows (one row per input and method)")
    ap.add_argument("--json", type=Path, default=None, help="JSON: the settings, the summary and every row")
    ap.add_argument("--markdown", type=Path, default=None, help="Markdown file with the summary table")
    ap.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for PyTorch (default: its choice)")
    ap.add_argument("--quiet", action="store_true", help="no progress on stderr")


def check_options(args: argparse.Namespace) -> list[str] | None:
    """Checks before any model loads (InputError with what to change); returns the method list."""
    if args.steps < 2:
        raise InputError("--steps must be at least 2.")
    if args.random_orders < 0:
        raise InputError("--random-orders must be 0 or more.")
    if getattr(args, "limit", None) is not None and args.limit < 1:
        raise InputError("--limit must be at least 1.")
    for option in ("out", "json", "markdown"):
        path = getattr(args, option)
        if path is not None and path.is_dir():
            raise InputError(f"--{option} {path} is a folder; give a file name.")
    if args.threads is not None:
        if args.threads < 1:
            raise InputError("--threads must be at least 1.")
        import torch

        torch.set_num_threads(args.threads)  # one thread is several times faster on a shared machine
    if args.methods is None:
        return None
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise InputError("--methods names no method.")
    return methods


def check_methods(methods: list[str] | None, known: tuple[str, ...]) -> None:
    """InputError naming the methods of ``--methods`` that the model's family does not have."""
    unknown = [m for m in methods or [] if m not in known]
    if unknown:
        raise InputError(f"Unknown method(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(known)}.")


def code_version() -> str | None:
    """The checkout's commit, with "+changes" when attnviz/ differs from it (None outside a git checkout)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "attnviz"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" +changes in attnviz/" if dirty.stdout.strip() else "")


class StopRequest:
    """While active, the first Ctrl+C (or SIGTERM) sets ``asked``; a second Ctrl+C raises KeyboardInterrupt."""

    def __init__(self, stream=None):
        self.asked = False
        self.stream = stream if stream is not None else sys.stderr
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.asked and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.asked = True
        print("\nStopping after the current input (Ctrl+C again to abort)…", file=self.stream)

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@dataclass
class ScoredInputs:
    """What :func:`score_inputs` ran: one long table (:func:`~attnviz.maths.score_summary.stack_tables`)
    and per-input facts, the inputs it skipped and why, and whether it was stopped."""

    long: pd.DataFrame
    facts: pd.DataFrame  # one row per scored input: input, units, full_score, removed_score, best_layer, target
    skipped: list[tuple[str, str]]
    total: int
    stopped: bool
    seconds: float
    notes: Counter = field(default_factory=Counter)
    removal: str = ""  # how a unit was removed (the first scored input's words; one way per family)

    @property
    def done(self) -> int:
        return len(self.facts)

    def summary(self) -> pd.DataFrame:
        return summarise_scores(self.long)


def _note_kind(note: str) -> str:
    """A note without its numbers, so that the same remark on many inputs counts once."""
    words = note.split(":")[0].split(",")[0]
    return "".join("#" if ch.isdigit() else ch for ch in words)[:90]


def score_inputs(
    inputs: Iterable[tuple[str, object]],
    score: Callable[[object], object],
    *,
    total: int,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> ScoredInputs:
    """Score each ``(name, input)`` with ``score`` (returning an ExplanationScores), until done or stopped."""
    tables, names, facts, skipped, notes, removal = [], [], [], [], Counter(), ""
    started = time.perf_counter()
    stopped = False
    for i, (name, item) in enumerate(inputs):
        if should_stop():
            stopped = True
            break
        try:
            scores = score(item)
        except InputError as exc:
            skipped.append((name, str(exc)))
        else:
            tables.append(scores.table)
            names.append(name)
            facts.append(
                {
                    "input": name,
                    "units": len(scores.units),
                    "full_score": scores.full_score,
                    "removed_score": scores.removed_score,
                    "best_layer": scores.best_layer,
                    "target": scores.target,
                }
            )
            notes.update({_note_kind(n) for n in scores.notes})
            removal = removal or scores.removal
        if progress is not None:
            progress(i + 1, total)
    return ScoredInputs(
        long=stack_tables(tables, names),
        facts=pd.DataFrame(facts, columns=["input", "units", "full_score", "removed_score", "best_layer", "target"]),
        skipped=skipped,
        total=total,
        stopped=stopped or should_stop(),
        seconds=time.perf_counter() - started,
        notes=notes,
        removal=removal,
    )


def header_lines(run: ScoredInputs, settings: dict) -> list[str]:
    """What was run, in words: the model, the inputs done, the settings, the time, the best layers."""
    lines = [
        f"{settings['model']}: {run.done:,} of {run.total:,} inputs scored"
        + (" (stopped early)" if run.stopped else "")
        + (f", {len(run.skipped)} skipped" if run.skipped else "")
        + f" in {run.seconds / 60:.1f} min; steps {settings['steps']}, random orders {settings['random_orders']}, "
        f"seed {settings['seed']}.",
    ]
    if run.done:
        lines.append(
            f"Units (tokens or cells) per input: mean {run.facts['units'].mean():.1f}, "
            f"{run.facts['units'].min()}–{run.facts['units'].max()}."
        )
        layers = run.facts["best_layer"].dropna()
        if len(layers):
            counts = layers.astype(int).value_counts().sort_index()
            picked = ", ".join(f"{k}: {v}" for k, v in counts.items())
            lines.append(f"Best layer picked per input (layer: inputs): {picked}.")
    return lines


def write_results(run: ScoredInputs, settings: dict, *, out=None, json_path=None, markdown=None) -> str:
    """Write the requested files; returns the Markdown summary (header, table, notes)."""
    summary = run.summary()
    parts = ["\n".join(header_lines(run, settings)), summary_markdown(summary)]
    if run.removal:
        parts.append(f"Removal: {run.removal}")
    if run.notes:
        parts.append("Notes (inputs): " + "; ".join(f"{k} ({v})" for k, v in run.notes.most_common()))
    text = "\n\n".join(parts)
    for path in (out, json_path, markdown):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    if out is not None:
        run.long.merge(run.facts[["input", "units", "best_layer"]], on="input", how="left").to_csv(
            out, index=False, float_format="%.6g"
        )
    if json_path is not None:
        payload = {
            "settings": settings,
            "inputs_total": run.total,
            "inputs_scored": run.done,
            "stopped": run.stopped,
            "seconds": round(run.seconds, 1),
            "skipped": [{"input": n, "reason": r} for n, r in run.skipped],
            "removal": run.removal,
            "notes": dict(run.notes.most_common()),
            # 6 decimals (the tables print 2-3), which keeps the file small
            "summary": json.loads(summary.to_json(orient="records", double_precision=6)),
            "inputs": json.loads(run.facts.to_json(orient="records", double_precision=6)),
            "rows": json.loads(run.long.to_json(orient="records", double_precision=6)),
        }
        # One input's or row's record per line: readable, and a tenth of an indented file's size.
        text_json = json.dumps(
            {k: v for k, v in payload.items() if k not in ("inputs", "rows")}, indent=1, ensure_ascii=False
        )[:-2]
        for key in ("inputs", "rows"):
            records = ",\n  ".join(json.dumps(r, ensure_ascii=False) for r in payload[key])
            text_json += f',\n "{key}": [\n  {records}\n ]'
        Path(json_path).write_text(text_json + "\n}\n", encoding="utf-8")
    if markdown is not None:
        Path(markdown).write_text(text + "\n", encoding="utf-8")
    return text
