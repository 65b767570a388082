"""Attention against attribution: per-token bars of the three scores of a
:class:`~attnviz.text.comparison.TokenComparison`, one row each, tokens aligned (an encoder's
attention from [CLS], a decoder's from its last token)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from attnviz.figures.labels import unique_labels
from attnviz.figures.matrix import HOVER_FONT
from attnviz.text.comparison import IG, TokenComparison

POSITIVE, NEGATIVE, ATTENTION = "#D55E00", "#0072B2", "#4C78A8"


def attention_vs_attribution(cmp: TokenComparison) -> go.Figure:
    """Three bar rows over the same m tokens: the signed attribution, rollout, last-layer attention
    (of [CLS], or of a decoder's last token), each ``[m]`` from ``cmp``."""
    tokens = unique_labels(cmp.tokens)
    rho = {
        (r["first"], r["second"]): r["spearman"] for r in cmp.correlations.to_dict("records")
    }  # (first, second) -> rho
    attribution, flow, last = cmp.methods
    short = "IG" if attribution == IG else "attribution"
    titles = [
        # The bars stay in token order, to line up with the rows below; ρ ranks the attribution by its size.
        f"{attribution} per token: <span style='color:{POSITIVE}'>orange raises</span> the output, "
        f"<span style='color:{NEGATIVE}'>blue lowers</span> it (ρ ranks by size)",
        f"{flow} from {cmp.query} · ρ with {short} = {rho[(attribution, flow)]:+.2f}",
        f"{last}, mean of heads · ρ with {short} = {rho[(attribution, last)]:+.2f}",
    ]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.09, subplot_titles=titles)
    signed = cmp.attribution
    fig.add_trace(
        go.Bar(
            x=tokens,
            y=signed,
            marker_color=np.where(signed >= 0, POSITIVE, NEGATIVE).tolist(),
            hovertemplate="%{x}<br>attribution: %{y:+.4f}<extra></extra>",
            name=attribution,
        ),
        row=1,
        col=1,
    )
    for row, method in ((2, flow), (3, last)):
        fig.add_trace(
            go.Bar(
                x=tokens,
                y=cmp.scores[method],
                marker_color=ATTENTION,
                hovertemplate="%{x}<br>" + method + ": %{y:.4f}<extra></extra>",
                name=method,
            ),
            row=row,
            col=1,
        )
    fig.update_layout(
        height=640,
        showlegend=False,
        margin=dict(l=10, r=10, t=40, b=10),
        hoverlabel=HOVER_FONT,
        bargap=0.25,
        dragmode=False,
    )
    fig.update_xaxes(type="category", tickangle=-50)
    fig.update_yaxes(title_text=short, row=1, col=1, zeroline=True, zerolinecolor="#999")
    fig.update_yaxes(title_text="share", row=2, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="weight", row=3, col=1, rangemode="tozero")
    return fig
