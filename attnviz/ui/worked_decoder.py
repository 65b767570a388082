"""The worked example's steps for a decoder head (GPT-2, Llama, Qwen2, the bundled SmolLM2).

A decoder head has three steps an encoder's lacks, drawn here from the :class:`HeadSteps` that
:func:`attnviz.explain_head` returns: the pre-attention norm, the RoPE rotation (or, for
GPT-2, a note that positions were added to the embeddings), and the causal mask. The
projections also say which key/value head this query head shares. The steps they have in
common (scores, scaling, softmax, ·V, output) come from :mod:`attnviz.ui.worked_steps`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from attnviz.figures import steps as figs
from attnviz.maths.norms import RMS_NORM
from attnviz.maths.toy_presets import dims
from attnviz.ui.worked_steps import (
    Shown,
    _chart,
    _num,
    _shape,
    _tok,
    cell_picker,
    step_context,
    step_output,
    step_scaling,
    step_scores,
    step_softmax,
    summary_caption,
    weights_expander,
)

#: Largest max |recomputed norm − the model's| that the norm step calls equal.
NORM_TOLERANCE = 1e-5


def rope_pairs_shown(half: int) -> list[int]:
    """Which pairs the angle picture draws: the two fastest, one in between, the slowest."""
    return sorted({0, min(1, half - 1), half // 4, half - 1})


def step_norm(s: Shown, i: int, no: int) -> None:
    r = s.real
    norm = r.norm
    st.subheader(f"{no}. The layer's input, normalised first: {norm.kind}")
    if norm.kind == RMS_NORM:
        st.latex(
            r"\hat x = \frac{x}{\operatorname{rms}(x)} \odot g,\qquad "
            r"\operatorname{rms}(x) = \sqrt{\tfrac{1}{d}\textstyle\sum_k x_k^2 + \varepsilon}"
        )
    else:
        st.latex(
            r"\hat x = \frac{x - \mu}{\sigma} \odot g + b,\qquad \mu = \tfrac{1}{d}\textstyle\sum_k x_k,\quad "
            r"\sigma = \sqrt{\tfrac{1}{d}\textstyle\sum_k (x_k - \mu)^2 + \varepsilon}"
        )
    st.caption(f"X ({_shape(r.x)}) → X̂ ({_shape(norm.normed)}), one row (token) at a time; ε = {norm.eps:.0e}")
    source = "the embeddings" if r.layer == 0 else f"layer {r.layer - 1}'s output"
    positions = " plus the learned position vectors" if r.rope is None and r.layer == 0 else ""
    st.caption(f"X is the hidden state entering layer {r.layer}: {source}{positions}, one row per token.")
    kw = dict(row_labels=s.tokens, max_rows=s.max_tokens, max_cols=s.max_dims, rows_highlighted=(i,), numbers=s.numbers)
    _chart(figs.matrix(r.x, "X, the layer's input", **kw), "worked_x")
    d = r.d_model
    if norm.kind == RMS_NORM:
        st.latex(
            rf"\operatorname{{rms}}(x_{{{i}}}) = \sqrt{{\tfrac{{1}}{{{d}}}\left({_num(r.x[i, 0], 3)}^2 + "
            rf"{_num(r.x[i, 1], 3)}^2 + \dots\right) + \varepsilon}} = {_num(norm.spread[i], 4)}"
        )
        st.latex(
            rf"\hat x_{{{i},0}} = \frac{{{_num(r.x[i, 0], 3)}}}{{{_num(norm.spread[i], 4)}}}\cdot "
            rf"{_num(norm.weight[0], 3)} = {_num(norm.normed[i, 0], 4)}"
        )
    else:
        st.latex(
            rf"\mu_{{{i}}} = {_num(norm.centre[i], 4)},\quad \sigma_{{{i}}} = {_num(norm.spread[i], 4)},\quad "
            rf"\hat x_{{{i},0}} = \frac{{{_num(r.x[i, 0], 3)} - {_num(norm.centre[i], 4)}}}"
            rf"{{{_num(norm.spread[i], 4)}}}\cdot {_num(norm.weight[0], 3)} + {_num(norm.bias[0], 3)} "
            rf"= {_num(norm.normed[i, 0], 4)}"
        )
    _chart(figs.matrix(norm.normed, "X̂ = norm(X): what the projections read", **kw), "worked_normed")
    with st.expander(f"The learned gain g{' and bias b' if norm.kind != RMS_NORM else ''} ({d} numbers each)"):
        _chart(
            figs.matrix(norm.weight[None, :], "g", col_labels=dims(d, "d"), max_cols=s.max_dims),
            "worked_gain",
        )
    centring = "" if norm.kind == RMS_NORM else "minus its mean "
    check = "✓ the model's own norm gives the same" if r.norm_error <= NORM_TOLERANCE else "✗ the model's norm differs"
    st.markdown(
        f"A decoder normalises *before* attention (pre-norm; BERT normalises after). Each token's vector "
        f"{centring}is divided by its {'root mean square' if norm.kind == RMS_NORM else 'standard deviation'} "
        f"({norm.spread[i]:.3f} for {_tok(s.tokens[i])}), then each dimension is multiplied by a learned gain. "
        f"X itself is kept for the residual. ({check}: max difference {r.norm_error:.1e}.)"
    )


def step_projections(s: Shown, i: int, j: int, no: int) -> None:
    r = s.real
    st.subheader(f"{no}. Queries, keys and values from X̂")
    st.latex(r"Q = \hat X W_Q + b_Q,\qquad K = \hat X W_K + b_K,\qquad V = \hat X W_V + b_V")
    st.caption(
        f"X̂ ({_shape(r.x)}) · W_Q ({_shape(r.w_q)}) → Q ({_shape(r.q)}); the same for K and V "
        f"(head size d = {r.d_head})."
    )
    group = r.n_heads // max(1, r.n_kv_heads)
    kv_cols = f"{r.kv_head * r.d_head}–{(r.kv_head + 1) * r.d_head - 1}"
    if group > 1:
        others = [h for h in r.sharing_heads if h != r.head]
        st.info(
            f"**Grouped-query attention.** This layer has {r.n_heads} query heads but only {r.n_kv_heads} key/value "
            f"heads: each key/value head serves {group} query heads. Query head {r.head} reads key/value head "
            f"**{r.kv_head}** (kv = {r.head} // {group}), which query heads {', '.join(map(str, others))} read too: "
            "their K and V are these, only Q differs.",
            icon=":material/share:",
        )
    if r.model_type == "gpt2":
        st.caption(
            "GPT-2 keeps W_Q, W_K and W_V side by side in one matrix (c_attn, stored inputs × outputs): "
            f"this head's are its columns {r.head * r.d_head}–{(r.head + 1) * r.d_head - 1} of each third."
        )
    shared = f" (key/value head {r.kv_head})" if group > 1 else ""
    box, is_open = weights_expander(
        f"This head's weights: columns {r.head * r.d_head}–{(r.head + 1) * r.d_head - 1} of W_Q, "
        f"columns {kv_cols} of W_K and W_V{shared}"
    )
    with box:
        for col, (name, w, b) in zip(
            st.columns(3) if is_open else (),
            (("W_Q", r.w_q, r.b_q), ("W_K", r.w_k, r.b_k), ("W_V", r.w_v, r.b_v)),
            strict=False,
        ):
            with col:
                fig = figs.matrix(w, name, max_rows=s.max_dims, max_cols=s.max_dims, printed_cols=8)
                _chart(fig, f"worked_{name}", stretch=True)
                _chart(
                    figs.matrix(b[None, :], f"b{name[1:]}", max_cols=s.max_dims, printed_cols=8),
                    f"worked_b{name[1:]}",
                    stretch=True,
                )
        if not (np.any(r.b_q) or np.any(r.b_k) or np.any(r.b_v)):
            st.caption("This model's projections have no biases (all b are 0).")
    rotated = " (before any rotation)" if r.rope is not None else ""
    kw = dict(max_rows=s.max_tokens, max_cols=s.max_dims, row_labels=s.tokens, col_labels=dims(r.d_head, "d"))
    for col, (name, m, row) in zip(
        st.columns(3), (("Q", r.q_unrotated, i), ("K", r.k_unrotated, j), ("V", r.v, j)), strict=True
    ):
        with col:
            title = f"{name}{rotated if name != 'V' else ''}"
            _chart(
                figs.matrix(m, title, rows_highlighted=(row,), numbers=s.numbers, printed_cols=8, **kw),
                f"worked_{name.lower()}",
            )
    st.markdown(
        f"Outlined: q_{i} (row {i} of Q), and k_{j}, v_{j} (row {j} of K and V), the rows behind the weight you follow."
    )


def step_positions(s: Shown, i: int, j: int, no: int) -> None:
    r = s.real
    rope = r.rope
    if rope is None:
        st.subheader(f"{no}. Positions: already in X")
        st.markdown(
            "This model has no rotary embedding: a learned position vector was **added** to each token's embedding "
            "before layer 0 (GPT-2's `wpe`), so every layer's X already carries the positions. Q and K are used as "
            "projected."
        )
        return
    half = r.d_head // 2
    st.subheader(f"{no}. RoPE: queries and keys turned by their positions")
    st.latex(
        r"\theta_p = b^{-2p/d},\qquad \begin{pmatrix} q'_{m,p} \\ q'_{m,p+d/2} \end{pmatrix} = "
        r"\begin{pmatrix} \cos m\theta_p & -\sin m\theta_p \\ \sin m\theta_p & \cos m\theta_p \end{pmatrix}"
        r"\begin{pmatrix} q_{m,p} \\ q_{m,p+d/2} \end{pmatrix}"
    )
    st.caption(
        f"Q, K ({_shape(r.q)}) → Q′, K′ ({_shape(r.q)}); base b = rope_theta = {rope.base:g}, d = {r.d_head}, "
        f"{half} pairs; dimension p turns together with dimension p + {half} (transformers' rotate_half)."
    )
    phi = rope.angles[i, 0]
    a, b = r.q_unrotated[i, 0], r.q_unrotated[i, half]
    st.latex(
        rf"q'_{{{i},0}} = {_num(a, 3)}\cos({_num(phi, 3)}) - {_num(b, 3)}\sin({_num(phi, 3)}) = {_num(r.q[i, 0], 4)}"
        rf",\qquad m\theta_0 = {i}\cdot 1 = {_num(phi, 3)}\text{{ rad}}"
    )
    _chart(
        figs.rope_angles(rope.angles, s.tokens, rope.inv_freq, max_tokens=s.max_tokens, rows_highlighted=(i, j)),
        "worked_rope_angles",
        stretch=True,
    )
    pairs = rope_pairs_shown(half)
    vectors = [
        (f"q_{i}", r.q_unrotated[i], r.q[i], rope.angles[i]),
        (f"k_{j}", r.k_unrotated[j], r.k[j], rope.angles[j]),
    ]
    st.markdown(
        f"The angle picture: pairs {', '.join(map(str, pairs))} of q_{i} (position {i}) and k_{j} (position {j}), "
        "grey as projected, red after the turn."
    )
    _chart(figs.rope_pairs(vectors, pairs), "worked_rope_pairs", stretch=True)
    kw = dict(max_rows=s.max_tokens, max_cols=s.max_dims, row_labels=s.tokens, col_labels=dims(r.d_head, "d"))
    c1, c2 = st.columns(2)
    with c1:
        _chart(
            figs.matrix(r.q, "Q′ (rotated)", rows_highlighted=(i,), numbers=s.numbers, printed_cols=8, **kw),
            "worked_q_rot",
            True,
        )
    with c2:
        _chart(
            figs.matrix(r.k, "K′ (rotated)", rows_highlighted=(j,), numbers=s.numbers, printed_cols=8, **kw),
            "worked_k_rot",
            True,
        )
    st.markdown(
        f"The first pair turns 1 radian per position, the last only {rope.inv_freq[-1]:.1e}: fast pairs tell near "
        "tokens apart, slow ones far ones. A turn keeps each pair's length, and turning q by m·θ and k by n·θ "
        f"leaves q′·k′ depending on the positions only through m − n: the score of step {no + 1} sees that token "
        f"{j} is {i - j} position(s) before token {i}, whatever their absolute places."
        if i >= j
        else f"The first pair turns 1 radian per position, the last only {rope.inv_freq[-1]:.1e}. A turn keeps each "
        "pair's length, and q′·k′ depends on the positions only through m − n."
    )


def step_causal_mask(s: Shown, i: int, no: int) -> None:
    r = s.real
    st.subheader(f"{no}. The causal mask: no looking ahead")
    window = r"\text{ and } i - j < w" if r.window is not None else ""
    st.latex(
        rf"M_{{ij}} = \begin{{cases}} S'_{{ij}} & \text{{if }} j \le i{window} \\ -\infty & "
        r"\text{otherwise (a later token)} \end{cases}"
    )
    st.caption(f"S′ ({_shape(r.scaled)}) → M ({_shape(r.masked)}): everything above the diagonal becomes −∞")
    _chart(
        figs.matrix(
            r.masked,
            "Masked scores M",
            row_labels=s.tokens,
            col_labels=s.tokens,
            max_rows=s.max_tokens,
            max_cols=s.max_tokens,
            rows_highlighted=(i,),
            numbers=s.numbers,
            y_title="query i",
        ),
        "worked_masked",
    )
    seen = int(r.visible[i].sum())
    later = len(s.tokens) - 1 - i
    slide = (
        f" This layer also slides: a query sees at most the last {r.window} keys, itself included."
        if r.window is not None
        else ""
    )
    st.markdown(
        f"A decoder predicts each next token from the ones before it, so token i may not read tokens after it. "
        f"Row {i} ({_tok(s.tokens[i])}) keeps its {seen} score(s) for keys up to {i}; the {later} later key(s) get "
        f"−∞, so e^−∞ = 0 after the softmax: their weight is exactly 0, not just small. The first token can only "
        f"attend to itself, so its row of weights is 1, 0, 0, ….{slide}"
    )


def render_decoder(s: Shown) -> None:
    """Every step of a decoder head, in order, following one chosen weight."""
    summary_caption(s)
    i, j = cell_picker(s)
    step_norm(s, i, 1)
    step_projections(s, i, j, 2)
    step_positions(s, i, j, 3)
    step_scores(s, i, j, 4)
    step_scaling(s, i, 5)
    step_causal_mask(s, i, 6)
    step_softmax(s, i, j, 7)
    step_context(s, i, 8)
    step_output(s, 9)
