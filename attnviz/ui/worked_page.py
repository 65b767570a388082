"""The worked-example page: real mode (the loaded model), the check panel, the link.

The page file calls, in order: :func:`attnviz.ui.worked_toy.mode_picker`, then
:func:`attnviz.ui.worked_toy.toy_view` (toy mode, in its own module: it draws without PyTorch), or
:func:`follow_link`, :func:`real_sentence` and :func:`real_view`. Each view is a fragment
(:mod:`attnviz.ui.fragments`): a step control (layer, head, "Show every dimension", the chosen cell,
the divisor, a toy cell) reruns that view alone; the mode, the model and the sentence rerun the page.
A view gets a :class:`~attnviz.ui.worked_steps.Shown` from :func:`attnviz.ui.worked_toy.toy_inputs`
or :func:`real_inputs` and calls :func:`render`, which draws the seven steps
(:mod:`attnviz.ui.worked_steps`), or a decoder head's nine (:mod:`attnviz.ui.worked_decoder`: the
norm, RoPE and the causal mask besides). Every number drawn comes from
:func:`attnviz.maths.qkv.attention_steps` or :func:`attnviz.explain_head`; none is typed.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from attnviz.errors import InputError
from attnviz.examples import DEFAULT_TEXT
from attnviz.export.matrix_files import labelled_matrix_png
from attnviz.export.steps_files import matrix_csv, steps_npz
from attnviz.maths.toy_presets import (
    dims,
)
from attnviz.text.worked_example import HeadSteps
from attnviz.ui import fragments
from attnviz.ui import state as shared
from attnviz.ui.cache import cached_explain_head
from attnviz.ui.figure_downloads import figure_downloads
from attnviz.ui.notices import device_notice
from attnviz.ui.safe import show_input_error, show_unexpected
from attnviz.ui.state import show_head_on_text_page
from attnviz.ui.text_boxes import replacement_notice
from attnviz.ui.worked_decoder import render_decoder
from attnviz.ui.worked_steps import (  # noqa: F401  (WEIGHTS_CHART: the tests use it from here)
    DIVISOR,
    KEY,
    QUERY,
    SHOW_ALL_TOKENS,
    SUMMARY_DIMS,
    SUMMARY_TOKENS,
    WEIGHTS_CHART,
    Shown,
    clamp,
)
from attnviz.ui.worked_steps import render as render_encoder
from attnviz.ui.worked_toy import (  # noqa: F401  (the page file and the tests use the toy mode's names from here)
    DIM,
    HEADS,
    MODE,
    N_TOKENS,
    PRESET,
    REAL_MODE,
    SEED,
    TOY,
    TOY_HEAD,
    TOY_KEPT,
    TOY_MODE,
    mode_picker,
    toy_inputs,
    toy_view,
)

TEXT, LAYER, HEAD, SHOW_ALL, CSV_MATRIX = "worked_text", "worked_layer", "worked_head", "worked_show_all", "worked_csv"
EVERY_NUMBER = "worked_every_number"
_GOTO_TEXT = "worked_goto_text"
#: Widgets whose value survives visits to other pages (app.py keeps them; see attnviz.ui.state).
KEPT = (*TOY_KEPT, TEXT, LAYER, HEAD, SHOW_ALL, EVERY_NUMBER, CSV_MATRIX, QUERY, KEY, DIVISOR)

#: Largest max |recomputed − model| the check panel accepts.
TOLERANCE = 1e-5


def render(shown: Shown) -> None:
    """Every step of the head in ``shown``: a decoder's nine, or an encoder's (and the toy's) seven."""
    if shown.real is not None and shown.real.causal:
        render_decoder(shown)
    else:
        render_encoder(shown)


# ---------------------------------------------------------------- navigation and mode


def _open_on_text_page(text: str, layer: int, head: int) -> None:
    show_head_on_text_page(text, layer, head)  # one sentence: the worked example explains no pair
    st.session_state[_GOTO_TEXT] = True


def follow_link() -> None:
    """st.switch_page cannot run inside a callback: the link's callback sets a flag, acted on here."""
    if st.session_state.pop(_GOTO_TEXT, False):
        st.switch_page("pages/text.py")


# ---------------------------------------------------------------- real inputs


def _use_text_page_sentence() -> None:
    st.session_state[TEXT] = st.session_state.get(shared.TEXT, "")


def real_sentence() -> str:
    """The sentence box of real mode (a change reruns the page); returns the sentence."""
    from_text_page = st.session_state.get(shared.TEXT)
    st.session_state.setdefault(TEXT, from_text_page or DEFAULT_TEXT)
    text = st.text_area("Sentence", key=TEXT, height=68, help="Press Ctrl+Enter to apply.")
    replacement_notice(text, "sentence")
    if from_text_page and from_text_page.strip() and from_text_page != text:
        st.button("Use the sentence from the text page", on_click=_use_text_page_sentence)
    return text


@fragments.view("worked_real")
def real_view(tm, text: str) -> None:
    """Real mode below the sentence: layer, head, the check panel and the steps rerun together."""
    follow_link()  # the check panel's link to the text page is clicked inside this view
    shown = real_inputs(tm, text)
    if shown is not None:
        render(shown)


def real_inputs(tm, text: str) -> Shown | None:
    """Layer and head of the loaded model for ``text``; returns its steps, or None after saying why not."""
    stale = [
        (what, v, size)
        for what, key, size in (("Layer", LAYER, tm.n_layers), ("Head", HEAD, tm.n_heads))
        if (v := clamp(key, size)) is not None
    ]
    for what, value, size in stale:
        st.info(f"{what} {value} does not exist in this model ({size} in all, from 0); showing {what.lower()} 0.")
    c1, c2, c3, c4 = st.columns([1, 1, 1.5, 1.5])
    layer = c1.selectbox("Layer", range(tm.n_layers), key=LAYER)
    head = c2.selectbox("Head", range(tm.n_heads), key=HEAD)
    c3.toggle(
        "Show every dimension",
        key=SHOW_ALL,
        help=f"Matrices show their first {SUMMARY_DIMS} dimensions and {SUMMARY_TOKENS} tokens; switch on to draw "
        f"every dimension of up to {SHOW_ALL_TOKENS} tokens (numbers in cells only while they fit).",
    )
    c4.toggle(
        "A number in every cell",
        key=EVERY_NUMBER,
        help="Off: numbers only in the outlined rows, the ones the chosen weight comes from (row i of Q, the "
        "scores, the weights and the context; row j of K and V); the other cells show theirs on hover. On: a "
        "number in every cell, which takes the browser about a third longer to draw after each change.",
    )
    try:
        with device_notice(tm):
            steps = cached_explain_head(tm, text, layer, head)
    except InputError as exc:
        show_input_error(exc)
        return None
    except Exception as exc:  # a bug: keep the page alive, log the details
        show_unexpected(exc, "explaining the head")
        return None
    if steps.truncated:
        st.info(
            f"The sentence was cut to the model's limit of {len(steps.tokens)} tokens.", icon=":material/content_cut:"
        )
    check_panel(steps)
    show_all = bool(st.session_state.get(SHOW_ALL))
    return Shown(
        head=steps,
        tokens=steps.tokens,
        head_index=head,
        real=steps,
        max_dims=None if show_all else SUMMARY_DIMS,
        max_tokens=(SHOW_ALL_TOKENS if show_all else SUMMARY_TOKENS) if len(steps.tokens) > SUMMARY_TOKENS else None,
        numbers="all" if st.session_state.get(EVERY_NUMBER) else "followed",
    )


def check_panel(steps: HeadSteps) -> None:
    """The proof: the recomputed numbers against what the model itself produced."""
    with st.container(border=True):
        ok = max(steps.weights_error, steps.context_error, steps.norm_error) <= TOLERANCE
        n = len(steps.tokens)
        norm = f"max |recomputed {steps.norm.kind} − the model's| = {steps.norm_error:.1e}; " if steps.norm else ""
        message = (
            f"max |recomputed weights − the model's attention| = {steps.weights_error:.1e} over the "
            f"{n} × {n} weights of layer {steps.layer}, head {steps.head}; {norm}"
            f"max |recomputed context − the model's| = {steps.context_error:.1e} (tolerance {TOLERANCE:.0e})."
        )
        if ok:
            st.success(f"**✓ Same numbers as the model.** {message}", icon=":material/check_circle:")
        else:
            st.warning(f"**✗ The recomputation differs from the model.** {message}", icon=":material/error:")
        c1, c2, c3, c4 = st.columns([3, 2, 2, 2], vertical_alignment="bottom")
        c1.button(
            f"Open layer {steps.layer}, head {steps.head} on the text page",
            icon=":material/open_in_new:",
            on_click=_open_on_text_page,
            args=(steps.text, steps.layer, steps.head),
        )
        c2.download_button(
            "Every step (.npz)",
            lambda: steps_npz(steps, steps.tokens, model=steps.model_name, layer=steps.layer, head=steps.head),
            file_name=f"attnviz-worked-L{steps.layer}-H{steps.head}.npz",
            mime="application/octet-stream",
            icon=":material/download:",
            help="x, w_q, b_q, …, q, k, v, scores, scaled, masked, weights, context, tokens; load with numpy.load",
        )
        matrices = _matrices(steps)
        choice = c3.selectbox("Matrix as CSV", list(matrices), key=CSV_MATRIX, label_visibility="collapsed")
        m, rows, cols = matrices[choice]
        c4.download_button(
            f"{choice} as CSV",
            lambda: matrix_csv(m, rows, cols),
            file_name=f"attnviz-L{steps.layer}-H{steps.head}-{choice}.csv",
            mime="text/csv",
            icon=":material/table:",
        )
        figure_downloads(
            lambda fmt, paper: labelled_matrix_png(
                m,
                rows,
                cols,
                title=f"{choice} · layer {steps.layer}, head {steps.head} · {steps.model_name}",
                value_label=choice,
                annotate=True,
                fmt=fmt,
                paper=paper,
            ),
            stem=f"attnviz-L{steps.layer}-H{steps.head}-{choice}",
            key="worked_figure",
            label=f"{choice} figure",
            container=c4,
        )


def _matrices(h: HeadSteps) -> dict[str, tuple[np.ndarray, list[str], list[str]]]:
    tok, dm, dh = h.tokens, dims(h.d_model, "d"), dims(h.d_head, "d")
    decoder = {}
    if h.norm is not None:
        decoder["X_normed"] = (h.norm.normed, tok, dm)
    if h.rope is not None:
        pairs = [f"p{i}" for i in range(h.d_head // 2)]
        decoder |= {
            "Q_before_RoPE": (h.rope.q_before, tok, dh),
            "K_before_RoPE": (h.rope.k_before, tok, dh),
            "RoPE_angles": (h.rope.angles, tok, pairs),
        }
    return {
        "X": (h.x, tok, dm),
        **decoder,
        "W_Q": (h.w_q, dm, dh),
        "W_K": (h.w_k, dm, dh),
        "W_V": (h.w_v, dm, dh),
        "Q": (h.q, tok, dh),
        "K": (h.k, tok, dh),
        "V": (h.v, tok, dh),
        "scores": (h.scores, tok, tok),
        "weights": (h.weights, tok, tok),
        "context": (h.context, tok, dh),
        "share": (h.share, tok, dm),
    }
