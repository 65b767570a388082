"""The rollout view: the ``[t, t]`` rollout matrix drawn like one head's matrix.

Rollout is computed on every token (hiding tokens first would change the maths); the page's
display options (words, pair block, hide [CLS]/[SEP]) are then applied to the result by
:func:`rollout_view`, exactly as they are to a head.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import plotly.graph_objects as go

from attnviz.figures.labels import plot_text
from attnviz.figures.matrix import head_matrix
from attnviz.maths.attention_rollout import rollout
from attnviz.text.extraction import TextAttention
from attnviz.text.views import AttentionView, make_view


def rollout_view(
    ta: TextAttention,
    *,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    words: bool = False,
    block: str = "All",
    hide_special: bool = False,
) -> AttentionView:
    """An :class:`AttentionView` with one layer and one head, ``weights`` ``[1, 1, q, k]``: the rollout."""
    matrix = rollout(ta.weights, head_fusion=head_fusion, discard_ratio=discard_ratio)  # (n, n)
    as_head = dataclasses.replace(ta, weights=matrix[None, None].astype(np.float32))  # (1, 1, n, n)
    view = make_view(as_head, words=words, block=block, hide_special=hide_special)
    what = f"{head_fusion} over heads" + (f", lowest {discard_ratio:.0%} discarded" if discard_ratio else "")
    return dataclasses.replace(view, description=f"{what}; {view.description}")


def rollout_matrix(view: AttentionView, *, scale: str = "head max", selected_query: int | None = None) -> go.Figure:
    """Heatmap of a :func:`rollout_view`: row i = how much token i's last-layer state draws on each token."""
    fig = head_matrix(view, 0, 0, scale=scale, selected_query=selected_query)
    fig.update_layout(
        title=dict(text=f"Attention rollout <span style='font-size:12px'>({plot_text(view.description, 90)})</span>")
    )
    fig.update_traces(selector=dict(type="heatmap"), colorbar=dict(title="share"))
    return fig
