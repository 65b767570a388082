"""Long prompts drawn pooled to screen resolution (:mod:`attnviz.maths.pooling`).

A head over 8,192 tokens is a ``[8192, 8192]`` matrix: it is pooled into bins of tokens first
and only the bins are drawn, so a figure's size depends on the bins, not on the prompt.

- :func:`pooled_head`: one head as a heatmap of its bins; axis ticks name each bin's token range
  and first token (a sparse subset, so they stay legible), the hover names both ranges and the
  pooled weight, the subtitle says what a cell is. Plotly sends a numpy ``z`` as a typed array,
  so the values go out as float32 (about 5.3 bytes a cell after base64; decimal rounding would
  not make them smaller): 256 x 256 bins are ~0.36 MB.
- :func:`pooled_layer` / :func:`pooled_overview`: every head of a layer / of the model as one PNG
  mosaic with a hover layer (:mod:`attnviz.figures.mosaic`'s machinery). Bins beyond the tile's
  pixels are pooled again the same way (:func:`attnviz.maths.pooling.coarsen`), so a max-pooled
  head keeps its sharp lines in a thumbnail.
- :func:`strongest_keys_figure`: the top keys of one query as bars, and what the rest share.

As in :mod:`attnviz.figures.matrix`, a decoder's bins that hold no cell a query can see are empty
(grey, :data:`~attnviz.figures.matrix.NOT_VISIBLE`), never drawn as weight 0. Token text goes
through :mod:`attnviz.figures.labels`.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from attnviz.figures.labels import MAX_TITLE, plot_text
from attnviz.figures.matrix import COLORSCALE, HOVER_FONT, NOT_VISIBLE, _height, _zmax
from attnviz.figures.mosaic import _tile_figure, _zmax_per_head
from attnviz.maths.pooling import PooledMatrix, coarsen, visible_bins

#: Tick labels per axis, at most: the hover names every bin.
MAX_TICKS = 32
#: Characters of a bin's first token shown in its label.
TOKEN_CHARS = 12


def _sizes(edges: np.ndarray) -> str:
    sizes = np.diff(edges)
    lo, hi = int(sizes.min()), int(sizes.max())
    return f"{lo}" if lo == hi else f"{lo}–{hi}"


def pooling_caption(pm: PooledMatrix, causal: bool) -> str:
    """What one cell of ``pm`` is, in words (plain text, no markup)."""
    if np.all(np.diff(pm.query_edges) == 1) and np.all(np.diff(pm.key_edges) == 1):
        return "not pooled: one cell per query and key"
    block = f"{_sizes(pm.query_edges)} × {_sizes(pm.key_edges)} block of tokens"
    if pm.how == "max":
        return f"max-pooled: each cell is the largest weight in its {block}"
    text = f"mean-pooled: each cell is the average weight of its {block}"
    return text + (" (keys a query cannot see count as 0)" if causal else "")


def bin_labels(edges: np.ndarray, tokens: list[str]) -> list[str]:
    """One label per bin: its positions ("0–31", or "7" for one token) and its first token, escaped."""
    labels = []
    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        span = f"{a}" if b - a == 1 else f"{a}–{b - 1}"
        labels.append(f"{span} · {plot_text(tokens[a], TOKEN_CHARS)}")
    return labels  # unique: the spans differ


def _sparse_ticks(labels: list[str]) -> dict:
    step = -(-len(labels) // MAX_TICKS)
    return dict(tickmode="array", tickvals=labels[::step], ticktext=labels[::step])


def pooled_head(pm: PooledMatrix, tokens: list[str], *, title: str, causal: bool, scale: str = "head max") -> go.Figure:
    """One head's pooled matrix as a heatmap: query bins down, key bins across.

    Args:
        pm: a 2-D :class:`PooledMatrix` (``values`` ``(bq, bk)``), e.g. ``pool(w, 256, 256, "max")``.
        tokens: the token text of every position (only each bin's first token is sent).
        title: the figure's title (escaped here).
        causal: a decoder's matrix: bins with no cell a query can see are grey, not 0.
        scale: ``"head max"`` colours 0..largest cell (mean-pooled cells are small);
            ``"fixed"`` colours 0..1.
    """
    if pm.values.ndim != 2:
        raise ValueError(f"pooled_head draws one head, got values of shape {pm.values.shape}")
    if len(tokens) < max(pm.n_queries, pm.n_keys):
        raise ValueError(f"{len(tokens)} tokens for {pm.n_queries} queries x {pm.n_keys} keys")
    values = np.asarray(pm.values, dtype=np.float32)
    z = np.where(visible_bins(pm.query_edges, pm.key_edges), values, np.nan) if causal else values
    zmax = _zmax(values, scale)
    rows, cols = bin_labels(pm.query_edges, tokens), bin_labels(pm.key_edges, tokens)
    number = ".3f" if pm.how == "max" else ".3g"  # mean cells of a long prompt are ~1/n
    fig = go.Figure(
        go.Heatmap(
            z=z.astype(np.float32),
            x=cols,
            y=rows,
            zmin=0.0,
            zmax=zmax,
            colorscale=COLORSCALE,
            colorbar=dict(title=f"{pm.how} weight", thickness=12),
            hoverongaps=False,
            hovertemplate=(f"queries %{{y}}<br>keys %{{x}}<br>{pm.how} weight: %{{z:{number}}}<extra></extra>"),
        )
    )
    fig.update_layout(
        title=dict(
            text=f"{plot_text(title, MAX_TITLE)}<br><span style='font-size:12px'>{pooling_caption(pm, causal)}</span>"
        ),
        height=_height(len(rows)),
        margin=dict(l=10, r=10, t=70, b=20),
        hoverlabel=HOVER_FONT,
        dragmode=False,
        plot_bgcolor=NOT_VISIBLE if causal else None,
    )
    fig.update_xaxes(
        type="category",
        side="bottom",
        tickangle=-60,
        title_text="keys (attended to)",
        showgrid=False,
        **_sparse_ticks(cols),
    )
    fig.update_yaxes(
        type="category",
        autorange="reversed",
        title_text="queries (attending)",
        showgrid=False,
        **_sparse_ticks(rows),
    )
    return fig


def _tiles(
    values: np.ndarray, query_edges: np.ndarray, key_edges: np.ndarray, how: str, size: int, causal: bool
) -> tuple[PooledMatrix, int, np.ndarray | None]:
    """Pool ``values`` (m, bq, bk) down to at most ``size`` bins a side, for tiles of whole pixels.

    Returns the pooled (m, b, b') matrices, the tile size in pixels, and their visible bins (or None).
    """
    pm = coarsen(PooledMatrix(np.asarray(values, dtype=np.float32), query_edges, key_edges, how), size, size)
    bins = max(pm.values.shape[-2:])
    pixels = bins * max(1, size // bins)  # fewer bins than pixels: each bin is a square of whole pixels
    visible = visible_bins(pm.query_edges, pm.key_edges) if causal else None
    return pm, pixels, visible


def _peak_hover(fig: go.Figure, values: np.ndarray, how: str) -> go.Figure:
    """The mosaic's hover says the largest cell of each head's pooled matrix, named for ``how``."""
    peak = values.reshape(values.shape[0], -1).max(axis=1)
    what = "largest weight" if how == "max" else "largest block mean"
    number = ".3f" if how == "max" else ".3g"
    hover = next(t for t in fig.data if isinstance(t, go.Scatter))
    hover.update(
        customdata=peak,
        hovertemplate=f"%{{hovertext}}<br>{what}: %{{customdata:{number}}}<br>click to open<extra></extra>",
    )
    return fig


def pooled_layer(
    values: np.ndarray,
    edges: np.ndarray,
    *,
    layer: int,
    how: str,
    causal: bool,
    model_name: str,
    key_edges: np.ndarray | None = None,
    scale: str = "head max",
    size: int = 128,
    n_cols: int = 4,
) -> go.Figure:
    """Every head of one layer, pooled, as one PNG mosaic; a click on a tile returns its head.

    Args:
        values: ``(heads, bq, bk)`` pooled values, e.g. ``RowPooling(..., leading=(heads,)).result().values``.
        edges: the query bins' edges ``(bq + 1,)``; also the keys' unless ``key_edges`` is given.
        how: ``"max"`` or ``"mean"``, how ``values`` were pooled.
    """
    values = np.asarray(values)
    if values.ndim != 3:
        raise ValueError(f"pooled_layer needs (heads, bq, bk), got {values.shape}")
    key_edges = edges if key_edges is None else key_edges
    shown, pixels, visible = _tiles(values, edges, key_edges, how, size, causal)
    caption = pooling_caption(shown, causal)  # what one tile pixel (block) is
    n_heads = values.shape[0]
    fig = _tile_figure(
        shown.values,
        [f"layer {layer} · head {h}" for h in range(n_heads)],
        n_cols,
        pixels,
        _zmax_per_head(shown.values, scale),
        title=f"{plot_text(model_name, 60)} · layer {layer}: every head<br>"
        f"<span style='font-size:12px'>{caption}</span>",
        tile_titles=[f"head {h}" for h in range(n_heads)],
        visible=visible,
    )
    fig.update_layout(margin=dict(t=70))
    return _peak_hover(fig, values, how)


def pooled_overview(
    values: np.ndarray,
    edges: np.ndarray,
    *,
    how: str,
    causal: bool,
    model_name: str,
    key_edges: np.ndarray | None = None,
    scale: str = "head max",
    size: int = 48,
) -> go.Figure:
    """Every layer (rows) x head (columns), pooled, as thumbnails; a click returns (layer, head).

    ``values``: ``(layers, heads, bq, bk)``; ``edges`` / ``key_edges`` as in :func:`pooled_layer`.
    """
    values = np.asarray(values)
    if values.ndim != 4:
        raise ValueError(f"pooled_overview needs (layers, heads, bq, bk), got {values.shape}")
    n_layers, n_heads = values.shape[:2]
    key_edges = edges if key_edges is None else key_edges
    flat = values.reshape(n_layers * n_heads, *values.shape[2:])
    shown, pixels, visible = _tiles(flat, edges, key_edges, how, size, causal)
    caption = pooling_caption(shown, causal)  # what one thumbnail pixel (block) is
    fig = _tile_figure(
        shown.values,
        [f"layer {l} · head {h}" for l in range(n_layers) for h in range(n_heads)],
        n_heads,
        pixels,
        _zmax_per_head(shown.values, scale),
        title=f"{plot_text(model_name, 60)}: every layer and head (click a thumbnail to open it)<br>"
        f"<span style='font-size:12px'>{caption}</span>",
        col_titles=[f"H{h}" for h in range(n_heads)],
        row_titles=[f"L{l}" for l in range(n_layers)],
        visible=visible,
    )
    fig.update_layout(margin=dict(t=70))
    return _peak_hover(fig, flat, how)


def strongest_keys_figure(
    tokens: list[str],
    query: int,
    indices: np.ndarray,
    values: np.ndarray,
    rest_mass: float,
    rest_count: int,
    *,
    title: str,
) -> go.Figure:
    """The strongest keys of one query as horizontal bars, strongest on top.

    Takes :func:`attnviz.maths.pooling.strongest_keys`'s result:
    ``strongest_keys_figure(tokens, q, *strongest_keys(w[q], 20), title=...)``. Each bar is labelled
    with the key's position and token; an annotation says how many other keys (with weight > 0)
    share how much of the weight.
    """
    indices = np.asarray(indices, dtype=np.int64)
    values = np.asarray(values, dtype=np.float32)
    labels = [f"{p} · {plot_text(tokens[p])}" for p in indices.tolist()]  # unique: positions differ
    fig = go.Figure(
        go.Bar(
            x=values,
            y=labels,
            orientation="h",
            marker=dict(color=values, colorscale=COLORSCALE, cmin=0.0, cmax=max(float(values.max(initial=0)), 1e-6)),
            hovertemplate="key %{y}<br>weight: %{x:.4f}<extra></extra>",
        )
    )
    if rest_count > 0:
        rest = f"{rest_count:,} other keys share {rest_mass:.3f} of the weight"
    else:
        rest = "no other key has any weight"
    fig.update_layout(
        title=dict(
            text=f"{plot_text(title, MAX_TITLE)}<br><span style='font-size:12px'>query {query} · "
            f"{plot_text(tokens[query], 40)}: its {len(indices)} strongest keys</span>"
        ),
        height=int(max(320, min(1100, 24 * len(indices) + 170))),
        margin=dict(l=10, r=10, t=90, b=40),
        hoverlabel=HOVER_FONT,
        dragmode=False,
        annotations=[
            dict(text=rest, xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom", showarrow=False)
        ],
    )
    fig.update_xaxes(title_text="weight", rangemode="tozero")
    fig.update_yaxes(type="category", autorange="reversed")
    return fig


def strongest_edges_figure(
    tokens: list[str],
    queries: np.ndarray,
    keys: np.ndarray,
    weights: np.ndarray,
    rest_mass: float,
    rest_count: int,
    *,
    title: str,
) -> go.Figure:
    """A head's strongest (query, key) pairs as points over the whole input: key position across,
    query position down (the matrix's orientation), size and colour by weight.

    Takes :func:`attnviz.text.long_views.strongest_edges`'s fields. At 8,192 tokens the matrix
    has 67 million cells; these points are where the head's weight concentrates, and the
    annotation says what every other pair holds.
    """
    queries = np.asarray(queries, dtype=np.int64)
    keys = np.asarray(keys, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float32)
    n = len(tokens)
    top = float(weights.max(initial=0.0)) or 1e-6
    hover = [
        f"query {q} · {plot_text(tokens[q], 30)}<br>key {k} · {plot_text(tokens[k], 30)}<br>weight {w:.4f}"
        for q, k, w in zip(queries.tolist(), keys.tolist(), weights.tolist(), strict=True)
    ]
    fig = go.Figure(
        go.Scattergl(
            x=keys,
            y=queries,
            mode="markers",
            marker=dict(
                size=6 + 14 * weights / top,
                color=weights,
                colorscale=COLORSCALE,
                cmin=0.0,
                cmax=top,
                colorbar=dict(title="weight", thickness=12),
                line=dict(width=0.5, color="#444"),
            ),
            text=hover,
            hovertemplate="%{text}<extra></extra>",
        )
    )
    rest = f"{rest_count:,} other pairs with weight share {rest_mass:,.1f} of the head's {n:,} (one per query)"
    fig.update_layout(
        title=dict(
            text=f"{plot_text(title, MAX_TITLE)}<br><span style='font-size:12px'>its {len(weights)} strongest "
            "query → key pairs</span>"
        ),
        height=560,
        margin=dict(l=10, r=10, t=90, b=40),
        hoverlabel=HOVER_FONT,
        annotations=[
            dict(text=rest, xref="paper", yref="paper", x=1, y=1, xanchor="right", yanchor="bottom", showarrow=False)
        ],
    )
    fig.update_xaxes(title_text="key position (attended to)", range=[-0.5, n - 0.5])
    fig.update_yaxes(title_text="query position (attending)", range=[n - 0.5, -0.5])
    return fig
