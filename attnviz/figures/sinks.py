"""The attention-sink map: per layer and head, the share of attention resting on the first token
(and on the other special tokens, when the input has any), from :func:`attnviz.text.sinks.attention_sinks`."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from attnviz.figures.labels import plot_text
from attnviz.figures.matrix import HOVER_FONT
from attnviz.text.sinks import AttentionSinks


def sink_map(sinks: AttentionSinks) -> go.Figure:
    """Layer (rows) x head (columns) heatmap of the first-token mass, beside the special-token mass."""
    panels = [(sinks.first, f"on the first token, “{plot_text(sinks.first_token, 20)}”")]
    if sinks.special is not None:
        panels.append((sinks.special, "on the other special tokens"))
    fig = make_subplots(
        rows=1, cols=len(panels), subplot_titles=[title for _, title in panels], horizontal_spacing=0.08
    )
    n_layers, n_heads = sinks.first.shape
    for c, (grid, title) in enumerate(panels, start=1):
        fig.add_trace(
            go.Heatmap(
                z=np.round(grid, 4),
                x=list(range(n_heads)),
                y=list(range(n_layers)),
                zmin=0.0,
                zmax=1.0,
                colorscale="Viridis",
                showscale=c == 1,
                colorbar=dict(title="share", thickness=12),
                texttemplate="%{z:.2f}" if n_layers * n_heads <= 300 else None,
                textfont=dict(size=9),
                hovertemplate=f"layer %{{y}} · head %{{x}}<br>{title}: %{{z:.3f}}<extra></extra>",
            ),
            row=1,
            col=c,
        )
    fig.update_layout(
        title="Attention sinks: mean share of each row's attention",
        height=int(max(300, min(1000, 26 * n_layers + 140))),
        margin=dict(l=10, r=10, t=70, b=40),
        hoverlabel=HOVER_FONT,
        dragmode=False,
    )
    fig.update_xaxes(title_text="head", tickmode="array", tickvals=list(range(n_heads)))
    fig.update_yaxes(title_text="layer", autorange="reversed", tickmode="array", tickvals=list(range(0, n_layers, 2)))
    return fig
