"""An explanation scoreboard (``attnviz.score_explanations``) as files: the table as CSV, the
deletion and insertion curves as a PNG (matplotlib), like the other views' downloads."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
from matplotlib.figure import Figure

from attnviz.export.csv_cells import text_cell, text_cells
from attnviz.export.png import _png
from attnviz.figures.removal_curves import CURVES, RANDOM_COLOR, method_color, method_order, random_method

#: The table's columns, in this order, then what was scored.
COLUMNS = ("method", "deletion_auc", "insertion_auc", "loo_spearman", "seconds", "deletion_sd", "insertion_sd")


def _number(value) -> str:
    value = float(value)
    return "" if math.isnan(value) else f"{value:.6g}"


def scores_csv(scores) -> bytes:
    """One row per method (the table's order: best deletion AUC first), then the model, the target
    and the family. Empty cells are NaN (a standard deviation is the random row's only).

    Text cells that a spreadsheet would run as formulas get a leading ``'`` (:mod:`attnviz.export.csv_cells`).
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*COLUMNS, "model", "target", "family"])
    about = text_cells([str(scores.model_name), str(scores.target), str(scores.family)])
    for row in scores.table.to_dict("records"):
        writer.writerow([text_cell(str(row["method"])), *(_number(row[c]) for c in COLUMNS[1:]), *about])
    return out.getvalue().encode("utf-8")


def _text(value: str, max_len: int = 60) -> str:
    # "$" would start matplotlib's mathtext.
    value = value if len(value) <= max_len else value[: max_len - 1] + "…"
    return value.replace("$", r"\$")


def removal_curves_png(scores, *, fmt: str = "png", paper: bool = False) -> bytes:
    """The curves of :func:`attnviz.figures.removal_curves.removal_curves` as a PNG (or ``fmt``: svg, pdf;
    ``paper``: paper-ready, :mod:`attnviz.export.figure_formats`)."""
    x = np.asarray(scores.fractions, dtype=float)  # (s+1,)
    fig = Figure(figsize=(11, 4.6))
    axes = fig.subplots(1, 2, sharey=True)
    rand = random_method(scores) or "random"
    for ax, (curve, title, verb) in zip(axes, CURVES, strict=True):
        if curve in scores.random_band:
            mean, sd = (np.asarray(a, dtype=float) for a in scores.random_band[curve])
            ax.fill_between(x, mean - sd, mean + sd, color=RANDOM_COLOR, alpha=0.22, linewidth=0)
            ax.plot(x, mean, color=RANDOM_COLOR, linestyle="--", linewidth=1.2, label=_text(f"{rand} (mean ± sd)"))
        for method in method_order(scores):
            color = method_color(scores, method)
            ax.plot(x, getattr(scores, curve)[method], color=color, linewidth=1.6, label=_text(method))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(f"fraction of the input {verb}")
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("target score ÷ full input's")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle(_text(f"{scores.model_name} · target: {scores.target}", 100), fontsize=10)
    fig.subplots_adjust(bottom=0.32, wspace=0.05)
    return _png(fig, fmt, paper)
