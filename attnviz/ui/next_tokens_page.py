"""The next-tokens page (decoders): the model's most likely next tokens at any position of the
prompt, then generation, stepped through token by token with where each step looked.

A generation is asked for with a form (so a slider move does not start one) and kept under
:data:`REQUEST` with the prompt it continued; it is drawn only while the prompt is unchanged.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import streamlit as st

from attnviz import figures
from attnviz.errors import InputError
from attnviz.export import attention_npz
from attnviz.export.png import token_heads_png
from attnviz.figures.overlay import predictions_bar
from attnviz.text.extraction import TextAttention
from attnviz.text.generation import MAX_NEW_TOKENS, Generation
from attnviz.text.loading import BUNDLED_TEXT_MODELS, TextModel
from attnviz.text.views import make_view
from attnviz.ui.cache import cached_generation, cached_next_tokens
from attnviz.ui.figure_downloads import figure_downloads
from attnviz.ui.notices import device_notice
from attnviz.ui.safe import md_escape, show_input_error, show_unexpected
from attnviz.ui.state import keep_default

POSITION, TOP_K = "next_position", "next_top_k"
GEN_N, GEN_MODE, GEN_TEMPERATURE, GEN_TOP_K, GEN_SEED = "gen_n", "gen_mode", "gen_temperature", "gen_top_k", "gen_seed"
STEP, STEP_LAYER, STEP_HEAD, STEP_HIDE_FIRST = "gen_step", "gen_layer", "gen_head", "gen_hide_first"
REQUEST = "gen_request"  # the last generation asked for: a GenerationRequest
GREEDY, SAMPLE = "Greedy (most likely)", "Sample"
MEAN = "mean of heads"
#: Widgets whose value survives visits to other pages (app.py keeps them).
KEPT = (TOP_K, GEN_N, GEN_MODE, GEN_TEMPERATURE, GEN_TOP_K, GEN_SEED, STEP_LAYER, STEP_HEAD, STEP_HIDE_FIRST, REQUEST)


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    max_new_tokens: int
    temperature: float
    top_k: int | None
    seed: int


def needs_decoder(tm: TextModel) -> bool:
    """True (after saying what to do) when ``tm`` is an encoder, which predicts no next token."""
    if tm.causal:
        return False
    st.info(
        f"Next tokens and generation need a decoder language model; {md_escape(tm.name)} is an encoder. "
        f"Pick “Use bundled {md_escape(BUNDLED_TEXT_MODELS[1])} (decoder)” in the sidebar, or load a GPT-2, "
        "Llama or Qwen2 model there.",
        icon=":material/north_west:",
    )
    return True


def shown(token: str) -> str:
    """A token as a person can see it: line breaks and tabs as marks, a blank token as its spaces."""
    text = token.replace("\n", "↵").replace("\t", "⇥")
    return text if text.strip() else "␣" * max(1, len(text))


# ---------------------------------------------------------------- next tokens


def next_token_section(tm: TextModel, ta: TextAttention) -> None:
    st.subheader("Next token")
    c1, c2 = st.columns([3, 1])
    n = ta.n_tokens
    if not isinstance(st.session_state.get(POSITION), int) or not 0 <= st.session_state[POSITION] < n:
        st.session_state[POSITION] = n - 1  # default: after the whole prompt
    position = c1.selectbox(
        "After the token",
        range(n),
        key=POSITION,
        format_func=lambda i: f"{i}: {shown(ta.tokens[i])}" + ("  (the last)" if i == n - 1 else ""),
        help="The model reads the prompt up to this token and predicts the one after it.",
    )
    keep_default(TOP_K, 5)
    k = c2.number_input("How many", 1, 20, key=TOP_K, help="The k most likely next tokens.")
    try:
        with device_notice(tm):
            pairs = cached_next_tokens(tm, ta.text, int(k), int(position))
    except InputError as exc:
        show_input_error(exc)
        return
    except Exception as exc:  # a bug: a short message here, the traceback in the server log
        show_unexpected(exc, "predicting the next token")
        return
    prefix = "".join(ta.tokens[: position + 1])
    st.caption(
        md_escape(f"After “{prefix[-80:]}”, the model's probabilities for the next token (softmax of its logits).")
    )
    st.plotly_chart(
        predictions_bar([(shown(t), p) for t, p in pairs], k=len(pairs)), key="next_token_bars", width="stretch"
    )


# ---------------------------------------------------------------- generation


def _ask_generation(prompt: str) -> None:
    """Button callback: record the generation the settings ask for (it runs when the page draws it)."""
    sample = st.session_state[GEN_MODE] == SAMPLE
    st.session_state[REQUEST] = GenerationRequest(
        prompt=prompt,
        max_new_tokens=int(st.session_state[GEN_N]),
        temperature=float(st.session_state[GEN_TEMPERATURE]) if sample else 0.0,
        top_k=int(st.session_state[GEN_TOP_K]) if sample else None,
        seed=int(st.session_state[GEN_SEED]),
    )
    st.session_state[STEP] = 0


def generation_form(prompt: str) -> None:
    """Length and sampling settings, and the Generate button that records a request. A setting
    changed alone generates nothing: only the button does."""
    st.subheader("Generate")
    for key, value in ((GEN_N, 10), (GEN_MODE, GREEDY), (GEN_TEMPERATURE, 0.8), (GEN_TOP_K, 50), (GEN_SEED, 0)):
        keep_default(key, value)
    c1, c2, c3, c4, c5 = st.columns([2, 3, 2, 2, 2])
    c1.number_input(
        "New tokens", 1, MAX_NEW_TOKENS, key=GEN_N, help=f"At most {MAX_NEW_TOKENS}; fewer if the model ends."
    )
    sample = c2.radio("Choice", [GREEDY, SAMPLE], key=GEN_MODE, horizontal=True) == SAMPLE
    c3.number_input(
        "Temperature", 0.05, 5.0, step=0.05, key=GEN_TEMPERATURE, disabled=not sample, help="Higher: bolder choices."
    )
    c4.number_input("Top-k", 1, 1000, key=GEN_TOP_K, disabled=not sample, help="Choose among the k most likely.")
    c5.number_input("Seed", 0, 1_000_000, key=GEN_SEED, disabled=not sample, help="The same seed, the same text.")
    st.button(
        "Generate",
        key="generate",
        type="primary",
        icon=":material/play_arrow:",
        on_click=_ask_generation,
        args=(prompt,),
    )


def generation_result(tm: TextModel, prompt: str) -> Generation | None:
    """The generation asked for, if it continued this prompt (None after saying why there is none)."""
    request = st.session_state.get(REQUEST)
    if not isinstance(request, GenerationRequest) or request.prompt != prompt:
        st.caption("Press Generate to continue the prompt; then step through the new tokens.")
        return None
    try:
        with device_notice(tm):
            return cached_generation(
                tm, request.prompt, request.max_new_tokens, request.temperature, request.top_k, request.seed
            )
    except InputError as exc:
        show_input_error(exc)
    except Exception as exc:
        show_unexpected(exc, "generating")
    return None


def _tokens_html(tokens: list[str], weights: np.ndarray, n_prompt: int, chosen: int, hidden_first: bool) -> str:
    """The text so far as coloured tokens: each token's background is how much the step attended to it.

    Every token is HTML-escaped; the colours and borders are the only markup.
    """
    top = float(weights.max()) if weights.size else 1.0
    spans = []
    for i, token in enumerate(tokens):
        if i < len(weights):
            share = float(weights[i]) / top if top > 0 else 0.0
            style = f"background: rgba(33, 113, 181, {share:.3f}); color: {'white' if share > 0.6 else 'inherit'};"
            tip = f"weight {float(weights[i]):.3f}"
        else:
            style, tip = "", ""
        if i == 0 and hidden_first:
            style, tip = "background: #d9d9d9; color: #777;", "hidden (the attention sink)"
        if i >= n_prompt:
            style += " text-decoration: underline; text-decoration-color: #888;"
        if i == chosen:
            style += " outline: 2px solid #d62728; border-radius: 3px;"
            tip = "the token this step chose"
        text = html.escape(shown(token) if not token.strip() or "\n" in token else token)
        spans.append(f'<span title="{html.escape(tip)}" style="{style} white-space: pre-wrap;">{text}</span>')
    body = "".join(spans)
    return f'<div style="font-family: monospace; font-size: 15px; line-height: 1.9;">{body}</div>'


def step_through(gen: Generation) -> None:
    """The generated text, then one step at a time: which token it chose, and where it looked."""
    ended = " It ended on an end-of-sequence token." if gen.stopped_at_eos else ""
    how = (
        "greedy"
        if gen.temperature == 0
        else f"sampled at temperature {gen.temperature}, top-k {gen.top_k}, seed {gen.seed}"
    )
    st.caption(md_escape(f"{gen.n_generated} new tokens, {how}.{ended}"))
    st.text_area("Generated text", gen.text, height=90, disabled=True, key="gen_text_shown")
    n = gen.n_generated
    if not isinstance(st.session_state.get(STEP), int) or not 0 <= st.session_state[STEP] < n:
        st.session_state[STEP] = 0
    step = st.select_slider(
        "Step",
        options=list(range(n)),
        key=STEP,
        format_func=lambda s: f"{s + 1}: {shown(gen.generated_tokens[s])}",
        help="Each new token, in order: use the arrow keys to step.",
    )
    query = gen.step_query(step)
    chosen = gen.n_prompt + step
    c1, c2, c3 = st.columns([1, 1, 2])
    layers, heads = list(range(gen.n_layers)), [MEAN, *range(gen.n_heads)]
    if st.session_state.get(STEP_LAYER) not in layers:
        st.session_state[STEP_LAYER] = gen.n_layers - 1
    if st.session_state.get(STEP_HEAD) not in heads:
        st.session_state[STEP_HEAD] = MEAN
    layer = c1.selectbox("Layer", layers, key=STEP_LAYER)
    head = c2.selectbox("Head", heads, key=STEP_HEAD)
    keep_default(STEP_HIDE_FIRST, True)
    hide_first = c3.checkbox(
        "Hide the first token (renormalise)",
        key=STEP_HIDE_FIRST,
        help="The attention sink: most late-layer attention rests on the first token. Hidden, each row is "
        "divided by what it had left, so the rest is seen in proportion.",
    )
    row = gen.step_attention(step)[layer]  # (heads, query + 1)
    row = row.mean(axis=0) if head == MEAN else row[int(head)]
    if hide_first and len(row) > 1:
        kept = row[1:].sum()
        row = np.r_[0.0, row[1:] / kept] if kept > 0 else np.zeros_like(row)
    st.markdown(
        md_escape(
            f"Step {step + 1} chose “{shown(gen.generated_tokens[step])}” (probability {gen.probabilities[step]:.1%}), "
            f"reading from “{shown(gen.tokens[query])}”: layer {layer}, {head if head == MEAN else f'head {head}'}."
        )
    )
    st.html(_tokens_html(gen.tokens[: chosen + 1], row, gen.n_prompt, chosen, hide_first))
    st.caption(
        "Blue: how much this step attended to each token (darkest: the most). Underlined: generated tokens. "
        "Outlined: the token this step chose, which the step could not yet see."
    )
    view = make_view(gen, hide_first=hide_first)  # a generation is drawn like any decoder's attention
    q = query - 1 if hide_first else query
    st.plotly_chart(figures.token_heads(view, q), key="gen_step_heads", width="stretch")
    c1, c2, c3 = st.columns(3)
    figure_downloads(
        lambda fmt, paper: token_heads_png(view, q, fmt=fmt, paper=paper),
        stem=f"attnviz-generation-step{step + 1}",
        key="gen_step_figure",
        container=c3,
    )
    c1.download_button(
        "Generated text (.txt)", gen.text.encode("utf-8"), file_name="attnviz-generation.txt", mime="text/plain",
        icon=":material/description:", on_click="ignore",
    )  # fmt: skip
    c2.download_button(
        "All attention (.npz)",
        lambda: attention_npz(gen),
        file_name="attnviz-generation.npz",
        mime="application/octet-stream",
        icon=":material/download:",
        help="weights [layers, heads, n, n] over the prompt and the generated tokens, and the tokens",
    )
