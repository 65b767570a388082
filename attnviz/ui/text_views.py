"""The text page's views as a table: one :class:`TextView` entry per view, the way pytorch-grad-cam
maps a method name to its class. ``attnviz.ui.text_page.render`` looks the chosen name up and
draws that entry; adding a view is one entry here and one figure function in ``attnviz.figures``
(with its PNG in ``attnviz.export.png``).

An entry holds what differs between views, and nothing else:
- ``controls``: the widgets the view adds under the layer/head/view row; it returns the
  :class:`Picks` with the options it reads filled in (layer, head and scale come filled);
- ``figure`` / ``png``: the picture on the page and the file behind the "Figure" downloads (PNG,
  or ``fmt="svg"`` / ``"pdf"``, ``paper=True``), both from the same view and picks;
- ``show``: how the figure goes on the page (a clickable chart, or a plain one);
- ``source``: for a view drawn from something other than the chosen head's matrix (rollout, the
  sink map), what it draws, which ``figure``, ``png`` and ``csv`` then take instead of the view;
  ``csv``: its third download, when the chosen head's CSV is not it;
- ``reads_layer`` / ``reads_head``: whether the view draws the chosen layer / head. A picker the view
  does not read is greyed (its value is kept): a change there would only rerun the view and re-send
  the same chart (all heads of a layer ignore the head; the overview, one token's row of every head,
  rollout and the sinks ignore both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from attnviz import figures
from attnviz.errors import InputError
from attnviz.export import png as png_export
from attnviz.export.rollout_files import rollout_csv, rollout_png
from attnviz.export.sink_files import sinks_csv, sinks_png
from attnviz.figures.rollout import rollout_matrix
from attnviz.maths.attention_rollout import HEAD_FUSIONS
from attnviz.text.extraction import TextAttention
from attnviz.text.loading import TextModel
from attnviz.text.sinks import AttentionSinks
from attnviz.text.views import AttentionView
from attnviz.ui.cache import cached_rollout_view, cached_sinks
from attnviz.ui.safe import show_input_error
from attnviz.ui.state import HEAD, LAYER, SINGLE_HEAD, VIEW, keep_default

QUERY = "query_token"
LINE_HEADS, THRESHOLD, FOCUS_QUERY = "line_heads", "threshold", "focus_query"
FUSION, DISCARD, CAUSAL_NORMALISED = "rollout_fusion", "rollout_discard", "rollout_causal"
MATRIX_CHART, LAYER_CHART, OVERVIEW_CHART = "matrix_chart", "layer_chart", "overview_chart"
ROLLOUT_CHART, SINKS_CHART, LINES_CHART = "rollout_chart", "sinks_chart", "lines_chart"
#: The widgets the views add (see ``controls``); app.py keeps their values across pages.
KEPT = (QUERY, LINE_HEADS, THRESHOLD, FOCUS_QUERY, FUSION, DISCARD, CAUSAL_NORMALISED)


@dataclass(frozen=True)
class Picks:
    """Every option a view may read. Layer, head and scale are always set; a view's ``controls``
    fill in the rest that it reads."""

    layer: int
    head: int
    scale: str
    query: int | None = None  # the query token (None: no token is singled out; starts as the last one clicked)
    heads: tuple[int, ...] = ()  # the heads drawn together (head lines)
    threshold: float = 0.05  # weights below it are not drawn (head lines)
    fusion: str = "mean"  # rollout: how each layer's heads become one matrix
    discard: float = 0.0  # rollout: share of each fused layer's lowest weights set to 0
    causal_normalised: bool = False  # rollout of a decoder: relative to uniform causal attention


@dataclass(frozen=True)
class TextView:
    name: str
    figure: Callable[[Any, Picks], go.Figure]  # Any: the view, or what ``source`` returned
    png: Callable[..., bytes]  # (view, picks, fmt="png", paper=False) -> the file
    show: Callable[[go.Figure, Any], None]
    controls: Callable[[AttentionView, Picks], Picks] = lambda view, picks: picks
    source: Callable[[TextModel, TextAttention, Picks, dict], Any] | None = None
    csv: Callable[[Any], tuple[str, Callable[[], bytes], str]] | None = None
    reads_layer: bool = True
    reads_head: bool = True


# ---------------------------------------------------------------- shared widgets and clicks


def clamp(key: str, size: int, default: int = 0) -> None:
    """Keep a widget's stored index valid for the current view (and set it on first use)."""
    value = st.session_state.get(key)
    if key not in st.session_state or not isinstance(value, int) or not 0 <= value < size:
        st.session_state[key] = max(0, min(default, size - 1))


def query_picker(view: AttentionView, label: str = "Query token") -> int:
    n = len(view.query_tokens)
    clamp(QUERY, n, default=min(1, n - 1))
    return st.selectbox(
        label,
        range(n),
        key=QUERY,
        format_func=lambda i: f"{i}: {view.query_tokens[i]}",
        help="Also chosen by clicking a row of the single-head matrix.",
    )


def _on_matrix_click() -> None:
    points = st.session_state[MATRIX_CHART]["selection"]["points"]
    if points:
        st.session_state[QUERY] = int(round(points[0]["y"]))


def open_clicked_head(chart: str, n_heads: int | None, view_key: str = VIEW) -> None:
    """A thumbnail was clicked: open it as a single head (the view under ``view_key``: the short
    views' radio, or the long views' in attnviz.ui.long_text). ``n_heads`` None: tiles are one
    layer's heads."""
    points = st.session_state[chart]["selection"]["points"]
    if not points:
        return
    index = int(points[0]["point_index"])
    if n_heads is None:
        st.session_state[HEAD] = index
    else:
        st.session_state[LAYER], st.session_state[HEAD] = divmod(index, n_heads)
    st.session_state[view_key] = SINGLE_HEAD


# ---------------------------------------------------------------- how each figure is shown


def _show_plain(fig: go.Figure, view: AttentionView, key: str | None = None) -> None:
    st.plotly_chart(fig, key=key, width="stretch")


def _show_matrix(fig: go.Figure, view: AttentionView) -> None:
    if figures.is_clickable(view):
        st.plotly_chart(fig, key=MATRIX_CHART, on_select=_on_matrix_click, selection_mode="points", width="stretch")
        st.caption("Hover a cell for the exact weight; click a cell to choose its query token for “From one token”.")
    else:
        st.caption(
            "Large input: choose the query token from the list under “From one token” (clicking cells is "
            "available up to 256 × 256 tokens, to keep the page light)."
        )
        st.plotly_chart(fig, width="stretch")


def _show_lines(fig: go.Figure, view: AttentionView) -> None:
    st.plotly_chart(fig, key=LINES_CHART, width="stretch")
    menu = "“Lines from” (top left of the chart) keeps one query token's lines; " if fig.layout.updatemenus else ""
    st.caption(
        f"Hover a line near its left end for its weight; {menu}click a head in the legend to hide it, double-click "
        "to see it alone. These run in your browser, at once."
    )


def _show_tiles(fig: go.Figure, view: AttentionView, chart: str, whole_model: bool) -> None:
    st.plotly_chart(
        fig,
        key=chart,
        # Partials, not lambdas: Streamlit keeps a chart's callback for the whole session
        # (one per new figure), and a lambda would keep ``view`` (up to 75 MB) with it.
        on_select=partial(open_clicked_head, chart, view.n_heads if whole_model else None),
        selection_mode="points",
        width="stretch",
    )


# ---------------------------------------------------------------- the controls views add


def _line_controls(view: AttentionView, picks: Picks) -> Picks:
    c1, c2, c3 = st.columns([3, 2, 2])
    # Start with the chosen head; drop heads a newly loaded model does not have.
    kept = [h for h in st.session_state.get(LINE_HEADS, [picks.head]) if h < view.n_heads]
    st.session_state[LINE_HEADS] = kept
    heads = c1.multiselect(
        "Heads",
        range(view.n_heads),
        key=LINE_HEADS,
        help="Each head in its own colour; add heads to compare them.",
    )
    keep_default(THRESHOLD, 0.05)
    threshold = c2.slider(
        "Hide weights below",
        0.01,
        0.5,
        step=0.01,
        key=THRESHOLD,
        help="A row sums to 1, so at most 1/threshold lines leave a token: the view stays light.",
    )
    focus = c3.checkbox("Only lines from the query token", key=FOCUS_QUERY)
    query = query_picker(view) if focus else None
    return replace(picks, heads=tuple(heads), threshold=threshold, query=query)


def _query_controls(view: AttentionView, picks: Picks) -> Picks:
    return replace(picks, query=query_picker(view))


def _rollout_controls(view: AttentionView, picks: Picks) -> Picks:
    if view.causal:
        keep_default(CAUSAL_NORMALISED, True)
        normalised = st.toggle(
            "Relative to position (causal rollout)",
            key=CAUSAL_NORMALISED,
            help="A decoder's token sees only the tokens before it, so multiplying layers piles weight onto the "
            "first tokens whatever the heads do. On: each share is divided by what attention spread evenly over "
            "the visible tokens would give, and rows are summed to 1 again (Abnar & Zuidema warn about this "
            "bias). Off: the raw rollout.",
        )
    else:
        normalised = False
    c1, c2 = st.columns([2, 3])
    fusion = c1.radio(
        "Heads fused by",
        HEAD_FUSIONS,
        key=FUSION,
        horizontal=True,
        help="How each layer's heads become one matrix before layers are multiplied: their mean "
        "(Abnar & Zuidema 2020), or the largest or smallest weight of any head (vit-explain).",
    )
    keep_default(DISCARD, 0.0)
    discard = c2.slider(
        "Discard the lowest weights",
        0.0,
        0.95,
        step=0.05,
        key=DISCARD,
        format="%.2f",
        help="Share of each fused layer's smallest weights set to 0 before the identity is added "
        "(vit-explain's noise filter). 0 keeps every weight.",
    )
    return replace(picks, fusion=fusion, discard=float(discard), causal_normalised=normalised)


def _rollout_source(tm: TextModel, ta: TextAttention, picks: Picks, display: dict) -> AttentionView | None:
    """The rollout of every layer, in the display's units (None after saying why)."""
    try:
        view = cached_rollout_view(
            tm, ta, picks.fusion, picks.discard, **display, causal_normalised=picks.causal_normalised
        )
    except InputError as exc:
        show_input_error(exc)
        return None
    st.caption(
        "Rollout follows attention through every layer: each layer's fused matrix A becomes (A + I) / rowsum, "
        "counting the residual connection, and the layers are multiplied from the first up. Row i: how much "
        "token i's last-layer state draws on each input token. Rows sum to 1 (less when tokens are hidden)."
    )
    return view


def _sinks_source(tm: TextModel, ta: TextAttention, picks: Picks, display: dict) -> AttentionSinks:
    """Every head's sink masses, over every token (the display's hiding does not apply: the map says
    what hiding the first token takes away)."""
    st.caption(
        "How much of each head's attention rests on the first token (mean over every later token's row). "
        "Decoders park unneeded attention there, the attention sink (Xiao et al. 2023); encoders do the same "
        "with [CLS] and [SEP] (Clark et al. 2019). A high share washes out every other weight of the head: "
        "“Hide the first token (renormalise)” in the sidebar shows the rest in proportion."
    )
    return cached_sinks(tm, ta)


# ---------------------------------------------------------------- the table

TEXT_VIEWS: dict[str, TextView] = {
    entry.name: entry
    for entry in (
        TextView(
            SINGLE_HEAD,
            figure=lambda v, p: figures.head_matrix(v, p.layer, p.head, scale=p.scale, selected_query=p.query),
            png=lambda v, p, **f: png_export.head_matrix_png(v, p.layer, p.head, scale=p.scale, **f),
            show=_show_matrix,
        ),
        TextView(
            "All heads of a layer",
            figure=lambda v, p: figures.layer_heads(v, p.layer, scale=p.scale),
            png=lambda v, p, **f: png_export.layer_heads_png(v, p.layer, scale=p.scale, **f),
            show=partial(_show_tiles, chart=LAYER_CHART, whole_model=False),
            reads_head=False,
        ),
        TextView(
            "Model overview",
            figure=lambda v, p: figures.model_overview(v, scale=p.scale),
            png=lambda v, p, **f: png_export.overview_png(v, scale=p.scale, **f),
            show=partial(_show_tiles, chart=OVERVIEW_CHART, whole_model=True),
            reads_layer=False,
            reads_head=False,
        ),
        TextView(
            "Head lines",
            controls=_line_controls,
            figure=lambda v, p: figures.head_lines(v, p.layer, list(p.heads), threshold=p.threshold, query=p.query),
            png=lambda v, p, **f: png_export.head_lines_png(
                v, p.layer, list(p.heads), threshold=p.threshold, query=p.query, **f
            ),
            show=_show_lines,
            reads_head=False,  # its own choice of heads
        ),
        TextView(
            "From one token",
            controls=_query_controls,
            figure=lambda v, p: figures.token_heads(v, p.query, scale=p.scale),
            png=lambda v, p, **f: png_export.token_heads_png(v, p.query, scale=p.scale, **f),
            show=_show_plain,
            reads_layer=False,
            reads_head=False,
        ),
        TextView(
            "Rollout",
            controls=_rollout_controls,
            source=_rollout_source,
            figure=lambda v, p: rollout_matrix(v, scale=p.scale),
            png=lambda v, p, **f: rollout_png(v, scale=p.scale, **f),
            show=partial(_show_plain, key=ROLLOUT_CHART),
            csv=lambda v: ("Rollout (CSV)", lambda: rollout_csv(v), "attnviz-rollout.csv"),
            reads_layer=False,
            reads_head=False,
        ),
        TextView(
            "Attention sinks",
            source=_sinks_source,
            figure=lambda sinks, p: figures.sink_map(sinks),
            png=lambda sinks, p, **f: sinks_png(sinks, **f),
            show=partial(_show_plain, key=SINKS_CHART),
            csv=lambda sinks: ("Sinks (CSV)", lambda: sinks_csv(sinks), "attnviz-sinks.csv"),
            reads_layer=False,
            reads_head=False,
        ),
    )
}
VIEWS = list(TEXT_VIEWS)
