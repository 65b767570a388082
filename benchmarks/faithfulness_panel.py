"""How long does the faithfulness panel take? The full scoreboard on the bundled models (issue 14).

    python benchmarks/faithfulness_panel.py                 # decoder at 32 tokens, encoder at 64, one demo image
    python benchmarks/faithfulness_panel.py --thorough      # the panel's "Thorough" settings (20 steps, 20 orders)
    python benchmarks/faithfulness_panel.py --cases encoder,image --threads 2

Runs exactly what the panel runs: ``attnviz.score_explanations(model, input, steps=S,
random_orders=R, seed=0)`` with every method, with the panel's settings per family
(``attnviz/ui/faithfulness_panel.py``'s ``SETTINGS``, or ``THOROUGH`` with ``--thorough``), on a
prefix of English prose of exactly 32 tokens for the bundled decoder (SmolLM2-135M-Instruct) and
exactly 64 for the bundled encoder (all-MiniLM-L6-v2, [CLS] and [SEP] included), and on the first
demo image for the bundled image model. After an untimed warm-up of each model (a short input,
2 steps), it prints the total seconds against the target (≤ 10 s on 2 CPU cores), each method's
seconds and share of the total (the table's ``seconds``: its importance map plus its share of the
curves' forward passes), how often the progress callback was called and its longest silence, and
the machine's load (``uptime``'s 1-minute average before and after, and the CPU share of other
processes). Writes ``benchmarks/results-faithfulness-panel.md`` (``-thorough.md`` with
``--thorough``; or ``--out``). Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import decoderbench.inputs as decoder_inputs  # noqa: E402
import textbench.inputs as encoder_inputs  # noqa: E402
from textbench.cpu import CPU  # noqa: E402

SEED = 0
TARGET_S = 10.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


class ProgressLog:
    """Counts the panel's progress calls and the longest wait between two of them."""

    def __init__(self):
        self.calls, self.last, self.longest = 0, time.perf_counter(), 0.0

    def __call__(self, *args) -> None:
        now = time.perf_counter()
        self.calls, self.longest, self.last = self.calls + 1, max(self.longest, now - self.last), now


def cases(names: list[str], args) -> list[tuple[str, object, object, str]]:
    """(case, model, input, what the input is), models loaded here (not timed)."""
    import attnviz
    from attnviz.image import generated_shapes

    out = []
    if "decoder" in names:
        lm = attnviz.load_text_model("SmolLM2-135M-Instruct", device="cpu")
        text = decoder_inputs.text_with_tokens(lm.tokenizer, args.decoder_tokens)
        out.append(("decoder", lm, text, f"{args.decoder_tokens} tokens of English prose"))
    if "encoder" in names:
        tm = attnviz.load_text_model(device="cpu")
        text = encoder_inputs.text_with_tokens(tm.tokenizer, args.encoder_tokens)
        out.append(("encoder", tm, text, f"{args.encoder_tokens} tokens ([CLS], [SEP] included) of English prose"))
    if "image" in names:
        im = attnviz.load_image_model(device="cpu")
        sample = generated_shapes.demo_samples(im.input_size[0])[0]
        out.append(("image", im, sample.image, f"demo image 0 ({sample.label}), {im.grid[0]}x{im.grid[1]} cells"))
    return out


def panel_settings(thorough: bool) -> dict[str, tuple[int, int]]:
    """case -> (steps, random orders), read from the panel's module (which imports streamlit)."""
    from attnviz.ui import faithfulness_panel as panel

    if thorough:
        return {case: panel.THOROUGH for case in ("decoder", "encoder", "image")}
    return dict(panel.SETTINGS)


def measure(model, inp, steps: int, orders: int) -> dict:
    import attnviz

    warm = inp if not isinstance(inp, str) else " ".join(inp.split()[:6])
    attnviz.score_explanations(model, warm, steps=2, random_orders=2)  # untimed: lazy set-up of each path
    progress = ProgressLog()
    before = uptime()
    mark = CPU.start()
    started = time.perf_counter()
    scores = attnviz.score_explanations(model, inp, steps=steps, random_orders=orders, seed=SEED, progress=progress)
    total = time.perf_counter() - started
    return {
        "total": total,
        "others": CPU.share(mark),
        "before": before,
        "after": uptime(),
        "table": scores.table,
        "units": len(scores.units),
        "progress_calls": progress.calls,
        "longest_silence": max(progress.longest, time.perf_counter() - progress.last),
        "notes": scores.notes,
        "settings": (steps, orders),
    }


def report(results: list[tuple[str, str, dict]], threads: int, thorough: bool) -> str:
    import torch

    lines = [
        "# The faithfulness panel's scoreboard: time per input (issue 14)",
        "",
        f"`python benchmarks/faithfulness_panel.py`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} CPU cores, torch {torch.__version__} with {threads} thread(s); the panel's "
        f"{'Thorough settings' if thorough else 'default settings'}, every method. "
        f"Target: ≤ {TARGET_S:.0f} s per panel.",
        "",
        "| case | input | units | steps, random orders | total s | target | progress calls | longest silence s "
        "| other processes' CPU |",
        "|---|---|---:|---|---:|---|---:|---:|---:|",
    ]
    for case, what, r in results:
        lines.append(
            f"| {case} | {what} | {r['units']} | {r['settings'][0]}, {r['settings'][1]} | {r['total']:.1f} | "
            f"{'met' if r['total'] <= TARGET_S else 'MISSED'} | "
            f"{r['progress_calls']} | {r['longest_silence']:.1f} | {r['others']:.0%} |"
        )
    for case, _, r in results:
        table = r["table"]
        lines += [
            "",
            f"## {case}: each method's share",
            "",
            f"Load before: `{r['before']}`",
            "",
            f"Load after: `{r['after']}`",
            "",
            "| method | seconds | share of the total |",
            "|---|---:|---:|",
        ]
        for row in table.sort_values("seconds", ascending=False).itertuples():
            lines.append(f"| {row.method} | {row.seconds:.2f} | {row.seconds / r['total']:.0%} |")
        rest = r["total"] - float(table["seconds"].sum())
        lines.append(
            f"| (not attributed to a method: target, encoding, table) | {rest:.2f} | {rest / r['total']:.0%} |"
        )
        if r["notes"]:
            lines += ["", "Notes: " + " ".join(r["notes"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default="decoder,encoder,image", help="any of decoder, encoder, image")
    ap.add_argument("--decoder-tokens", type=int, default=32)
    ap.add_argument("--encoder-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as the app: ATTNVIZ_THREADS)")
    ap.add_argument("--thorough", action="store_true", help="the panel's Thorough settings instead of its defaults")
    ap.add_argument("--out", type=Path, default=None, help="default: results-faithfulness-panel[-thorough].md")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    names = [c.strip() for c in args.cases.split(",") if c.strip()]
    settings = panel_settings(args.thorough)
    out = args.out or BENCH / f"results-faithfulness-panel{'-thorough' if args.thorough else ''}.md"
    results = []
    for case, model, inp, what in cases(names, args):
        log(f"{case}: {what} ({uptime()})")
        r = measure(model, inp, *settings[case])
        log(f"{case}: {r['total']:.1f} s")
        results.append((case, what, r))
    text = report(results, args.threads, args.thorough)
    out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
