"""Seconds to export a matrix view as PNG at 64, 256 and 512 tokens.

    python benchmarks/png_export.py            # prints a table; --out DIR also writes the PNGs

No model runs: the views are random rows that sum to 1 over made-up tokens of 3-12 letters,
so only the drawing (matplotlib) is measured. A 512-token head matrix took ~17 s before the
tick labels were thinned.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attnviz.export import png  # noqa: E402
from attnviz.export.rollout_files import rollout_png  # noqa: E402
from attnviz.text.views import AttentionView  # noqa: E402

SIZES = (64, 256, 512)


def view(n: int, n_layers: int = 1, n_heads: int = 1, seed: int = 0) -> AttentionView:
    rng = np.random.default_rng(seed)
    logits = rng.normal(scale=2.0, size=(n_layers, n_heads, n, n))
    w = np.exp(logits - logits.max(axis=-1, keepdims=True))
    w = (w / w.sum(axis=-1, keepdims=True)).astype(np.float32)
    letters = "abcdefghijklmnopqrstuvwxyz"
    tokens = ["".join(rng.choice(list(letters), size=rng.integers(3, 13))) for _ in range(n)]
    return AttentionView(tokens, tokens, w, np.arange(n), np.arange(n), "benchmark")


def timed(fn) -> tuple[float, bytes]:
    start = time.perf_counter()
    data = fn()
    return time.perf_counter() - start, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="folder to write the PNGs to (to look at them)")
    args = ap.parse_args()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    exports = {
        "head matrix": lambda v: png.head_matrix_png(v, 0, 0),
        "rollout": lambda v: rollout_png(v),
        "from one token": lambda v: png.token_heads_png(v, 1),
    }
    print(f"| export | {' | '.join(f'{n} tokens' for n in SIZES)} |")
    print(f"|---|{'---|' * len(SIZES)}")
    for name, fn in exports.items():
        cells = []
        for n in SIZES:
            v = view(n) if name != "from one token" else view(n, n_layers=6, n_heads=12)
            seconds, data = timed(lambda v=v, fn=fn: fn(v))
            cells.append(f"{seconds:.2f} s ({len(data) / 1e3:.0f} kB)")
            if args.out:
                (args.out / f"{name.replace(' ', '-')}-{n}.png").write_bytes(data)
        print(f"| {name} | {' | '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
