"""Figures of any labelled matrix, for the views that are not one attention head of a text: a step
of the worked example (Q, K, scores, weights ...), a head statistic over layers and heads, a long
input's pooled head and its pooled layer or model. PNG by default, or SVG / PDF (:mod:`attnviz.export.figure_formats`).
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from attnviz.export.png import CMAP, _png, _size, grid_png, label_ticks
from attnviz.figures.matrix import MAX_ROW_LABELS
from attnviz.maths.pooling import PooledMatrix, visible_bins

#: Signed matrices (queries, keys, scores) are drawn on a diverging scale centred on 0.
DIVERGING = colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
#: Inches per tick label (12 pt): room for a label at the paper font size (8 pt) and a gap.
LABEL_INCHES = 0.17
#: Head statistics, as on screen (Plotly's Viridis).
STATISTIC = colormaps["viridis"].with_extremes(bad="#d9d9d9")


def labelled_matrix_png(
    values: np.ndarray,
    row_labels: list[str],
    col_labels: list[str],
    *,
    title: str,
    value_label: str,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap=None,
    annotate: bool = False,
    fmt: str = "png",
    paper: bool = False,
) -> bytes:
    """``values`` (rows, cols) as a heat map with its colour bar; NaN and ±inf (a masked score) are grey.

    Without ``cmap``: a matrix with negative values gets a diverging scale symmetric about 0, any
    other the attention scale from 0. Labels are thinned to at most ``MAX_ROW_LABELS`` per axis.
    ``annotate`` writes each value in its cell (small matrices only: up to 24 × 24).
    """
    m = np.ma.masked_invalid(np.asarray(values, dtype=float))  # (rows, cols)
    finite = m.compressed()
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if cmap is None and low < 0:
        cmap, bound = DIVERGING, max(abs(low), abs(high), 1e-9)
        vmin, vmax = (-bound if vmin is None else vmin), (bound if vmax is None else vmax)
    elif cmap is None:
        cmap = CMAP
    vmin = low if vmin is None else vmin
    vmax = max(high, vmin + 1e-9) if vmax is None else vmax
    rows, cols = m.shape
    # At least 0.17 in (12 pt) per labelled row or column: labels at the paper font size never touch.
    width = max(0.5 * _size(cols), LABEL_INCHES * min(cols, MAX_ROW_LABELS)) + 2.5
    height = max(0.45 * _size(rows), LABEL_INCHES * min(rows, MAX_ROW_LABELS)) + 1.2
    fig = Figure(figsize=(min(30.0, width), min(30.0, height)))
    ax = fig.subplots()
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    label_ticks(ax, [str(c) for c in col_labels], [str(r) for r in row_labels])
    if annotate and rows <= 24 and cols <= 24:
        middle = (vmin + vmax) / 2
        for (i, j), v in np.ndenumerate(m.filled(np.nan)):
            if np.isfinite(v):
                dark = v > middle if cmap is not DIVERGING else abs(v) > 0.6 * vmax
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white" if dark else "black")
    ax.set_title(title.replace("$", r"\$"), fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04, label=value_label)
    return _png(fig, fmt, paper)


def head_statistic_png(table, column: str, *, description: str = "", unit: str = "", **options) -> bytes:
    """One statistic of a head-statistics table (columns ``layer``, ``head``, ``column``) as a layer × head
    map, as on the statistics page. ``options``: ``vmax``, ``fmt``, ``paper`` of :func:`labelled_matrix_png`."""
    n_layers, n_heads = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
    grid = np.full((n_layers, n_heads), np.nan)  # (layers, heads)
    grid[table["layer"].to_numpy(), table["head"].to_numpy()] = table[column].to_numpy()
    title = f"{column}: {description}" if description else column
    return labelled_matrix_png(
        grid,
        [f"layer {layer}" for layer in range(n_layers)],
        [f"head {head}" for head in range(n_heads)],
        title=title,
        value_label=unit or column,
        vmin=0.0,
        cmap=STATISTIC,
        annotate=n_layers * n_heads <= 144,
        **options,
    )


def _bin_labels(edges: np.ndarray, tokens: list[str]) -> list[str]:
    """``"first–last first-token"`` for each block of tokens ``edges[i] .. edges[i+1]-1``."""
    return [f"{a}–{b - 1} {tokens[int(a)][:12]}" for a, b in zip(edges[:-1], edges[1:], strict=True)]


def pooled_head_png(
    pm: PooledMatrix, tokens: list[str], *, title: str, causal: bool, scale: str = "head max", **options
) -> bytes:
    """A long input's pooled head (:class:`~attnviz.maths.pooling.PooledMatrix` ``(bq, bk)``), as on the
    page: one cell per block of tokens, labelled by its token range and first token; a decoder's
    blocks that no query can see are grey. ``options``: ``fmt``, ``paper``."""
    values = np.asarray(pm.values, dtype=float)  # (bq, bk)
    if causal:
        values = np.where(visible_bins(pm.query_edges, pm.key_edges), values, np.nan)
    top = 1.0 if scale == "fixed" else max(float(np.nanmax(values)), 1e-6)
    return labelled_matrix_png(
        values,
        _bin_labels(pm.query_edges, tokens),
        _bin_labels(pm.key_edges, tokens),
        title=title,
        value_label=f"{pm.how} weight of each block",
        vmin=0.0,
        vmax=top,
        cmap=CMAP,
        **options,
    )


def pooled_heads_png(values: np.ndarray, titles: list[str], n_cols: int, suptitle: str, **options) -> bytes:
    """Pooled heads ``(..., bq, bk)`` (a layer's, or the whole model's) as small multiples, each on its own
    scale as on the page. ``options``: ``fmt``, ``paper``."""
    flat = np.asarray(values, dtype=float).reshape(-1, *values.shape[-2:])  # (m, bq, bk)
    return grid_png(flat, titles, n_cols, suptitle, scale="head max", **options)
