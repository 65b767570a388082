"""The rollout figure: the ``[t, t]`` rollout matrix of :func:`attnviz.text.views.rollout_view`,
drawn like one head's matrix."""

from __future__ import annotations

import plotly.graph_objects as go

from attnviz.figures.labels import plot_text
from attnviz.figures.matrix import head_matrix
from attnviz.text.views import AttentionView


def rollout_matrix(view: AttentionView, *, scale: str = "head max", selected_query: int | None = None) -> go.Figure:
    """Heatmap of a :func:`~attnviz.text.views.rollout_view`.

    Row i: how much token i's last-layer state draws on each token.
    """
    fig = head_matrix(view, 0, 0, scale=scale, selected_query=selected_query)
    fig.update_layout(
        title=dict(text=f"Attention rollout <span style='font-size:12px'>({plot_text(view.description, 90)})</span>")
    )
    fig.update_traces(selector=dict(type="heatmap"), colorbar=dict(title="share"))
    return fig
