"""The rollout view as files: a PNG (matplotlib) and a CSV, like the other views' downloads."""

from __future__ import annotations

import csv
import io

from matplotlib.figure import Figure

from attnviz.export.csv_cells import text_cells
from attnviz.export.png import CMAP, _png, _size, label_ticks, masked
from attnviz.maths.colour_scale import colour_top
from attnviz.text.views import AttentionView


def rollout_png(view: AttentionView, *, scale: str = "fixed", fmt: str = "png", paper: bool = False) -> bytes:
    """The ``[1, 1, q, k]`` rollout view of :func:`attnviz.figures.rollout.rollout_view` as a PNG (or ``fmt``:
    svg, pdf; ``paper``: paper-ready, :mod:`attnviz.export.figure_formats`)."""
    w = masked(view, view.weights[0, 0])  # (q, k)
    fig = Figure(figsize=(_size(w.shape[1]) + 1, _size(w.shape[0])))
    ax = fig.subplots()
    # The rollout's own shares set the colours, whatever ``scale`` (as on screen: attnviz.figures.rollout).
    shares = view.weights[0, 0] if view.visible is None else view.weights[0, 0][view.visible]
    top, words = colour_top(shares)
    im = ax.imshow(w, cmap=CMAP, vmin=0, vmax=top, aspect="auto", interpolation="nearest")
    label_ticks(ax, view.key_tokens, view.query_tokens)
    ax.set_title(f"Attention rollout ({view.description})\ncolours {words}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="share of the last-layer state")
    return _png(fig, fmt, paper)


def rollout_csv(view: AttentionView) -> bytes:
    """One row per (query, key): how much the query's last-layer state draws on the key.

    Token and word cells that a spreadsheet would run as formulas get a leading ``'`` (:mod:`attnviz.export.csv_cells`).
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["query_index", "query", "key_index", "key", "rollout"])
    w = view.weights[0, 0]
    queries, keys = text_cells(view.query_tokens), text_cells(view.key_tokens)
    for i, q in enumerate(queries):
        for j, k in enumerate(keys):
            writer.writerow([int(view.query_positions[i]), q, int(view.key_positions[j]), k, f"{w[i, j]:.6f}"])
    return out.getvalue().encode("utf-8")
