"""Matrix figures: one head's query x key weights, and one query token across every head.

Clicking: Streamlit returns nothing for a click on a heatmap cell, so matrices up to
:data:`CLICKABLE_CELLS` cells get an invisible scatter layer, one trace per query row, whose
points sit on the cells and carry the hover text. A click selects a point whose ``y`` is the
query row. ``marker.maxdisplayed=1`` keeps Plotly from drawing a DOM node per cell (hover and
click still see every point): 128 x 128 tokens draw in ~0.1 s instead of ~0.6 s. The layer
costs ~8 bytes a cell, so larger matrices keep the heatmap's own hover and the query token is
chosen from a list instead.

A decoder's matrix (``view.causal``) leaves the cells a query cannot see (keys after it) empty:
they show the plot's grey background, :data:`NOT_VISIBLE`, and have no hover point, so a
weight of 0 that was computed is never confused with a key that was never visible.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from attnviz.figures.labels import plot_text, unique_labels
from attnviz.text.views import AttentionView

#: Matrices up to this many cells get the invisible click layer (256 x 256 tokens, ~0.5 MB).
CLICKABLE_CELLS = 256 * 256
MAX_ROW_LABELS = 64
COLORSCALE = "Blues"
HOVER_FONT = dict(font=dict(family="monospace"))
#: Background of cells a decoder's query cannot see (empty heatmap cells show it).
NOT_VISIBLE = "#d9d9d9"


def _height(rows: int) -> int:
    return int(max(420, min(900, 28 * rows + 170)))


def _zmax(weights: np.ndarray, scale: str) -> float:
    """Top of the colour scale: 1 ("fixed 0–1") or the largest weight shown ("per-head max")."""
    if scale == "fixed":
        return 1.0
    top = float(weights.max()) if weights.size else 1.0
    return top if top > 0 else 1.0


def is_clickable(view: AttentionView) -> bool:
    return len(view.query_tokens) * len(view.key_tokens) <= CLICKABLE_CELLS


def _click_layer(w: np.ndarray, n_seen: np.ndarray, keys: list[str], queries: list[str]) -> list[dict]:
    """One invisible scatter trace per query row ``r``: point ``j`` sits on cell ``(r, j)`` and carries
    its weight as ``marker.color`` (the hover reads it). ``x0``/``dx`` place the points across; ``y``, the
    row, is one byte a point up to row 255 (Plotly needs one coordinate array to count a trace's points:
    with ``y0``/``dy`` too, a trace has none)."""
    return [
        dict(
            type="scatter",
            x0=keys[0],  # x0/dx on a categorical axis: point j sits on key column j
            dx=1,
            y=np.full(n_seen[r], r, dtype=np.uint8 if r < 256 else np.uint16),
            mode="markers",
            marker=dict(opacity=0, size=10, color=w[r, : n_seen[r]], maxdisplayed=1),
            showlegend=False,
            hovertemplate=f"query: {queries[r].replace('%', '&#37;')}<br>key: %{{x}}"
            "<br>weight: %{marker.color:.3f}<extra></extra>",
        )
        for r in range(len(queries))
        if n_seen[r] > 0
    ]


def head_matrix(
    view: AttentionView,
    layer: int,
    head: int,
    *,
    scale: str = "fixed",
    selected_query: int | None = None,
) -> go.Figure:
    """Heatmap of ``view.weights[layer, head]``: query tokens down, key tokens across.

    Args:
        scale: ``"fixed"`` colours 0..1; ``"head max"`` colours 0..largest weight of this head.
        selected_query: row to outline (the token chosen for "attention from one token").
    """
    w = view.weights[layer, head]  # (q, k)
    n_q, n_k = w.shape
    visible = view.visible  # (q, k) bool, or None: all visible
    # Per row, the keys it can see are a prefix of the columns (positions increase left to right).
    n_seen = np.full(n_q, n_k) if visible is None else visible.sum(axis=1)
    shown = w if visible is None else np.where(visible, w, np.nan)
    keys = unique_labels(view.key_tokens)
    queries = unique_labels(view.query_tokens)
    clickable = is_clickable(view)
    zmax = _zmax(w, scale)
    # Rows are numeric when the click layer is present (its points sit on row numbers) and
    # categorical otherwise, so that the heatmap's own hover can name the query token.
    y = np.arange(n_q, dtype=np.int32) if clickable else queries
    heatmap = go.Heatmap(
        z=shown,
        x=keys,
        y=y,
        zmin=0.0,
        zmax=zmax,
        colorscale=COLORSCALE,
        colorbar=dict(title="weight", thickness=12),
        hoverinfo="skip" if clickable else None,
        hovertemplate=None if clickable else "query: %{y}<br>key: %{x}<br>weight: %{z:.3f}<extra></extra>",
    )
    click = _click_layer(w, n_seen, keys, queries) if clickable else []
    # The click layer's traces are plain dicts of known-good keys, not validated: validating 128
    # go.Scatter traces took ~0.25 s of a 128-token head change (numpy arrays passed through narwhals).
    fig = go.Figure(data=[heatmap, *click], _validate=False)
    if selected_query is not None and 0 <= selected_query < n_q:
        # Shapes take row numbers on categorical axes too.
        fig.add_shape(
            type="rect",
            xref="paper",
            x0=0,
            x1=1,
            yref="y",
            y0=(selected_query - 0.5),
            y1=(selected_query + 0.5),
            line=dict(color="#d62728", width=2),
        )
    fig.update_layout(
        title=dict(
            text=f"Layer {layer} · head {head} <span style='font-size:12px'>({plot_text(view.description, 60)})</span>"
        ),
        height=_height(n_q),
        margin=dict(l=10, r=10, t=50, b=20),
        hoverlabel=HOVER_FONT,
        clickmode="event+select",
        dragmode=False,
    )
    if visible is not None:
        fig.update_layout(plot_bgcolor=NOT_VISIBLE)
        fig.update_xaxes(showgrid=False)
        fig.update_yaxes(showgrid=False)
    fig.update_xaxes(
        type="category", side="bottom", tickangle=-60, title_text="key (attended to)", range=[-0.5, n_k - 0.5]
    )
    yaxis = dict(autorange="reversed", title_text="query (attending)")
    if clickable:
        # A label on every row made the 256-token view take 2-3 s to draw; the hover names
        # every query anyway, so label at most MAX_ROW_LABELS rows.
        step = -(-n_q // MAX_ROW_LABELS)
        yaxis.update(
            tickmode="array",
            tickvals=list(range(0, n_q, step)),
            ticktext=queries[::step],
            range=[n_q - 0.5, -0.5],
        )
        yaxis.pop("autorange")
    else:
        yaxis.update(type="category")
    fig.update_yaxes(**yaxis)
    return fig


def token_heads(view: AttentionView, query: int, *, scale: str = "fixed") -> go.Figure:
    """Attention from one query token in every head of every layer: (layer, head) rows x keys."""
    n_layers, n_heads = view.n_layers, view.n_heads
    rows = view.weights[:, :, query, :].reshape(n_layers * n_heads, -1)  # (L*H, k)
    visible = view.visible
    if visible is not None:  # keys after the query token: not visible (grey), not weight 0
        rows = np.where(visible[query][None, :], rows, np.nan)
    names = [f"L{l} H{h}" for l in range(n_layers) for h in range(n_heads)]
    keys = unique_labels(view.key_tokens)
    fig = go.Figure(
        go.Heatmap(
            z=rows,
            x=keys,
            y=names,
            zmin=0.0,
            zmax=_zmax(np.nan_to_num(rows), scale),
            colorscale=COLORSCALE,
            colorbar=dict(title="weight", thickness=12),
            hovertemplate="%{y} → key %{x}<br>weight: %{z:.3f}<extra></extra>",
        )
    )
    # Thin white lines between layers make the 12-row bands easy to count. One layout update, not
    # add_hline per layer: 29 add_hline calls took 0.75-0.9 s for a 30-layer decoder.
    separators = [
        dict(type="line", xref="paper", x0=0, x1=1, yref="y", y0=y, y1=y, line=dict(color="white", width=2))
        for y in (l * n_heads - 0.5 for l in range(1, n_layers))
    ]
    fig.update_layout(
        title=f"From “{plot_text(view.query_tokens[query], 40)}” in every layer and head",
        height=int(max(360, min(1100, 11 * n_layers * n_heads + 160))),
        margin=dict(l=10, r=10, t=50, b=20),
        hoverlabel=HOVER_FONT,
        plot_bgcolor=NOT_VISIBLE if visible is not None else None,
        shapes=separators,
    )
    fig.update_xaxes(type="category", side="bottom", tickangle=-60)
    fig.update_yaxes(type="category", autorange="reversed")
    return fig
