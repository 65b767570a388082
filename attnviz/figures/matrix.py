"""Matrix figures: one head's query x key weights, and one query token across every head.

Clicking: Streamlit returns nothing for a click on a heatmap cell, so matrices up to
:data:`CLICKABLE_CELLS` cells get an invisible click layer: one scatter trace with a point on every
cell, whose ``y`` is the query row. ``marker.maxdisplayed=1`` keeps Plotly from drawing a DOM node
per point (hover and click still see every point). The layer sits on its own numeric axes laid over
the heatmap's categorical ones (``xaxis2``/``yaxis2``: no ticks drawn, every token in ``ticktext``),
so its points are two small integers each and Plotly's hover still names the tokens (it shows an
axis value as its tick text). One trace instead of one per row, and no label drawn per row: a
128-token head's chart draws in ~0.13 s instead of ~0.5 s (Plotly's own ``newPlot``, Chromium here),
in fewer bytes. The heatmap's axes do not zoom, so the layer can never drift off its cells. Larger
matrices keep the heatmap's own hover and the query token is chosen from a list instead.

A decoder's matrix (``view.causal``) leaves the cells a query cannot see (keys after it) empty:
they show the plot's grey background, :data:`NOT_VISIBLE`, and have no hover point, so a
weight of 0 that was computed is never confused with a key that was never visible.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale

from attnviz.figures.labels import plot_text, unique_labels
from attnviz.text.views import AttentionView

#: Matrices up to this many cells get the invisible click layer (256 x 256 tokens, ~0.5 MB).
CLICKABLE_CELLS = 256 * 256
MAX_ROW_LABELS = 64
COLORSCALE = "Blues"
#: COLORSCALE as the list of stops plotly.py makes of the name when it validates a trace (light to dark).
#: A figure built unvalidated must send the list: plotly.js reads a bare "Blues" as its own scale, which
#: runs the other way (dark blue to light grey).
BLUES = get_colorscale(COLORSCALE)
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


def _click_layer(w: np.ndarray, visible: np.ndarray | None) -> dict:
    """One invisible scatter trace on the overlaid numeric axes: a point on every visible cell
    ``(r, j)`` at ``x=j, y=r``, carrying the cell's weight as ``marker.color`` (the hover reads it)."""
    n_q, n_k = w.shape
    rows, cols = np.divmod(np.arange(n_q * n_k, dtype=np.int32), n_k)
    if visible is not None:  # a decoder's keys after the query: no point, nothing to click
        keep = visible[rows, cols]
        rows, cols = rows[keep], cols[keep]
    index = np.uint8 if max(n_q, n_k) <= 256 else np.uint16  # one byte a coordinate up to 256 tokens
    return dict(
        type="scatter",
        x=cols.astype(index),
        y=rows.astype(index),
        xaxis="x2",
        yaxis="y2",
        mode="markers",
        marker=dict(opacity=0, size=10, color=w[rows, cols].astype(np.float32), maxdisplayed=1),
        showlegend=False,
        hovertemplate="query: %{y}<br>key: %{x}<br>weight: %{marker.color:.3f}<extra></extra>",
    )


def _click_axes(labels: list[str], overlaying: str, cells: int, reversed_: bool) -> dict:
    """A numeric axis laid over a categorical one, cell for cell: no line, grid or tick is drawn, but
    every cell's token is its tick text, which Plotly's hover shows for a point's coordinate."""
    return dict(
        overlaying=overlaying,
        range=[cells - 0.5, -0.5] if reversed_ else [-0.5, cells - 0.5],
        fixedrange=True,
        showticklabels=False,
        showgrid=False,
        zeroline=False,
        showline=False,
        ticks="",
        tickmode="array",
        tickvals=list(range(cells)),
        ticktext=labels,
    )


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
    shown = w if visible is None else np.where(visible, w, np.nan)
    keys = unique_labels(view.key_tokens)
    queries = unique_labels(view.query_tokens)
    clickable = is_clickable(view)
    heatmap = dict(
        type="heatmap",
        z=shown,
        x=keys,
        y=queries,
        zmin=0.0,
        zmax=_zmax(w, scale),
        colorscale=BLUES,
        colorbar=dict(title=dict(text="weight"), thickness=12),
    )
    if clickable:
        heatmap["hoverinfo"] = "skip"  # the click layer's points carry the hover
    else:
        heatmap["hovertemplate"] = "query: %{y}<br>key: %{x}<br>weight: %{z:.3f}<extra></extra>"
    # Plain dicts of known-good keys, not validated: validating the traces of a 128-token head took
    # ~0.25 s of a head change (numpy arrays passed through narwhals).
    data = [heatmap, _click_layer(w, visible)] if clickable else [heatmap]
    # A label on every row made the 256-token view take 2-3 s to draw; the hover names every query
    # anyway, so label at most MAX_ROW_LABELS rows. Tick values are the rows' own labels: a row number
    # would be taken for a token spelled like it (the token "1" would pull tick 1 onto its own row).
    step = -(-n_q // MAX_ROW_LABELS)
    layout = dict(
        title=dict(
            text=f"Layer {layer} · head {head} <span style='font-size:12px'>({plot_text(view.description, 60)})</span>"
        ),
        height=_height(n_q),
        margin=dict(l=10, r=10, t=50, b=20),
        hoverlabel=HOVER_FONT,
        clickmode="event+select",
        dragmode=False,
        xaxis=dict(
            type="category",
            side="bottom",
            tickangle=-60,
            title=dict(text="key (attended to)"),
            range=[-0.5, n_k - 0.5],
            fixedrange=clickable,
        ),
        yaxis=dict(
            type="category",
            title=dict(text="query (attending)"),
            range=[n_q - 0.5, -0.5],  # first token at the top
            tickmode="array",
            tickvals=queries[::step],
            ticktext=queries[::step],
            fixedrange=clickable,
        ),
    )
    if clickable:
        layout["xaxis2"] = _click_axes(keys, "x", n_k, reversed_=False)
        layout["yaxis2"] = _click_axes(queries, "y", n_q, reversed_=True)
    if visible is not None:
        layout["plot_bgcolor"] = NOT_VISIBLE
        layout["xaxis"]["showgrid"] = layout["yaxis"]["showgrid"] = False
    if selected_query is not None and 0 <= selected_query < n_q:
        # In the plot's own fractions (the rows fill it, first at the top), not in row numbers: on a
        # categorical axis a number is taken for a token spelled like it.
        layout["shapes"] = [
            dict(
                type="rect",
                xref="paper",
                x0=0,
                x1=1,
                yref="paper",
                y0=1 - (selected_query + 1) / n_q,
                y1=1 - selected_query / n_q,
                line=dict(color="#d62728", width=2),
            )
        ]
    return go.Figure(data=data, layout=layout, _validate=False)


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
