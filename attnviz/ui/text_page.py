"""The text-attention page's display options, pickers and downloads (the page file only calls these in
order); the views themselves are the table in attnviz.ui.text_views.

Widget values live in ``st.session_state`` under the keys below, so a click on a chart can
set them from a callback (the only moment Streamlit lets code change a widget's value).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from attnviz.export import attention_npz, head_csv
from attnviz.text.extraction import TextAttention
from attnviz.text.loading import TextModel
from attnviz.text.views import BLOCKS, AttentionView
from attnviz.ui import fragments
from attnviz.ui.cache import cached_view
from attnviz.ui.figure_downloads import figure_downloads
from attnviz.ui.safe import md_escape
from attnviz.ui.state import HEAD, LAYER, SINGLE_HEAD, VIEW
from attnviz.ui.text_views import KEPT as VIEW_KEPT
from attnviz.ui.text_views import QUERY, TEXT_VIEWS, Picks, TextView, clamp

SCALES = {"fixed": "0 – 1 (compare heads)", "head max": "0 – largest weight (see faint patterns)"}

#: Widgets whose value must survive runs that do not draw them (another page, an empty
#: sentence, another view); app.py keeps them (see attnviz.ui.state). The sentence's own are
#: in attnviz.ui.sentence.KEPT.
KEPT = (LAYER, HEAD, VIEW, "units", "hide_special", "hide_first", "block", "scale", *VIEW_KEPT)


@dataclass(frozen=True)
class Options:
    words: bool
    hide_special: bool
    block: str
    scale: str
    hide_first: bool = False  # a decoder's first token hidden, rows renormalised


# ---------------------------------------------------------------- options and view


def options(is_pair: bool, causal: bool = False) -> Options:
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
            "Hide special tokens" if causal else "Hide [CLS] and [SEP]",
            key="hide_special",
            help="Drops the rows and columns of the tokens the tokenizer added. Their weight is not redistributed, "
            "so rows sum to less than 1.",
        )
        hide_first = causal and st.checkbox(
            "Hide the first token (renormalise)",
            key="hide_first",
            help="Most of a decoder's attention from the middle layers on rests on its first token (the attention "
            "sink), which washes out every other weight. This drops the first token and divides each row by what it "
            "had left, so the rest is seen in proportion. The “Attention sinks” view shows how much was hidden.",
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
    return Options(words=words, hide_special=hide, block=block, scale=scale, hide_first=hide_first)


def attention_view(tm: TextModel, ta: TextAttention, opts: Options) -> AttentionView:
    """The (cached) view of ``ta`` that the display options ask for."""
    return cached_view(tm, ta, opts.words, opts.block, opts.hide_special, opts.hide_first)


def layer_head_view(view: AttentionView) -> tuple[int, int, TextView]:
    """Layer, head and view pickers; returns their values (the view as its table entry)."""
    clamp(LAYER, view.n_layers)
    clamp(HEAD, view.n_heads, default=0)
    c1, c2, c3 = st.columns([1, 1, 5])
    if st.session_state.get(VIEW) not in TEXT_VIEWS:
        st.session_state.pop(VIEW, None)
    # A picker the view does not read is greyed out (its value is kept): changing it would rerun the
    # view only to re-send the same chart.
    entry = TEXT_VIEWS.get(st.session_state.get(VIEW), TEXT_VIEWS[SINGLE_HEAD])
    layer = c1.selectbox("Layer", range(view.n_layers), key=LAYER, disabled=not entry.reads_layer)
    head = c2.selectbox("Head", range(view.n_heads), key=HEAD, disabled=not entry.reads_head)
    chosen = c3.radio("View", list(TEXT_VIEWS), key=VIEW, horizontal=True)
    return layer, head, TEXT_VIEWS[chosen]


@fragments.view("text_view")
def render(tm: TextModel, ta: TextAttention, view: AttentionView, opts: Options) -> None:
    """Draw the chosen view (its entry in :data:`~attnviz.ui.text_views.TEXT_VIEWS`) and its downloads.

    A fragment: a change of layer, head, view or of a view's own controls (and a click on a chart)
    reruns this view alone; the sentence, the model and the sidebar's display options rerun the page.
    """
    if not view.query_tokens or not view.key_tokens:
        st.info("Nothing to show with these options (every token is hidden). Show [CLS]/[SEP] or pick another block.")
        return
    layer, head, entry = layer_head_view(view)
    picks = entry.controls(view, Picks(layer, head, opts.scale, query=st.session_state.get(QUERY)))
    shown = view
    if entry.source is not None:
        display = {"words": opts.words, "block": opts.block, "hide": opts.hide_special, "hide_first": opts.hide_first}
        shown = entry.source(tm, ta, picks, display)
        if shown is None:
            return
        if isinstance(shown, AttentionView) and (not shown.query_tokens or not shown.key_tokens):
            st.info("Nothing to show with these options (every token is hidden).")
            return
    entry.show(entry.figure(shown, picks), shown)
    render = lambda fmt, paper: entry.png(shown, picks, fmt=fmt, paper=paper)  # noqa: E731
    downloads(ta, shown, layer, head, render, csv=entry.csv(shown) if entry.csv else None, name=entry.name)


def downloads(ta: TextAttention, view: AttentionView, layer: int, head: int, render, csv=None, name: str = "") -> None:
    """Files are built only when their button is clicked (callables), not on every rerun.

    ``render(fmt, paper)``: the figure's file (PNG, SVG or PDF; :mod:`attnviz.ui.figure_downloads`).
    ``csv``: (label, callable, file name) of the third button; default the chosen head as CSV.
    ``name``: the view's name, in the figure's file name.
    """
    c1, c2, c3 = st.columns(3)
    slug = "-".join(name.lower().split()) or "figure"
    figure_downloads(render, stem=f"attnviz-{slug}-L{layer}-H{head}", key="text_figure", container=c1)
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
    kind = "decoder" if ta.causal else "encoder"
    shape = f"{ta.n_layers} layers × {ta.n_heads} heads"
    st.caption(md_escape(f"{ta.n_tokens:,} tokens · {shape} · {kind} {ta.model_name}"))
    if ta.causal:
        st.caption(
            "A decoder reads left to right: each token sees itself and the tokens before it. Grey cells are keys a "
            "token cannot see (not a weight of 0)."
        )
