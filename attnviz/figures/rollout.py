"""The rollout figure: the ``[t, t]`` rollout matrix of :func:`attnviz.text.views.rollout_view`,
drawn like one head's matrix."""

from __future__ import annotations

import plotly.graph_objects as go

from attnviz.figures.labels import plot_text
from attnviz.figures.matrix import head_matrix
from attnviz.maths.colour_scale import colour_top
from attnviz.text.views import AttentionView


def rollout_scale(view: AttentionView) -> tuple[float, str]:
    """The colour scale's top and its words (:func:`attnviz.maths.colour_scale.colour_top`), over the
    cells a query can see: a rollout row spreads its share over every token, so over hundreds of
    tokens most shares are ~1/n and 0-1 (or 0 to the few largest) would draw a blank matrix."""
    w = view.weights[0, 0]  # (q, k)
    visible = view.visible
    return colour_top(w if visible is None else w[visible])


def rollout_matrix(view: AttentionView, *, scale: str = "head max", selected_query: int | None = None) -> go.Figure:
    """Heatmap of a :func:`~attnviz.text.views.rollout_view`.

    Row i: how much token i's last-layer state draws on each token. Whatever ``scale`` (kept for
    the view table's signature), the colours run over the rollout's own shares (:func:`rollout_scale`),
    said under the title.
    """
    fig = head_matrix(view, 0, 0, scale="head max", selected_query=selected_query)
    top, words = rollout_scale(view)
    fig.update_layout(
        title=dict(
            text=f"Attention rollout <span style='font-size:12px'>({plot_text(view.description, 90)})</span>"
            f"<br><sup>colours {plot_text(words, 140)}</sup>"
        )
    )
    fig.update_traces(selector=dict(type="heatmap"), colorbar=dict(title="share"), zmin=0.0, zmax=top)
    return fig
