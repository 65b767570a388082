"""Static export of each view with matplotlib (for slides, papers and reports).

Every writer returns the bytes of a PNG by default, or of an SVG or PDF with ``fmt="svg"`` /
``fmt="pdf"``; ``paper=True`` makes it paper-ready (white background, readable fonts, a colour
bar on every map): :mod:`attnviz.export.figure_formats`.

Figures are built with ``matplotlib.figure.Figure`` directly, not pyplot, so several users
can export at once without sharing pyplot's global state. A decoder's keys that a query cannot
see are masked and drawn grey, as on screen (:data:`attnviz.figures.matrix.NOT_VISIBLE`).
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from attnviz.export.figure_formats import PNG_DPI, save_figure
from attnviz.figures.lines import head_color, segments
from attnviz.figures.matrix import COLORSCALE, MAX_ROW_LABELS, NOT_VISIBLE
from attnviz.maths.pooling import pool
from attnviz.text.views import AttentionView

#: The on-screen colour scale; masked cells (keys a decoder's query cannot see) are grey.
CMAP = colormaps[COLORSCALE].with_extremes(bad=NOT_VISIBLE)


def masked(view: AttentionView, matrices: np.ndarray) -> np.ndarray:
    """``matrices`` ``[..., q, k]`` of ``view`` with the keys each query cannot see masked (decoders)."""
    visible = view.visible
    if visible is None:
        return matrices
    return np.ma.masked_array(matrices, mask=np.broadcast_to(~visible, matrices.shape))


def _png(fig: Figure, fmt: str = "png", paper: bool = False) -> bytes:
    """``fig`` as a ``fmt`` file (png, svg, pdf); see :func:`attnviz.export.figure_formats.save_figure`."""
    return save_figure(fig, fmt, paper=paper)


def _colorbar_all(fig: Figure, axes, *, top: float | None, label: str) -> None:
    """One colour bar for small multiples: 0 to ``top``, or (``top`` None: each tile has its own
    scale) 0 to each tile's largest weight."""
    norm = Normalize(0, 1 if top is None else top)
    fig.colorbar(
        ScalarMappable(norm=norm, cmap=CMAP),
        ax=list(axes),
        fraction=0.03,
        label=label if top is not None else f"{label} ÷ the tile's largest",
    )


def _labels(tokens: list[str], max_len: int = 16) -> list[str]:
    # "$" would start matplotlib's mathtext; escape it so text shows as typed.
    return [(t if len(t) <= max_len else t[: max_len - 1] + "…").replace("$", r"\$") for t in tokens]


def _size(n: int) -> float:
    return float(min(30, max(5, 0.22 * n + 2)))


def _ordinal(k: int) -> str:
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def label_ticks(ax, key_tokens: list[str], query_tokens: list[str] | None = None) -> None:
    """Tick labels for the keys (x) and, if given, the queries (y), at most ``MAX_ROW_LABELS`` per axis.

    The on-screen matrix labels at most that many rows too. At 512 tokens a label per token
    meant 1,024 texts laid out twice (once for the tight bounding box), most of an export's
    4-17 s, and labels 2 points apart that nobody could read; every k-th token is labelled
    instead, and the axis says so.
    """
    for tokens, set_ticks, set_label, extra in (
        (key_tokens, ax.set_xticks, ax.set_xlabel, {"rotation": 90}),
        (query_tokens, ax.set_yticks, ax.set_ylabel, {}),
    ):
        if tokens is None:
            continue
        step = -(-len(tokens) // MAX_ROW_LABELS)
        set_ticks(range(0, len(tokens), step), _labels(tokens[::step]), fontsize=7, **extra)
        if step > 1:
            set_label(f"every {_ordinal(step)} token labelled ({len(tokens)} in all)", fontsize=7)


def head_matrix_png(
    view: AttentionView, layer: int, head: int, *, scale: str = "fixed", fmt: str = "png", paper: bool = False
) -> bytes:
    w = masked(view, view.weights[layer, head])
    fig = Figure(figsize=(_size(w.shape[1]) + 1, _size(w.shape[0])))
    ax = fig.subplots()
    top = 1 if scale == "fixed" else max(float(w.max()), 1e-6)
    # "nearest": one flat square per weight, and no resampling of a 4,500-pixel canvas.
    im = ax.imshow(w, cmap=CMAP, vmin=0, vmax=top, aspect="auto", interpolation="nearest")
    label_ticks(ax, view.key_tokens, view.query_tokens)
    ax.tick_params(axis="x", labelbottom=True)
    ax.set_title(f"Layer {layer}, head {head} ({view.description})", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="attention weight")
    return _png(fig, fmt, paper)


#: A small multiple's side in inches (at PNG_DPI, its side in pixels).
TILE_INCHES = 1.6


def max_pooled(matrix: np.ndarray, pixels: int) -> np.ndarray:
    """``matrix`` ``(q, k)`` (masked or not) max-pooled to at most ``pixels`` a side, as the on-screen
    mosaics are (:mod:`attnviz.figures.mosaic`): drawn smaller than its cells, an image is sampled, and
    a sharp head's one strong key per query would mostly fall between the samples. A pooled cell is
    masked only when it covers no visible cell."""
    q, k = matrix.shape
    if max(q, k) <= pixels:
        return matrix
    bins = (min(q, pixels), min(k, pixels))
    hidden = np.ma.getmaskarray(matrix)
    values = pool(np.where(hidden, 0.0, np.ma.getdata(matrix)).astype(np.float32), *bins, "max").values
    if not hidden.any():
        return values
    seen = pool((~hidden).astype(np.float32), *bins, "max").values > 0
    return np.ma.masked_array(values, mask=~seen)


def grid_png(
    matrices: np.ndarray,
    titles: list[str],
    n_cols: int,
    suptitle: str,
    *,
    scale: str = "fixed",
    fmt: str = "png",
    paper: bool = False,
) -> bytes:
    """Small multiples of ``matrices`` ``(m, q, k)`` without tick labels."""
    m = matrices.shape[0]
    n_rows = -(-m // n_cols)
    fig = Figure(figsize=(TILE_INCHES * n_cols, TILE_INCHES * n_rows + 0.6))
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for i in range(m):
        top = 1.0 if scale == "fixed" else max(float(matrices[i].max()), 1e-6)
        shown = max_pooled(matrices[i], int(TILE_INCHES * PNG_DPI) // 2)  # the axes get under the tile's whole side
        axes[i].imshow(shown, cmap=CMAP, vmin=0, vmax=top, interpolation="nearest")
        axes[i].set_title(titles[i], fontsize=6)
    fig.suptitle(suptitle, fontsize=10)
    if paper:
        _colorbar_all(fig, axes, top=1.0 if scale == "fixed" else None, label="attention weight")
    return _png(fig, fmt, paper)


def layer_heads_png(
    view: AttentionView, layer: int, *, scale: str = "fixed", fmt: str = "png", paper: bool = False
) -> bytes:
    heads = masked(view, view.weights[layer])
    return grid_png(
        heads,
        [f"head {h}" for h in range(view.n_heads)],
        4,
        f"Layer {layer}: every head ({view.description})",
        scale=scale,
        fmt=fmt,
        paper=paper,
    )


def overview_png(view: AttentionView, *, scale: str = "head max", fmt: str = "png", paper: bool = False) -> bytes:
    flat = masked(view, view.weights.reshape(-1, *view.weights.shape[2:]))
    titles = [f"L{l} H{h}" for l in range(view.n_layers) for h in range(view.n_heads)]
    return grid_png(
        flat, titles, view.n_heads, f"Every layer and head ({view.description})", scale=scale, fmt=fmt, paper=paper
    )


def token_heads_png(
    view: AttentionView, query: int, *, scale: str = "fixed", fmt: str = "png", paper: bool = False
) -> bytes:
    rows = view.weights[:, :, query, :].reshape(view.n_layers * view.n_heads, -1)
    if view.visible is not None:  # keys after the query token: grey
        rows = np.ma.masked_array(rows, mask=np.broadcast_to(~view.visible[query], rows.shape))
    fig = Figure(figsize=(_size(rows.shape[1]) + 1, 0.16 * rows.shape[0] + 1.5))
    ax = fig.subplots()
    top = 1 if scale == "fixed" else max(float(rows.max()), 1e-6)
    im = ax.imshow(rows, cmap=CMAP, vmin=0, vmax=top, aspect="auto", interpolation="nearest")
    label_ticks(ax, view.key_tokens)
    ax.set_yticks(
        range(rows.shape[0]), [f"L{l} H{h}" for l in range(view.n_layers) for h in range(view.n_heads)], fontsize=5
    )
    ax.tick_params(axis="x", labelbottom=True)
    ax.set_title(f"From “{_labels([view.query_tokens[query]])[0]}” in every layer and head", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label="attention weight")
    return _png(fig, fmt, paper)


def head_lines_png(
    view: AttentionView,
    layer: int,
    heads: list[int],
    *,
    threshold: float = 0.05,
    query: int | None = None,
    fmt: str = "png",
    paper: bool = False,
) -> bytes:
    n = max(len(view.query_tokens), len(view.key_tokens))
    fig = Figure(figsize=(5, max(3.0, 0.22 * n + 1)))
    ax = fig.subplots()
    for h in heads:
        rows, cols, w = segments(view.weights[layer, h], threshold, query)
        for r, c, a in zip(rows, cols, w, strict=True):
            ax.plot([0, 1], [r, c], color=head_color(h), alpha=float(min(1.0, 0.15 + a)), linewidth=0.5 + 2 * a)
    for i, t in enumerate(_labels(view.query_tokens)):
        ax.text(-0.02, i, t, ha="right", va="center", fontsize=7)
    for j, t in enumerate(_labels(view.key_tokens)):
        ax.text(1.02, j, t, ha="left", va="center", fontsize=7)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(-0.4, 1.4)
    ax.axis("off")
    which = f"head {heads[0]}" if len(heads) == 1 else f"heads {', '.join(map(str, heads))}" if heads else "no head"
    ax.set_title(f"Layer {layer}, {which} (weight ≥ {threshold:g})", fontsize=9)
    return _png(fig, fmt, paper)
