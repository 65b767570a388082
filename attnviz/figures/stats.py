"""Per-head statistics as figures: a layer x head heatmap per statistic, the behaviour labels,
and a 2-D map of heads by the Jensen–Shannon divergence of their attention.

Each takes the table of :func:`attnviz.head_stats` (or a corpus run's ``.table``); a 12 x 12
model's heatmap is ~10 kB of JSON, so these need no payload tricks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from attnviz.figures.matrix import HOVER_FONT
from attnviz.maths.head_statistics import columns_of, labels_of

#: One colour per behaviour label (colour-blind-safe Okabe–Ito, grey for "mixed").
LABEL_COLORS = {
    "previous token": "#0072B2",
    "next token": "#56B4E9",
    "[CLS]": "#D55E00",
    "[SEP]": "#E69F00",
    "punctuation": "#CC79A7",
    "self": "#009E73",
    "broad": "#F0E442",
    "mixed": "#BBBBBB",
    # a decoder's own labels (the shared ones keep their colours)
    "induction": "#882255",
    "duplicate token": "#44AA99",
    "first-token sink": "#D55E00",
    "special tokens": "#E69F00",
    "local": "#117733",
}
SHORT = {
    "previous token": "prev",
    "next token": "next",
    "punctuation": "punct",
    "broad": "broad",
    "mixed": "·",
    "induction": "ind",
    "duplicate token": "dup",
    "first-token sink": "sink",
    "special tokens": "spec",
}
#: Statistics that are shares of attention (0..1); the others have their own units.
MASSES = {
    *("cls_mass", "sep_mass", "punct_mass", "self_mass", "prev_mass", "next_mass"),
    *("first_mass", "special_mass", "duplicate_mass", "induction_mass", "local_mass"),
}
UNITS = {"entropy": "nats", "uniform_entropy": "nats", "mean_distance": "tokens"}


def _grid(table: pd.DataFrame, column: str) -> tuple[np.ndarray, int, int]:
    n_layers, n_heads = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
    grid = np.full((n_layers, n_heads), np.nan)
    grid[table["layer"].to_numpy(), table["head"].to_numpy()] = table[column].to_numpy()
    return grid, n_layers, n_heads


def _labels_grid(table: pd.DataFrame, n_layers: int, n_heads: int) -> np.ndarray:
    labels = np.full((n_layers, n_heads), "", dtype=object)
    labels[table["layer"].to_numpy(), table["head"].to_numpy()] = table["label"].to_numpy()
    return labels


def _layout(fig: go.Figure, title: str, n_layers: int, n_heads: int) -> go.Figure:
    fig.update_layout(
        title=title,
        height=int(max(260, min(700, 34 * n_layers + 130))),
        margin=dict(l=10, r=10, t=50, b=40),
        hoverlabel=HOVER_FONT,
        dragmode=False,
    )
    fig.update_xaxes(title_text="head", tickmode="array", tickvals=list(range(n_heads)), side="bottom")
    fig.update_yaxes(title_text="layer", tickmode="array", tickvals=list(range(n_layers)), autorange="reversed")
    return fig


def stat_heatmap(table: pd.DataFrame, column: str) -> go.Figure:
    """Layer (rows) x head (columns) heatmap of one statistic, each cell's value and label on hover."""
    columns = columns_of(table)
    if column not in columns:
        raise ValueError(f"column must be one of {list(columns)}, not {column!r}")
    grid, n_layers, n_heads = _grid(table, column)
    labels = _labels_grid(table, n_layers, n_heads)
    unit = UNITS.get(column, "of attention")
    zmax = 1.0 if column in MASSES else None
    if column in ("entropy", "uniform_entropy"):  # one scale for both, so they can be compared
        zmax = float(np.nanmax(_grid(table, "uniform_entropy")[0]))
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            x=list(range(n_heads)),
            y=list(range(n_layers)),
            zmin=0.0,
            zmax=zmax,
            colorscale="Viridis",
            customdata=labels,
            colorbar=dict(title=unit, thickness=12),
            texttemplate="%{z:.2f}" if n_layers * n_heads <= 144 else None,
            textfont=dict(size=cell_text_size(n_heads)),
            hovertemplate=f"layer %{{y}} · head %{{x}}<br>{column}: %{{z:.3f}} {unit}"
            "<br>label: %{customdata}<extra></extra>",
        )
    )
    return _layout(fig, f"{column}: {columns[column]}", n_layers, n_heads)


def cell_text_size(n_heads: int) -> int:
    """The font size of the words and numbers written in the cells: 10 px up to 8 heads, else 8 px. Two maps
    side by side at 1280 x 720 leave a 12-head cell about 20 px wide, where "2.51" or "broad" at 10 px ran
    into the next cell's."""
    return 10 if n_heads <= 8 else 8


def label_map(table: pd.DataFrame) -> go.Figure:
    """Layer x head grid coloured by behaviour label, the label written in each cell."""
    n_layers, n_heads = int(table["layer"].max()) + 1, int(table["head"].max()) + 1
    labels = _labels_grid(table, n_layers, n_heads)
    names = labels_of(table)
    index = {label: i for i, label in enumerate(names)}
    z = np.vectorize(index.get)(labels).astype(float)  # (L, H) label numbers
    k = len(names)
    # A stepped colour scale: label i fills the band [i/k, (i+1)/k] of the 0..k-1 range.
    scale = []
    for i, label in enumerate(names):
        scale += [[i / k, LABEL_COLORS[label]], [(i + 1) / k, LABEL_COLORS[label]]]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(n_heads)),
            y=list(range(n_layers)),
            zmin=-0.5,
            zmax=k - 0.5,
            colorscale=scale,
            showscale=False,
            text=np.vectorize(lambda s: SHORT.get(s, s))(labels),
            texttemplate="%{text}",
            textfont=dict(size=cell_text_size(n_heads)),
            customdata=labels,
            hovertemplate="layer %{y} · head %{x}<br>%{customdata}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    # A legend of the labels present, as invisible points (heatmaps have no legend entries).
    for label in names:
        if (labels == label).any():
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="markers",
                    marker=dict(size=12, color=LABEL_COLORS[label], symbol="square"),
                    name=f"{label} ({int((labels == label).sum())})",
                )
            )
    fig = _layout(fig, "What each head does (label rules: see the table's help)", n_layers, n_heads)
    # The legend goes under the "head" axis title: at the right it would squeeze the grid.
    fig.update_layout(
        legend=dict(orientation="h", x=0, y=-0.2, yanchor="top", font=dict(size=11)),
        plot_bgcolor="white",
        height=fig.layout.height + 70,
        margin=dict(b=110),
    )
    return fig


def head_map_figure(coords: np.ndarray, table: pd.DataFrame) -> go.Figure:
    """Heads as points ``coords`` ``[m, 2]`` (from :func:`attnviz.maths.divergence.head_map`), coloured by label."""
    fig = go.Figure()
    names = [f"L{l} H{h}" for l, h in zip(table["layer"], table["head"], strict=True)]
    for label in labels_of(table):
        pick = (table["label"] == label).to_numpy()
        if not pick.any():
            continue
        fig.add_trace(
            go.Scatter(
                x=coords[pick, 0],
                y=coords[pick, 1],
                # Names on hover only: 72 labels in a few tight clusters would be unreadable.
                mode="markers",
                text=[n for n, p in zip(names, pick, strict=True) if p],
                marker=dict(size=11, color=LABEL_COLORS[label], line=dict(width=1, color="#333")),
                name=label,
                hovertemplate="%{text}<br>" + label + "<extra></extra>",
            )
        )
    fig.update_layout(
        title="Heads placed by how alike they attend (Jensen–Shannon divergence, MDS)",
        height=560,
        margin=dict(l=10, r=10, t=50, b=10),
        hoverlabel=HOVER_FONT,
        plot_bgcolor="white",
        legend=dict(title="label"),
    )
    # The axes of an MDS map carry no meaning; only distances do.
    fig.update_xaxes(showticklabels=False, zeroline=False, showgrid=False, title_text="")
    fig.update_yaxes(showticklabels=False, zeroline=False, showgrid=False, scaleanchor="x", title_text="")
    return fig


def clickable_cells(fig: go.Figure) -> go.Figure:
    """Lay an invisible point on every cell of ``fig``'s layer x head heatmap, so that a click on a cell
    reaches Streamlit (a click on a ``go.Heatmap`` cell returns an empty selection). The points carry the
    heatmap's hover, point ``layer * n_heads + head`` sits on its cell (x: head, y: layer)."""
    heat = next(t for t in fig.data if t.type == "heatmap")
    z = np.asarray(heat.z, dtype=float)  # (L, H)
    n_layers, n_heads = z.shape
    labels = np.asarray(heat.customdata, dtype=object).reshape(n_layers, n_heads)
    layers, heads = np.divmod(np.arange(n_layers * n_heads), n_heads)
    template = (heat.hovertemplate or "layer %{y} · head %{x}<extra></extra>").replace("%{z", "%{customdata[0]")
    template = template.replace("%{customdata}", "%{customdata[1]}").replace(
        "<extra>", "<br>click: open it on the text page<extra>"
    )
    heat.update(hoverinfo="skip", hovertemplate=None)
    fig.add_trace(
        go.Scatter(
            x=heads,
            y=layers,
            mode="markers",
            marker=dict(opacity=0, size=18),
            customdata=np.stack([z.ravel(), labels.ravel()], axis=1),
            hovertemplate=template,
            showlegend=False,
        )
    )
    return fig
