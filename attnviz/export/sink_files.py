"""The attention-sink map as files: a PNG (matplotlib) and a CSV of every head's sink masses."""

from __future__ import annotations

import csv
import io

from matplotlib import colormaps
from matplotlib.figure import Figure

from attnviz.export.png import _png
from attnviz.text.sinks import AttentionSinks


def sinks_png(sinks: AttentionSinks, *, fmt: str = "png", paper: bool = False) -> bytes:
    """Every head's sink masses as layer × head maps with one colour bar (``fmt``: png, svg, pdf)."""
    panels = [(sinks.first, "on the first token")]
    if sinks.special is not None:
        panels.append((sinks.special, "on the other special tokens"))
    fig = Figure(figsize=(3.2 * len(panels) + 1, 0.22 * sinks.n_layers + 1.5))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (grid, title) in zip(axes, panels, strict=True):
        im = ax.imshow(grid, cmap=colormaps["viridis"], vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("head", fontsize=8)
        ax.set_ylabel("layer", fontsize=8)
    fig.colorbar(im, ax=list(axes), fraction=0.04, label="mean share of a row's attention")
    fig.suptitle(f"Attention sinks ({sinks.model_name})", fontsize=10)
    return _png(fig, fmt, paper)


def sinks_csv(sinks: AttentionSinks) -> bytes:
    """One row per head: layer, head, first_token_mass, special_token_mass (empty when there are none)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["layer", "head", "first_token_mass", "special_token_mass"])
    for layer in range(sinks.n_layers):
        for head in range(sinks.n_heads):
            special = "" if sinks.special is None else f"{sinks.special[layer, head]:.6f}"
            writer.writerow([layer, head, f"{sinks.first[layer, head]:.6f}", special])
    return out.getvalue().encode("utf-8")
