"""Figures of a long input's ranked views, as PNG, SVG or PDF (:mod:`attnviz.export.figure_formats`):
one query's strongest keys (the "From one token" view, and the rollout row from one token, which
the page ranks the same way) and a head's strongest (query, key) pairs over the whole input.

They draw what the page draws (:func:`attnviz.figures.pooled.strongest_keys_figure` and
:func:`~attnviz.figures.pooled.strongest_edges_figure`): bars strongest on top, each labelled with
its position and token; points at (key, query) sized and coloured by weight; and the line that
says what every other key or pair holds. The figure's height grows with the number of bars, at
:data:`attnviz.export.matrix_files.LABEL_INCHES` a bar, so labels at the paper font size never touch.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from attnviz.export.matrix_files import LABEL_INCHES
from attnviz.export.png import CMAP, _labels, _png

#: Width of the ranked figures, in inches.
WIDTH = 7.0


def _tex(text: str) -> str:
    """``text`` with ``$`` escaped, so that matplotlib does not read it as mathtext."""
    return text.replace("$", r"\$")


def strongest_keys_png(
    tokens: list[str],
    query: int,
    indices: np.ndarray,
    values: np.ndarray,
    rest_mass: float,
    rest_count: int,
    *,
    title: str,
    value_label: str = "weight",
    fmt: str = "png",
    paper: bool = False,
) -> bytes:
    """One query's strongest keys as horizontal bars, strongest on top (the arguments of
    :func:`attnviz.figures.pooled.strongest_keys_figure`: ``*strongest_keys(row, k)``)."""
    indices = np.asarray(indices, dtype=np.int64)
    values = np.asarray(values, dtype=float)
    k = len(indices)
    fig = Figure(figsize=(WIDTH, max(2.5, LABEL_INCHES * k + 1.6)))
    ax = fig.subplots()
    top = max(float(values.max(initial=0.0)), 1e-6)
    ax.barh(np.arange(k), values, color=CMAP(Normalize(0.0, top)(values)), edgecolor="#444", linewidth=0.3)
    labels = [f"{p} · {t}" for p, t in zip(indices.tolist(), _labels([tokens[p] for p in indices]), strict=True)]
    ax.set_yticks(range(k), labels, fontsize=7)
    ax.set_ylim(k - 0.5, -0.5)  # strongest on top
    ax.set_xlim(0, top * 1.05)
    ax.set_xlabel(value_label, fontsize=8)
    rest = (
        f"{rest_count:,} other keys share {rest_mass:.3f} of the weight"
        if rest_count > 0
        else "no other key has any weight"
    )
    query_token = _labels([tokens[query]], 40)[0]
    ax.set_title(f"{_tex(title)}\nquery {query} · {query_token}: its {k} strongest keys; {rest}", fontsize=9)
    return _png(fig, fmt, paper)


def strongest_pairs_png(
    tokens: list[str],
    queries: np.ndarray,
    keys: np.ndarray,
    weights: np.ndarray,
    rest_mass: float,
    rest_count: int,
    *,
    title: str,
    fmt: str = "png",
    paper: bool = False,
) -> bytes:
    """A head's strongest (query, key) pairs as points over the whole input: key position across, query
    position down (the matrix's orientation), size and colour by weight, with a colour bar (the fields
    of :func:`attnviz.text.long_views.strongest_edges`)."""
    queries = np.asarray(queries, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    weights = np.asarray(weights, dtype=float)
    n = len(tokens)
    top = max(float(weights.max(initial=0.0)), 1e-6)
    fig = Figure(figsize=(WIDTH, 6.0))
    ax = fig.subplots()
    points = ax.scatter(
        keys,
        queries,
        s=(3 + 7 * weights / top) ** 2,
        c=weights,
        cmap=CMAP,
        vmin=0.0,
        vmax=top,
        edgecolors="#444",
        linewidths=0.4,
    )
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlabel("key position (attended to)", fontsize=8)
    ax.set_ylabel("query position (attending)", fontsize=8)
    ax.set_title(
        f"{_tex(title)}\nits {len(weights)} strongest query → key pairs; {rest_count:,} other pairs with weight "
        f"share {rest_mass:,.1f} of the head's {n:,} (one per query)",
        fontsize=9,
    )
    fig.colorbar(points, ax=ax, fraction=0.04, label="weight")
    return _png(fig, fmt, paper)
