"""Command line: is each explanation faithful, on average over a text file? The scoreboard per method.

    python -m attnviz.text.scoreboard_cli benchmarks/data/faithfulness-sentences.txt
    python -m attnviz.text.scoreboard_cli sentences.txt --model SmolLM2-135M-Instruct --threads 1 \\
        --out scores.csv --json scores.json --markdown scores.md

Each non-blank line (UTF-8) is scored alone with :func:`attnviz.score_explanations` (the model's
default target: a decoder's predicted next token, the bundled encoder's sentence embedding), and
the table printed on stdout gives each method's mean ± sd over the sentences of the deletion and
insertion areas, the Spearman correlation with leave-one-out importance and the seconds, and how
often it beat the random orders on the same sentence (:mod:`attnviz.maths.score_summary`).
Progress goes to stderr; Ctrl+C stops after the current sentence and writes what was done.
A file that is not UTF-8 text, is empty or missing ends with a message and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from attnviz.errors import InputError
from attnviz.scoreboard_runs import (
    EXIT_INPUT,
    EXIT_STOPPED,
    StopRequest,
    add_options,
    check_methods,
    check_options,
    code_version,
    score_inputs,
    write_results,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from attnviz.text.loading import BUNDLED_TEXT_MODEL

    ap = argparse.ArgumentParser(
        prog="python -m attnviz.text.scoreboard_cli",
        description="Deletion/insertion scores of every explanation, mean ± sd over the sentences of a file.",
    )
    ap.add_argument("file", type=Path, help="UTF-8 text file, one sentence per line")
    ap.add_argument("--model", default=BUNDLED_TEXT_MODEL, help="hub id or local folder (default: the bundled encoder)")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N sentences")
    add_options(ap)
    return ap.parse_args(argv)


def read_sentences(path: Path, limit: int | None = None) -> list[str]:
    """The file's non-blank lines (checked as the corpus command checks them), the first ``limit``."""
    from attnviz.text.corpus import decode_corpus

    if not path.is_file():
        raise InputError(f"{path} is not a file. Give the path of a .txt file with one sentence per line.")
    sentences = decode_corpus(path.read_bytes(), name=path.name).sentences
    return sentences[:limit] if limit is not None else sentences


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        methods = check_options(args)
        sentences = read_sentences(args.file, args.limit)  # the whole file is checked before the model loads
        import attnviz
        from attnviz.text.corpus_cli import ProgressBar
        from attnviz.text.explanation_scores import TEXT_METHODS

        check_methods(methods, TEXT_METHODS)

        tm = attnviz.load_text_model(args.model, device=args.device)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    print(f"{args.file.name}: {len(sentences):,} sentences · model {tm.name} on {tm.device}", file=sys.stderr)

    def score(sentence: str):
        return attnviz.score_explanations(
            tm, sentence, methods=methods, steps=args.steps, random_orders=args.random_orders, seed=args.seed
        )

    bar = None if args.quiet else ProgressBar(len(sentences))
    try:
        with StopRequest() as stop:
            run = score_inputs(
                ((f"line {i + 1}", s) for i, s in enumerate(sentences)),
                score,
                total=len(sentences),
                progress=bar,
                should_stop=lambda: stop.asked,
            )
    finally:
        if bar is not None:
            bar.close()
    settings = {
        "model": tm.name,
        "file": args.file.name,
        "steps": args.steps,
        "random_orders": args.random_orders,
        "seed": args.seed,
        "methods": methods,
        "code": code_version(),
        "device": str(tm.device),
    }
    text = write_results(run, settings, out=args.out, json_path=args.json, markdown=args.markdown)
    for name, reason in run.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(text)
    return EXIT_STOPPED if run.stopped else 0


if __name__ == "__main__":
    sys.exit(main())
