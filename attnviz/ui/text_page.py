"""The text-attention page's widgets and views (the page file only calls these in order).

Widget values live in ``st.session_state`` under the keys below, so a click on a chart can
set them from a callback (the only moment Streamlit lets code change a widget's value).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import streamlit as st

from attnviz import figures
from attnviz.errors import InputError
from attnviz.export import attention_npz, head_csv
from attnviz.export import png as png_export
from attnviz.export.rollout_files import rollout_csv, rollout_png
from attnviz.figures.rollout import rollout_matrix
from attnviz.maths.attention_rollout import HEAD_FUSIONS
from attnviz.text.extraction import TextAttention
from attnviz.text.loading import TextModel
from attnviz.text.views import BLOCKS, AttentionView
from attnviz.ui.cache import cached_rollout_view, cached_view
from attnviz.ui.safe import md_escape, show_input_error
from attnviz.ui.state import HEAD, LAYER, SINGLE_HEAD, VIEW, keep_default

VIEWS = [SINGLE_HEAD, "All heads of a layer", "Model overview", "Head lines", "From one token", "Rollout"]
ROLLOUT = VIEWS[-1]
SCALES = {"fixed": "0 – 1 (compare heads)", "head max": "0 – largest weight (see faint patterns)"}

QUERY = "query_token"
FUSION, DISCARD = "rollout_fusion", "rollout_discard"
MATRIX_CHART, LAYER_CHART, OVERVIEW_CHART = "matrix_chart", "layer_chart", "overview_chart"
#: Widgets whose value must survive runs that do not draw them (another page, an empty
#: sentence, another view); app.py keeps them (see attnviz.ui.state). The sentence's own are
#: in attnviz.ui.sentence.KEPT.
KEPT = (
    *(LAYER, HEAD, VIEW, QUERY),
    *("units", "hide_special", "block", "scale", "line_heads", "threshold", "focus_query"),
    *(FUSION, DISCARD),
)


@dataclass(frozen=True)
class Options:
    words: bool
    hide_special: bool
    block: str
    scale: str


# ---------------------------------------------------------------- options and view


def options(is_pair: bool) -> Options:
    with st.sidebar:
        st.subheader("Display")
        words = (
            st.radio(
                "Units",
                ["subword tokens", "words"],
                key="units",
                horizontal=True,
                help="Words: pieces merged. Attention to a word is the sum over its pieces; "
                "from a word, the mean over its pieces.",
            )
            == "words"
        )
        hide = st.checkbox(
            "Hide [CLS] and [SEP]",
            key="hide_special",
            help="Drops their rows and columns. Their weight is not redistributed, so rows sum to less than 1.",
        )
        block = "All"
        if is_pair:
            block = st.radio(
                "Pair block (queries → keys)",
                list(BLOCKS),
                key="block",
                horizontal=True,
                help="A→B: how tokens of the first sentence attend to the second.",
            )
        scale = st.radio("Colour scale", list(SCALES), format_func=SCALES.get, key="scale")
    return Options(words=words, hide_special=hide, block=block, scale=scale)


def attention_view(tm: TextModel, ta: TextAttention, opts: Options) -> AttentionView:
    """The (cached) view of ``ta`` that the display options ask for."""
    return cached_view(tm, ta, opts.words, opts.block, opts.hide_special)


def _clamp(key: str, size: int, default: int = 0) -> None:
    """Keep a widget's stored index valid for the current view (and set it on first use)."""
    value = st.session_state.get(key)
    if key not in st.session_state or not isinstance(value, int) or not 0 <= value < size:
        st.session_state[key] = max(0, min(default, size - 1))


def _on_matrix_click() -> None:
    points = st.session_state[MATRIX_CHART]["selection"]["points"]
    if points:
        st.session_state[QUERY] = int(round(points[0]["y"]))


def _on_tile_click(chart: str, n_heads: int | None) -> None:
    """A thumbnail was clicked: open it as a single head. ``n_heads`` None: tiles are one layer's heads."""
    points = st.session_state[chart]["selection"]["points"]
    if not points:
        return
    index = int(points[0]["point_index"])
    if n_heads is None:
        st.session_state[HEAD] = index
    else:
        st.session_state[LAYER], st.session_state[HEAD] = divmod(index, n_heads)
    st.session_state[VIEW] = VIEWS[0]


def layer_head_view(view: AttentionView) -> tuple[int, int, str]:
    """Layer, head and view pickers; returns their values."""
    _clamp(LAYER, view.n_layers)
    _clamp(HEAD, view.n_heads, default=0)
    c1, c2, c3 = st.columns([1, 1, 5])
    # Rollout uses every layer and head: the pickers stay (their values are kept) but are greyed out.
    every_head = st.session_state.get(VIEW) == ROLLOUT
    layer = c1.selectbox("Layer", range(view.n_layers), key=LAYER, disabled=every_head)
    head = c2.selectbox("Head", range(view.n_heads), key=HEAD, disabled=every_head)
    chosen = c3.radio("View", VIEWS, key=VIEW, horizontal=True)
    return layer, head, chosen


def query_picker(view: AttentionView, label: str = "Query token") -> int:
    n = len(view.query_tokens)
    _clamp(QUERY, n, default=min(1, n - 1))
    return st.selectbox(
        label,
        range(n),
        key=QUERY,
        format_func=lambda i: f"{i}: {view.query_tokens[i]}",
        help="Also chosen by clicking a row of the single-head matrix.",
    )


def render(tm: TextModel, ta: TextAttention, view: AttentionView, opts: Options) -> None:
    """Draw the chosen view and its downloads."""
    if not view.query_tokens or not view.key_tokens:
        st.info("Nothing to show with these options (every token is hidden). Show [CLS]/[SEP] or pick another block.")
        return
    layer, head, chosen = layer_head_view(view)
    if chosen == "Single head":
        fig = figures.head_matrix(view, layer, head, scale=opts.scale, selected_query=st.session_state.get(QUERY))
        if figures.is_clickable(view):
            st.caption(
                "Hover a cell for the exact weight; click a cell to choose its query token for “From one token”."
            )
            st.plotly_chart(fig, key=MATRIX_CHART, on_select=_on_matrix_click, selection_mode="points", width="stretch")
        else:
            st.caption(
                "Large input: choose the query token from the list under “From one token” (clicking cells is "
                "available up to 256 × 256 tokens, to keep the page light)."
            )
            st.plotly_chart(fig, width="stretch")
        png = lambda: png_export.head_matrix_png(view, layer, head, scale=opts.scale)  # noqa: E731
    elif chosen == "All heads of a layer":
        fig = figures.layer_heads(view, layer, scale=opts.scale)
        st.plotly_chart(
            fig,
            key=LAYER_CHART,
            # Partials, not lambdas: Streamlit keeps a chart's callback for the whole session
            # (one per new figure), and a lambda would keep ``view`` (up to 75 MB) with it.
            on_select=partial(_on_tile_click, LAYER_CHART, None),
            selection_mode="points",
            width="stretch",
        )
        png = lambda: png_export.layer_heads_png(view, layer, scale=opts.scale)  # noqa: E731
    elif chosen == "Model overview":
        fig = figures.model_overview(view, scale=opts.scale)
        st.plotly_chart(
            fig,
            key=OVERVIEW_CHART,
            on_select=partial(_on_tile_click, OVERVIEW_CHART, view.n_heads),
            selection_mode="points",
            width="stretch",
        )
        png = lambda: png_export.overview_png(view, scale=opts.scale)  # noqa: E731
    elif chosen == "Head lines":
        c1, c2, c3 = st.columns([3, 2, 2])
        # Start with the chosen head; drop heads a newly loaded model does not have.
        kept = [h for h in st.session_state.get("line_heads", [head]) if h < view.n_heads]
        st.session_state["line_heads"] = kept
        heads = c1.multiselect(
            "Heads",
            range(view.n_heads),
            key="line_heads",
            help="Each head in its own colour; add heads to compare them.",
        )
        keep_default("threshold", 0.05)
        threshold = c2.slider(
            "Hide weights below",
            0.01,
            0.5,
            step=0.01,
            key="threshold",
            help="A row sums to 1, so at most 1/threshold lines leave a token: the view stays light.",
        )
        focus = c3.checkbox("Only lines from the query token", key="focus_query")
        query = query_picker(view) if focus else None
        fig = figures.head_lines(view, layer, heads, threshold=threshold, query=query)
        st.plotly_chart(fig, width="stretch")
        png = lambda: png_export.head_lines_png(view, layer, heads, threshold=threshold, query=query)  # noqa: E731
    elif chosen == "From one token":
        query = query_picker(view)
        fig = figures.token_heads(view, query, scale=opts.scale)
        st.plotly_chart(fig, width="stretch")
        png = lambda: png_export.token_heads_png(view, query, scale=opts.scale)  # noqa: E731
    else:
        rolled = rollout_section(tm, ta, opts)
        if rolled is None:
            return
        png = lambda: rollout_png(rolled, scale=opts.scale)  # noqa: E731
        downloads(
            ta, rolled, layer, head, png, csv=("Rollout (CSV)", lambda: rollout_csv(rolled), "attnviz-rollout.csv")
        )
        return
    downloads(ta, view, layer, head, png)


def rollout_section(tm: TextModel, ta: TextAttention, opts: Options) -> AttentionView | None:
    """Fusion and discard options, then the rollout matrix; returns the view drawn."""
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
    try:
        view = cached_rollout_view(tm, ta, fusion, float(discard), opts.words, opts.block, opts.hide_special)
    except InputError as exc:
        show_input_error(exc)
        return None
    st.caption(
        "Rollout follows attention through every layer: each layer's fused matrix A becomes (A + I) / rowsum, "
        "counting the residual connection, and the layers are multiplied from the first up. Row i: how much "
        "token i's last-layer state draws on each input token. Rows sum to 1 (less when tokens are hidden)."
    )
    if not view.query_tokens or not view.key_tokens:
        st.info("Nothing to show with these options (every token is hidden).")
        return None
    st.plotly_chart(rollout_matrix(view, scale=opts.scale), key="rollout_chart", width="stretch")
    return view


def downloads(ta: TextAttention, view: AttentionView, layer: int, head: int, png, csv=None) -> None:
    """Files are built only when their button is clicked (callables), not on every rerun.

    ``csv``: (label, callable, file name) of the third button; default the chosen head as CSV.
    """
    c1, c2, c3 = st.columns(3)
    c1.download_button("Figure (PNG)", png, file_name="attnviz-figure.png", mime="image/png", icon=":material/image:")
    c2.download_button(
        "All attention (.npz)",
        lambda: attention_npz(ta),
        file_name="attnviz-attention.npz",
        mime="application/octet-stream",
        icon=":material/download:",
        help="weights [layers, heads, n, n], tokens, words, segments; load with numpy.load",
    )
    label, data, file_name = csv or (
        f"Layer {layer} head {head} (CSV)",
        lambda: head_csv(view, layer, head),
        f"attnviz-L{layer}-H{head}.csv",
    )
    c3.download_button(label, data, file_name=file_name, mime="text/csv", icon=":material/table:")


def page_caption(ta: TextAttention) -> None:
    st.caption(md_escape(f"{ta.n_tokens} tokens · {ta.n_layers} layers × {ta.n_heads} heads · model {ta.model_name}"))
