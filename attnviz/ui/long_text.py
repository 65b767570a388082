"""The text page for a long input, whose every-head weights are not held (issue 13).

Past :data:`attnviz.text.extraction.HELD_BYTES` (a decoder past ~344 tokens), a result keeps every
layer's queries and keys and computes a head when a view asks (:mod:`attnviz.text.long_views`).
The views here read one head, one token or one layer at a time, pooled to screen resolution where
a matrix is larger than the screen, so memory and the bytes sent stay flat up to 8,192 tokens:

- **Single head**: pooled (max or mean, chosen in the sidebar) with a zoom window of exact cells;
- **From one token**: a query's strongest keys, the rest counted;
- **Strongest pairs**: a head's strongest (query, key) pairs over the whole input;
- **All heads of a layer**: every head of one layer, pooled;
- **Model overview**: every head of the model, from one sweep with progress and a Stop button (the
  same sweep gives the head statistics page its table);
- **Rollout**: from one token, a vector through every layer (:mod:`attnviz.text.token_rollout`).
"""

from __future__ import annotations

from functools import partial

import streamlit as st

from attnviz.export.attention_files import head_csv
from attnviz.export.long_files import strongest_keys_png, strongest_pairs_png
from attnviz.export.matrix_files import pooled_head_png, pooled_heads_png
from attnviz.export.png import head_matrix_png
from attnviz.export.pooled_files import edges_csv, pooled_csv, rollout_row_csv
from attnviz.figures.matrix import head_matrix
from attnviz.figures.pooled import (
    pooled_head,
    pooled_layer,
    pooled_overview,
    strongest_edges_figure,
    strongest_keys_figure,
)
from attnviz.maths.attention_rollout import HEAD_FUSIONS
from attnviz.maths.pooling import strongest_keys
from attnviz.text import long_views
from attnviz.text.extraction import TextAttention
from attnviz.text.forward_cost import estimate_seconds
from attnviz.text.loading import TextModel
from attnviz.text.token_rollout import rollout_from
from attnviz.ui import fragments
from attnviz.ui.cache import (
    cached_pooled_head,
    cached_pooled_layer,
    cached_strongest_edges,
    result_derived,
)
from attnviz.ui.figure_downloads import figure_downloads
from attnviz.ui.safe import md_escape
from attnviz.ui.state import HEAD, LAYER, SINGLE_HEAD, keep_default
from attnviz.ui.text_views import clamp, open_clicked_head

LONG_VIEW, POOLING = "long_view", "pooling"
ZOOM_QUERY, ZOOM_KEY, ZOOM_SIZE = "zoom_query", "zoom_key", "zoom_size"
LONG_QUERY, TOP_KEYS, TOP_PAIRS, SKIP_FIRST = "long_query", "top_keys", "top_pairs", "skip_first"
ROLLOUT_QUERY, ROLLOUT_FUSION_LONG, ROLLOUT_CAUSAL_LONG = (
    "long_rollout_query",
    "long_rollout_fusion",
    "long_rollout_causal",
)
LAYER_TILES, OVERVIEW_TILES = "long_layer_chart", "long_overview_chart"
SINGLE, FROM_TOKEN, PAIRS, LAYER_VIEW, OVERVIEW, ROLLOUT = (
    SINGLE_HEAD,  # the same name as the short views', which open_clicked_head sets
    "From one token",
    "Strongest pairs",
    "All heads of a layer",
    "Model overview",
    "Rollout",
)
LONG_VIEWS = (SINGLE, FROM_TOKEN, PAIRS, LAYER_VIEW, OVERVIEW, ROLLOUT)
#: Widgets app.py keeps across pages.
KEPT = (
    LONG_VIEW,
    POOLING,
    ZOOM_QUERY,
    ZOOM_KEY,
    ZOOM_SIZE,
    LONG_QUERY,
    TOP_KEYS,
    TOP_PAIRS,
    SKIP_FIRST,
    ROLLOUT_QUERY,
    ROLLOUT_FUSION_LONG,
    ROLLOUT_CAUSAL_LONG,
)
POOLINGS = {
    "max": "max: each cell is the largest weight in its block (sharp heads stay visible)",
    "mean": "mean: each cell is the average weight of its block (how much attention flows there)",
}
#: The sweep of every head takes about this many forward passes' time (81 s against 47 s at 8,192 tokens).
SWEEP_PER_FORWARD = 1.7
#: A rollout from the last token reads every head's weights without statistics (about 1.8 s a layer).
ROLLOUT_PER_FORWARD = 1.2
_STOPPED = "_attnviz_long_job_stopped"


def caption(ta: TextAttention) -> None:
    n, layers, heads = ta.n_tokens, ta.n_layers, ta.n_heads
    full = layers * heads * n * n * 4 / 2**30
    st.caption(
        md_escape(
            f"{n:,} tokens: every head's {n:,} × {n:,} weights together would be {full:.1f} GiB, so they are not "
            f"kept. Each view computes the heads it shows from the queries and keys the model used "
            f"({ta.recorded.nbytes / 2**20:,.0f} MB), a block of rows at a time."
        )
    )


def pooling_option() -> str:
    with st.sidebar:
        return st.radio(
            "Pooling (long inputs)",
            list(POOLINGS),
            key=POOLING,
            format_func=lambda how: how,
            help="A long input's matrix has more cells than the screen has pixels, so each drawn cell stands "
            "for a block of tokens. " + " ".join(POOLINGS.values()) + ".",
        )


def render(tm: TextModel, ta: TextAttention, *, scale: str, hide_first: bool) -> None:
    """Pickers and the chosen view of a long input."""
    caption(ta)
    views(tm, ta, how=pooling_option(), scale=scale, hide_first=hide_first)  # the sidebar's option: a full rerun


@fragments.view("long_text_view")
def views(tm: TextModel, ta: TextAttention, *, how: str, scale: str, hide_first: bool) -> None:
    """Layer, head, view and the chosen view: a fragment, so that their changes rerun this part alone."""
    clamp(LAYER, ta.n_layers)
    clamp(HEAD, ta.n_heads)
    if st.session_state.get(LONG_VIEW) not in LONG_VIEWS:
        st.session_state.pop(LONG_VIEW, None)
    c1, c2, c3 = st.columns([1, 1, 5])
    chosen = st.session_state.get(LONG_VIEW, SINGLE)
    every_head = chosen in (OVERVIEW, ROLLOUT)
    layer = c1.selectbox("Layer", range(ta.n_layers), key=LAYER, disabled=every_head)
    head = c2.selectbox("Head", range(ta.n_heads), key=HEAD, disabled=every_head or chosen == LAYER_VIEW)
    chosen = c3.radio("View", LONG_VIEWS, key=LONG_VIEW, horizontal=True)
    if chosen == SINGLE:
        single_head(tm, ta, layer, head, how=how, scale=scale, hide_first=hide_first)
    elif chosen == FROM_TOKEN:
        from_one_token(ta, layer, head)
    elif chosen == PAIRS:
        strongest_pairs(tm, ta, layer, head)
    elif chosen == LAYER_VIEW:
        layer_heads(tm, ta, layer, how=how)
    elif chosen == OVERVIEW:
        overview(tm, ta, how=how)
    else:
        rollout(tm, ta)


def _title(ta: TextAttention, layer: int, head: int) -> str:
    return f"Layer {layer}, head {head} · {ta.model_name}"


def single_head(tm: TextModel, ta: TextAttention, layer: int, head: int, *, how: str, scale: str, hide_first: bool):
    with st.spinner(f"Computing layer {layer}, head {head} over {ta.n_tokens:,} tokens…"):
        ph = cached_pooled_head(tm, ta, layer, head, how, hide_first)
    title = _title(ta, layer, head) + (", first token hidden (rows renormalised)" if hide_first else "")
    st.plotly_chart(
        pooled_head(ph.pooled, ph.tokens, title=title, causal=ta.causal, scale=scale), width="stretch", key="pooled"
    )
    figure_downloads(
        lambda fmt, paper: pooled_head_png(
            ph.pooled, ph.tokens, title=title, causal=ta.causal, scale=scale, fmt=fmt, paper=paper
        ),
        stem=f"attnviz-L{layer}-H{head}-pooled",
        key="pooled_figure",
        container=st.columns(3)[0],
    )
    st.download_button(
        "Pooled head (CSV)",
        pooled_csv(ph.pooled, ph.tokens, layer=layer, head=head),
        file_name=f"attnviz-L{layer}-H{head}-pooled.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )
    zoom(ta, layer, head, scale=scale)


def zoom(ta: TextAttention, layer: int, head: int, *, scale: str) -> None:
    """A window of exact cells, with token labels and hover (at most 256 × 256)."""
    n = ta.n_tokens
    st.subheader("Zoom: exact weights")
    c1, c2, c3 = st.columns(3)
    keep_default(ZOOM_SIZE, 64)
    size = c3.number_input(
        "Window size", 8, long_views.ZOOM_MAX, step=8, key=ZOOM_SIZE, help="Tokens a side, at most 256."
    )
    size = min(int(size), n)
    keep_default(ZOOM_QUERY, max(0, n - size))
    keep_default(ZOOM_KEY, max(0, n - size))
    for key in (ZOOM_QUERY, ZOOM_KEY):  # a value kept from a longer input
        st.session_state[key] = min(int(st.session_state[key]), n - 1)
    first_query = c1.number_input("First query token", 0, n - 1, key=ZOOM_QUERY, help="Rows of the window.")
    first_key = c2.number_input("First key token", 0, n - 1, key=ZOOM_KEY, help="Columns of the window.")
    q0 = min(int(first_query), n - size)
    k0 = min(int(first_key), n - size)
    view = long_views.zoom_window(ta, layer, head, slice(q0, q0 + size), slice(k0, k0 + size))
    st.caption(
        md_escape(
            f"Queries {q0}–{q0 + size - 1} × keys {k0}–{k0 + size - 1}: the model's own weights "
            "(not renormalised), one cell per token pair."
        )
    )
    fig = head_matrix(view, 0, 0, scale=scale).update_layout(title=_title(ta, layer, head) + " · zoom")
    st.plotly_chart(fig, width="stretch", key="zoom")
    figure_downloads(
        lambda fmt, paper: head_matrix_png(view, 0, 0, scale=scale, fmt=fmt, paper=paper),
        stem=f"attnviz-L{layer}-H{head}-q{q0}-k{k0}",
        key="zoom_figure",
        label="Zoom",
        container=st.columns(3)[0],
    )
    st.download_button(
        "Zoom window (CSV)",
        head_csv(view, 0, 0),
        file_name=f"attnviz-L{layer}-H{head}-q{q0}-k{k0}.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )


def from_one_token(ta: TextAttention, layer: int, head: int) -> None:
    n = ta.n_tokens
    keep_default(LONG_QUERY, n - 1)
    st.session_state[LONG_QUERY] = min(int(st.session_state[LONG_QUERY]), n - 1)
    keep_default(TOP_KEYS, 20)
    c1, c2 = st.columns(2)
    query = c1.number_input(
        "Query token (position)", 0, n - 1, key=LONG_QUERY, help=f"0 to {n - 1}; the last token predicts the next."
    )
    k = c2.slider("Strongest keys", 5, 50, key=TOP_KEYS)
    best = long_views.strongest_from(ta, layer, head, int(query), int(k))
    fig = strongest_keys_figure(ta.tokens, int(query), *best, title=_title(ta, layer, head))
    st.plotly_chart(fig, width="stretch", key="from_token")
    figure_downloads(
        lambda fmt, paper: strongest_keys_png(
            ta.tokens, int(query), *best, title=_title(ta, layer, head), fmt=fmt, paper=paper
        ),
        stem=f"attnviz-L{layer}-H{head}-from-{int(query)}",
        key="from_token_figure",
        container=st.columns(3)[0],
    )


def strongest_pairs(tm: TextModel, ta: TextAttention, layer: int, head: int) -> None:
    keep_default(TOP_PAIRS, 50)
    keep_default(SKIP_FIRST, ta.causal)
    c1, c2 = st.columns(2)
    k = c1.slider("Pairs", 10, 200, step=10, key=TOP_PAIRS)
    skip = c2.checkbox(
        "Leave out the first token as a key",
        key=SKIP_FIRST,
        help="A decoder parks most spare attention on its first token (the attention sink), which would take "
        "every place in the list.",
    )
    with st.spinner(f"Finding the {k} strongest pairs of layer {layer}, head {head}…"):
        edges = cached_strongest_edges(tm, ta, layer, head, int(k), bool(skip))
    fields = (edges.queries, edges.keys, edges.weights)
    fig = strongest_edges_figure(ta.tokens, *fields, edges.rest_mass, edges.rest_count, title=_title(ta, layer, head))
    st.plotly_chart(fig, width="stretch", key="pairs")
    figure_downloads(
        lambda fmt, paper: strongest_pairs_png(
            ta.tokens, *fields, edges.rest_mass, edges.rest_count, title=_title(ta, layer, head), fmt=fmt, paper=paper
        ),
        stem=f"attnviz-L{layer}-H{head}-pairs",
        key="pairs_figure",
        container=st.columns(3)[0],
    )
    st.download_button(
        "These pairs (CSV)",
        edges_csv(ta.tokens, *fields, layer=layer, head=head),
        file_name=f"attnviz-L{layer}-H{head}-pairs.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )


def layer_heads(tm: TextModel, ta: TextAttention, layer: int, *, how: str) -> None:
    swept = result_derived(tm, ta).get(f"sweep_{how}")
    if swept is not None:  # every head was computed once already: read this layer's from it
        values, edges = swept.overview.values[layer], swept.overview.query_edges
    else:
        with st.spinner(f"Computing the {ta.n_heads} heads of layer {layer} over {ta.n_tokens:,} tokens…"):
            pm = cached_pooled_layer(tm, ta, layer, how)
        values, edges = pm.values, pm.query_edges
        st.caption(
            "Each layer's heads are computed when asked (seconds at 8,192 tokens); after “Compute every head” "
            "in the model overview, every layer shows at once."
        )
    fig = pooled_layer(values, edges, layer=layer, how=how, causal=ta.causal, model_name=ta.model_name)
    st.caption("Click a head to open it alone.")
    st.plotly_chart(
        fig,
        width="stretch",
        key=LAYER_TILES,
        on_select=partial(open_clicked_head, LAYER_TILES, None, LONG_VIEW),
        selection_mode="points",
    )
    figure_downloads(
        lambda fmt, paper: pooled_heads_png(
            values,
            [f"head {h}" for h in range(ta.n_heads)],
            4,
            f"Layer {layer}: every head, {how}-pooled ({ta.model_name})",
            fmt=fmt,
            paper=paper,
        ),
        stem=f"attnviz-L{layer}-heads-pooled",
        key="long_layer_figure",
        container=st.columns(3)[0],
    )


def _stopped() -> None:
    st.session_state[_STOPPED] = True


def computed_on_request(derived: dict, key: str, *, what: str, button: str, work) -> object | None:
    """``derived[key]``, or None after offering to compute it: a long job over every layer runs only
    when asked, with progress per layer and a Stop button, and its result is kept beside the
    attention (for every page and visitor). ``work(progress)`` computes it; ``what`` says what it
    needs and how long it takes."""
    if key in derived:
        return derived[key]
    if st.session_state.pop(_STOPPED, False):
        st.info("You stopped it; nothing was kept.", icon=":material/stop_circle:")
    intro = st.empty()
    with intro.container():
        st.info(md_escape(what), icon="⏳")
        if not st.button(button, key=f"start_{key}", icon=":material/play_arrow:"):
            return None
    intro.empty()
    slot = st.empty()
    box = slot.container(border=True)
    bar = box.progress(0.0, text="Starting…")
    box.button("Stop", key=f"stop_{key}", on_click=_stopped, icon=":material/stop:")
    # A click on Stop reruns the page, which ends this run at its next progress update.
    result = work(lambda done, total: bar.progress(done / total, text=f"Layer {done} of {total}"))
    derived[key] = result
    slot.empty()
    return result


def sweep_result(tm: TextModel, ta: TextAttention, *, how: str = "max") -> long_views.Sweep | None:
    """Every head computed once (overview and statistics), or None after offering to start it."""
    seconds = SWEEP_PER_FORWARD * estimate_seconds(tm, ta.n_tokens)
    what = (
        f"This needs every one of the {ta.n_layers * ta.n_heads} heads' {ta.n_tokens:,} × {ta.n_tokens:,} "
        f"weights once, a block of rows at a time: about {seconds:.0f} s here. The result is kept for "
        "the model overview and the head statistics."
    )
    return computed_on_request(
        result_derived(tm, ta),
        f"sweep_{how}",
        what=what,
        button="Compute every head",
        work=lambda progress: long_views.sweep(ta, how=how, progress=progress),
    )


def rollout(tm: TextModel, ta: TextAttention) -> None:
    """Rollout from one token (Abnar & Zuidema 2020), a vector through every layer."""
    n = ta.n_tokens
    keep_default(ROLLOUT_QUERY, n - 1)
    st.session_state[ROLLOUT_QUERY] = min(int(st.session_state[ROLLOUT_QUERY]), n - 1)
    keep_default(ROLLOUT_FUSION_LONG, "mean")
    keep_default(ROLLOUT_CAUSAL_LONG, ta.causal)  # as the short view: relative to position for decoders
    c1, c2, c3 = st.columns(3)
    query = int(c1.number_input("From token (position)", 0, n - 1, key=ROLLOUT_QUERY))
    fusion = c2.selectbox("Heads fused by", HEAD_FUSIONS, key=ROLLOUT_FUSION_LONG)
    causal = ta.causal and c3.checkbox(
        "Relative to uniform attention",
        key=ROLLOUT_CAUSAL_LONG,
        help="Divides by the rollout of heads that attend uniformly to what they can see, so that the first "
        "tokens do not win by position alone.",
    )
    rows = query + 1 if ta.causal else n
    seconds = ROLLOUT_PER_FORWARD * estimate_seconds(tm, n) * (rows / n) ** 2  # causal: rows·rows/2 cells
    what = (
        f"Rollout from token {query} multiplies a vector through all {ta.n_layers} layers, reading every head's "
        f"rows up to token {rows - 1}: about {seconds:.0f} s here."
    )
    row = computed_on_request(
        result_derived(tm, ta),
        f"rollout_{query}_{fusion}_{causal}",
        what=what,
        button=f"Compute the rollout from token {query}",
        work=lambda progress: rollout_from(ta, query, head_fusion=fusion, causal_normalised=causal, progress=progress),
    )
    if row is None:
        return
    title = f"Rollout from token {query} ({fusion} over heads{', relative to uniform' if causal else ''})"
    best = strongest_keys(row, 30)
    fig = strongest_keys_figure(ta.tokens, query, *best, title=title)
    st.plotly_chart(fig, width="stretch", key="long_rollout")
    figure_downloads(
        lambda fmt, paper: strongest_keys_png(
            ta.tokens, query, *best, title=title, value_label="share", fmt=fmt, paper=paper
        ),
        stem=f"attnviz-rollout-from-{query}",
        key="long_rollout_figure",
        container=st.columns(3)[0],
    )
    st.download_button(
        "Rollout row (CSV)",
        rollout_row_csv(ta.tokens, row, query=query),
        file_name=f"attnviz-rollout-from-{query}.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )


def overview(tm: TextModel, ta: TextAttention, *, how: str) -> None:
    result = sweep_result(tm, ta, how=how)
    if result is None:
        return
    pm = result.overview
    fig = pooled_overview(pm.values, pm.query_edges, how=how, causal=ta.causal, model_name=ta.model_name)
    st.caption("Click a head to open it alone.")
    st.plotly_chart(
        fig,
        width="stretch",
        key=OVERVIEW_TILES,
        on_select=partial(open_clicked_head, OVERVIEW_TILES, ta.n_heads, LONG_VIEW),
        selection_mode="points",
    )
    figure_downloads(
        lambda fmt, paper: pooled_heads_png(
            pm.values,
            [f"L{layer} H{head}" for layer in range(ta.n_layers) for head in range(ta.n_heads)],
            ta.n_heads,
            f"Every layer and head, {how}-pooled ({ta.model_name})",
            fmt=fmt,
            paper=paper,
        ),
        stem="attnviz-overview-pooled",
        key="long_overview_figure",
        container=st.columns(3)[0],
    )
