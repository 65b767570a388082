"""The head view: tokens in two columns joined by lines whose opacity is the weight.

In the spirit of BertViz's head view, but drawn by Plotly from a few arrays. A row of
weights sums to 1, so at most ``1 / threshold`` lines leave any token: the figure stays
small however long the sentence. Plotly sets opacity per trace, not per segment, so the
lines of each head are binned into :data:`OPACITY_LEVELS` traces.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from attnviz.figures.labels import plot_text
from attnviz.figures.matrix import HOVER_FONT
from attnviz.text.views import AttentionView

OPACITY_LEVELS = 5
HEAD_COLORS = qualitative.Dark24


def head_color(head: int) -> str:
    return HEAD_COLORS[head % len(HEAD_COLORS)]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def segments(
    weights: np.ndarray, threshold: float, query: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines to draw for one head ``(q, k)``: (query rows, key rows, weights) at or above threshold."""
    if threshold <= 0:
        raise ValueError("threshold must be above 0: at 0 every one of the n² lines would be drawn")
    if query is None:
        rows, cols = np.nonzero(weights >= threshold)
    else:
        cols = np.flatnonzero(weights[query] >= threshold)
        rows = np.full_like(cols, query)
    return rows, cols, weights[rows, cols]


def head_lines(
    view: AttentionView,
    layer: int,
    heads: list[int],
    *,
    threshold: float = 0.05,
    query: int | None = None,
) -> go.Figure:
    """Lines from query tokens (left) to key tokens (right) for the chosen heads of ``layer``.

    Args:
        heads: which heads to draw, each in its own colour.
        threshold: weights below it are not drawn.
        query: draw only the lines leaving this query row (None: all rows).
    """
    n_q, n_k = len(view.query_tokens), len(view.key_tokens)
    fig = go.Figure()
    # Per head, bucket lines by weight so each bucket is one trace with one opacity.
    edges = np.linspace(threshold, 1.0, OPACITY_LEVELS + 1)
    for h in heads:
        rows, cols, w = segments(view.weights[layer, h], threshold, query)
        bucket = np.clip(np.searchsorted(edges, w, side="right") - 1, 0, OPACITY_LEVELS - 1)
        for b in range(OPACITY_LEVELS):
            pick = bucket == b
            if not pick.any():
                continue
            m = int(pick.sum())
            # Each segment is (0, row) -> (1, col) followed by a NaN gap.
            x = np.tile(np.array([0.0, 1.0, np.nan], dtype=np.float32), m)
            y = np.empty(3 * m, dtype=np.float32)
            y[0::3], y[1::3], y[2::3] = rows[pick], cols[pick], np.nan
            mid = float(w[pick].mean())  # the bucket's typical weight sets its opacity and width
            alpha = 0.12 + 0.88 * mid
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    line=dict(color=_rgba(head_color(h), alpha), width=0.8 + 2.5 * mid),
                    hoverinfo="skip",
                    name=f"head {h}",
                    legendgroup=f"head {h}",
                    showlegend=False,
                )
            )
        # One legend entry per head, drawn as a marker outside the plot.
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line=dict(color=head_color(h), width=3),
                name=f"head {h}",
                legendgroup=f"head {h}",
            )
        )
    selected = np.zeros(n_q, dtype=bool)
    if query is not None and 0 <= query < n_q:
        selected[query] = True
    fig.add_trace(
        go.Scatter(
            x=np.zeros(n_q, dtype=np.float32),
            y=np.arange(n_q, dtype=np.int32),
            mode="text",
            text=[plot_text(t) for t in view.query_tokens],
            textposition="middle left",
            textfont=dict(color=np.where(selected, "#d62728", "#222").tolist()),
            cliponaxis=False,  # the first and last tokens' labels are never cut at the plot's edge
            hovertemplate="query: %{text}<extra></extra>",
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=np.ones(n_k, dtype=np.float32),
            y=np.arange(n_k, dtype=np.int32),
            mode="text",
            text=[plot_text(t) for t in view.key_tokens],
            textposition="middle right",
            cliponaxis=False,
            hovertemplate="key: %{text}<extra></extra>",
            showlegend=False,
        )
    )
    n = max(n_q, n_k)
    fig.update_layout(
        title=f"Layer {layer}: lines from queries (left) to keys (right), weight ≥ {threshold:g}",
        height=int(max(320, min(2400, 20 * n + 120))),
        margin=dict(l=10, r=10, t=50, b=40),
        hoverlabel=HOVER_FONT,
        legend=dict(orientation="h", y=-0.01, x=0, yanchor="top"),
        plot_bgcolor="white",
        dragmode=False,
    )
    fig.update_xaxes(visible=False, range=[-0.55, 1.55])
    fig.update_yaxes(visible=False, range=[n - 0.5, -0.5])
    return fig
