"""Deletion and insertion curves of an explanation scoreboard (RISE, Petsiuk et al. 2018).

One panel per curve, side by side: the fraction of the input's units removed (deletion) or put
back (insertion) in each method's order of importance, against the target's score relative to
the full input's. Deletion should fall fast (a low area is good); insertion should rise fast (a
high area is good). The random orders are drawn as their mean with a shaded band of ± one
standard deviation, so a method is seen to beat random where its line leaves the band.

The input is an ``ExplanationScores`` (``attnviz.score_explanations``): ``fractions`` ``[s+1]``,
``deletion`` and ``insertion`` (method → ``[s+1]``), ``random_band`` (curve → (mean ``[s+1]``,
sd ``[s+1]``)), ``table`` (one row per method, best deletion first), ``target``.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from attnviz.figures.labels import MAX_TITLE, plot_text
from attnviz.figures.matrix import HOVER_FONT

#: Deletion, then insertion: (curve name, panel title, x-axis verb).
CURVES = (
    ("deletion", "Deletion: most important removed first (lower area is better)", "removed"),
    ("insertion", "Insertion: most important put back first (higher area is better)", "inserted"),
)
#: Okabe-Ito (colour-blind safe), then Tol's muted colours for long method lists; hex, so that the
#: PNG export (matplotlib) reads them too.
COLORS = (
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
    "#882255", "#999933", "#332288", "#AA4499", "#44AA99",
)  # fmt: skip
RANDOM_COLOR = "#7f7f7f"
MAX_METHOD = 40


def random_method(scores) -> str | None:
    """The random baseline's name: the table's one row with a standard deviation."""
    rows = scores.table[scores.table["deletion_sd"].notna()]
    return str(rows["method"].iloc[0]) if len(rows) else None


def method_order(scores) -> list[str]:
    """Methods with a curve, in the table's order (best deletion AUC first), the random one left out."""
    rand = random_method(scores)
    listed = [str(m) for m in scores.table["method"]]
    order = [m for m in listed if m in scores.deletion and m != rand]
    return order + [m for m in scores.deletion if m not in order and m != rand]


def method_color(scores, method: str) -> str:
    """A method's colour: by its place among the scored methods, so that it keeps its colour from one
    input to the next whatever the table's order."""
    methods = [m for m in scores.deletion if m != random_method(scores)]
    return COLORS[methods.index(method) % len(COLORS)]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def _add_band(fig: go.Figure, band, x: np.ndarray, name: str, verb: str, col: int) -> None:
    """The random orders' mean (dashed) and mean ± sd (shaded) in panel ``col``.

    ``band``: (mean, sd), ``[s+1]`` each."""
    mean, sd = (np.asarray(a, dtype=float) for a in band)
    label = plot_text(f"{name} (mean ± sd)", MAX_METHOD)
    fig.add_trace(
        go.Scatter(
            x=np.concatenate([x, x[::-1]]),
            y=np.concatenate([mean + sd, (mean - sd)[::-1]]),
            fill="toself",
            fillcolor=_rgba(RANDOM_COLOR, 0.22),
            line=dict(width=0),
            hoverinfo="skip",
            name=label,
            legendgroup="random",
            showlegend=False,
            meta="random band",
        ),
        row=1,
        col=col,
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=mean,
            mode="lines",
            line=dict(color=RANDOM_COLOR, dash="dash", width=1.5),
            name=label,
            legendgroup="random",
            showlegend=col == 1,
            hovertemplate=f"{label}<br>{verb} %{{x:.0%}}: %{{y:.3f}} ± %{{customdata:.3f}}<extra></extra>",
            customdata=sd,
            meta="random mean",
        ),
        row=1,
        col=col,
    )


def removal_curves(scores, height: int = 460, title: bool = True) -> go.Figure:
    """Deletion (left) and insertion (right) curves, one line per method, the random band shaded.
    ``title``: the target above the panels (the app says it in text instead).

    x: ``scores.fractions`` ``[s+1]`` (0 to 1); y: each curve ``[s+1]`` as drawn in ``scores``
    (relative to the full input's score); the band: ``mean ± sd`` of ``scores.random_band``.
    """
    x = np.asarray(scores.fractions, dtype=float)  # (s+1,)
    fig = make_subplots(
        rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04, subplot_titles=[c[1] for c in CURVES]
    )
    rand = random_method(scores) or "random"
    for col, (curve, _, verb) in enumerate(CURVES, start=1):
        if curve in scores.random_band:  # absent when no random orders were drawn
            _add_band(fig, scores.random_band[curve], x, rand, verb, col)
        curves = getattr(scores, curve)
        for method in method_order(scores):
            label = plot_text(method, MAX_METHOD)
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=np.asarray(curves[method], dtype=float),
                    mode="lines+markers",
                    marker=dict(size=4),
                    line=dict(color=method_color(scores, method), width=2),
                    name=label,
                    legendgroup=label,
                    showlegend=col == 1,  # one legend entry per method, for both panels
                    hovertemplate=f"{label}<br>{verb} %{{x:.0%}}: %{{y:.3f}}<extra></extra>",
                    meta=method,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text=f"fraction of the input {verb}", tickformat=".0%", range=[0, 1], row=1, col=col)
    fig.update_yaxes(title_text="target score ÷ full input's", row=1, col=1)
    fig.update_layout(
        height=height,
        title=dict(text=plot_text(f"Target: {scores.target}", MAX_TITLE) if title else None, font=dict(size=14)),
        margin=dict(l=10, r=10, t=70 if title else 30, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0),
        hoverlabel=HOVER_FONT,
        dragmode=False,
    )
    fig.update_annotations(font_size=12)
    return fig
