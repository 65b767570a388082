"""The worked example's seven steps, drawn for one head (:class:`Shown`) and one chosen weight.

Each step is a section: the formula (``st.latex``, numbers only, never user text), the matrix
as an annotated heatmap (:mod:`attnviz.figures.steps`), the shapes, and a sentence or two
whose facts (which token scores highest, what a row sums to) are computed, not typed. The
chosen weight, query row i and key column j, is outlined in every matrix it comes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from attnviz.figures import steps as figs
from attnviz.maths.qkv import AttentionSteps, OneHead, entropy_bits, softmax_at, softmax_row
from attnviz.maths.toy_presets import dims
from attnviz.ui.safe import md_escape

if TYPE_CHECKING:  # imports PyTorch: toy mode draws these steps without it (attnviz.ui.worked_toy)
    from attnviz.text.worked_example import HeadSteps

QUERY, KEY, DIVISOR = "worked_query", "worked_key", "worked_divisor"
WEIGHTS_CHART = "worked_weights_chart"
#: The expander of a head's W_Q, W_K, W_V: its charts are drawn only while it is open.
WEIGHTS_OPEN = "worked_weights_open"
_CELL_FOR = "worked_cell_for"  # the tokens the chosen cell belongs to
#: Set by a shared link that names the cell (attnviz.ui.links): keep it for the link's tokens.
LINKED_CELL = "worked_linked_cell"
#: Real-model matrices are summarised to this many dimensions and tokens unless "show all" is on.
SUMMARY_DIMS, SUMMARY_TOKENS = 8, 24
#: Even "show all" draws at most this many tokens: 512 tokens sent 7.8 MB of charts, 128 send ~1.3 MB.
SHOW_ALL_TOKENS = 128
#: Divisors offered by the scale control, as multiples of √d_k (1 = no scaling at all).
DIVISORS = {
    "√d_k / 4": 0.25,
    "√d_k / 2": 0.5,
    "1 (no scaling)": None,
    "√d_k (the model)": 1.0,
    "2 √d_k": 2.0,
    "4 √d_k": 4.0,
}


@dataclass(frozen=True)
class Shown:
    """What the steps draw: one head's intermediates and how to label them.

    ``toy`` holds every head (toy mode); ``real`` the model's head with its check (real mode).
    ``max_dims``/``max_tokens``: how much of each matrix to draw (None: all).
    ``numbers``: which cells print their number (real mode: the followed rows unless every cell is asked for).
    """

    head: OneHead
    tokens: list[str]
    head_index: int
    toy: AttentionSteps | None = None
    real: HeadSteps | None = None
    max_dims: int | None = None
    max_tokens: int | None = None
    #: "all": a number in every cell of a matrix (while they fit); "followed": only in the rows the
    #: chosen weight comes from (figures.steps.matrix's ``numbers``).
    numbers: str = "all"

    @property
    def n(self) -> int:
        return len(self.tokens)


def clamp(key: str, size: int, default: int = 0) -> int | None:
    """Keep a stored index valid; returns the stale value when it had to be replaced."""
    value = st.session_state.get(key)
    if isinstance(value, int) and 0 <= value < size:
        return None
    st.session_state[key] = max(0, min(default, size - 1))
    return value if isinstance(value, int) else None


# ---------------------------------------------------------------- the steps


def _on_weights_click() -> None:
    points = st.session_state[WEIGHTS_CHART]["selection"]["points"]
    if points:
        st.session_state[QUERY] = int(round(points[0]["y"]))
        st.session_state[KEY] = int(round(points[0]["x"]))


def strongest_off_diagonal(weights: np.ndarray) -> tuple[int, int]:
    """(query i, key j) of the largest weight with i != j in ``weights`` (n, n), n >= 2."""
    w = np.array(weights, dtype=float)
    np.fill_diagonal(w, -np.inf)
    i, j = np.unravel_index(int(np.argmax(w)), w.shape)
    return int(i), int(j)


def cell_picker(shown: Shown) -> tuple[int, int]:
    """The weight followed through every step: query row i and key column j."""
    n, w = shown.n, shown.head.weights
    clamp(QUERY, n, default=1)  # the first word after [CLS]
    key = st.session_state.get(KEY)
    tokens = (shown.real is not None, tuple(shown.tokens))
    if st.session_state.pop(LINKED_CELL, False) and isinstance(key, int) and 0 <= key < n:
        st.session_state[_CELL_FOR] = tokens  # the cell a link named: not replaced by a default
    if st.session_state.get(_CELL_FOR) != tokens or not (isinstance(key, int) and 0 <= key < n):
        # New tokens (kept while only layer or head change). The model's head starts on its strongest
        # weight between two different tokens: a row's largest is often a faint [SEP] weight or the token
        # itself. The toy starts on the key its first word attends to most.
        st.session_state[_CELL_FOR] = tokens
        if shown.real is not None and n > 1:
            st.session_state[QUERY], st.session_state[KEY] = strongest_off_diagonal(w)
        else:
            st.session_state[KEY] = int(np.argmax(w[st.session_state[QUERY]]))
    label = lambda i: f"{i}: {shown.tokens[i]}"  # noqa: E731
    c1, c2, c3 = st.columns([2, 2, 3])
    i = c1.selectbox("Query token i (a row)", range(n), key=QUERY, format_func=label)
    j = c2.selectbox("Key token j (a column)", range(n), key=KEY, format_func=label)
    c3.markdown(
        f"Following the weight of query {_tok(shown.tokens[i])} (i = {i}) on key "
        f"{_tok(shown.tokens[j])} (j = {j}): **{w[i, j]:.4f}**. Its rows are outlined in every matrix; "
        "hover a cell of the weights for its origin, or click one to follow it."
    )
    return i, j


def weights_expander(label: str):
    """The expander of the head's projection matrices, and whether it is open.

    Its six charts are built and sent only while it is open: opening or closing it reruns the
    view (``on_change="rerun"``), so a closed expander costs nothing on every other change.
    """
    box = st.expander(label, key=WEIGHTS_OPEN, on_change="rerun")
    return box, bool(st.session_state.get(WEIGHTS_OPEN))


def _chart(fig, key: str, stretch: bool = False) -> None:
    """Small matrices keep their own width (cells of one size); charts in columns or wider than the page stretch."""
    stretch = stretch or (fig.layout.width or 0) > 1000
    st.plotly_chart(fig, key=key, width="stretch" if stretch else "content", config={"displayModeBar": False})


def _tok(token: str) -> str:
    """A token inside a Markdown sentence: quoted (a lone "'" or "." stays visible) and escaped."""
    return f"**“{md_escape(token)}”**"


def _shape(m: np.ndarray) -> str:
    return " × ".join(str(s) for s in np.shape(m))


def _num(v: float, digits: int = 2) -> str:
    """A number for LaTeX: fixed digits, scientific past 1e5, parentheses around negatives."""
    if not math.isfinite(v):
        return r"-\infty" if v < 0 else r"\infty"
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** (-digits)):
        mant, exp = f"{v:.{digits + 1}e}".split("e")
        s = rf"{mant}\times10^{{{int(exp)}}}"
    else:
        s = f"{v:.{digits}f}"
    return f"({s})" if v < 0 else s


def _terms(a: np.ndarray, b: np.ndarray) -> str:
    """``a·b`` written out: every product while short, else the first few and the last."""
    parts = [f"{_num(x, 3)}\\cdot{_num(y, 3)}" for x, y in zip(a, b, strict=True)]
    limit = 4 if len(parts) <= 8 else 2  # a 32-term dot product must still fit one line
    if len(parts) > limit + 1:
        parts = [*parts[:limit], r"\dots", parts[-1]]
    return " + ".join(parts)


def step_projections(s: Shown, i: int, j: int, no: int = 1) -> None:
    h = s.head
    st.subheader(f"{no}. Queries, keys and values: Q = XW_Q + b_Q")
    st.latex(r"Q = XW_Q + b_Q,\qquad K = XW_K + b_K,\qquad V = XW_V + b_V")
    st.caption(
        f"X ({_shape(h.x)}) · W_Q ({_shape(h.w_q)}) + b_Q ({h.d_head}) → Q ({_shape(h.q)}); the same for K and V."
    )
    st.markdown(
        "Every token's vector (a row of X) is multiplied by the same three matrices. Row i of Q is what token i "
        "*looks for*, row j of K is what token j *offers*, and row j of V is what token j *passes on* if attended to."
    )
    d_labels, toks = dims(h.d_head, "d"), s.tokens
    kw = dict(max_rows=s.max_tokens, max_cols=s.max_dims, row_labels=toks, col_labels=d_labels)
    if s.real is not None:
        source = "the embeddings" if s.real.layer == 0 else f"layer {s.real.layer - 1}'s output"
        st.caption(f"X is the hidden state entering layer {s.real.layer}: {source}, one row per token.")
        _chart(figs.matrix(h.x, "X", row_labels=toks, max_rows=s.max_tokens, max_cols=s.max_dims), "worked_x")
        box, is_open = weights_expander(
            f"This head's weights: columns {s.head_index * h.d_head}–{(s.head_index + 1) * h.d_head - 1} "
            "of the layer's W_Q, W_K, W_V"
        )
        with box:
            cols = st.columns(3) if is_open else ()
            for col, (name, w, b) in zip(
                cols, (("W_Q", h.w_q, h.b_q), ("W_K", h.w_k, h.b_k), ("W_V", h.w_v, h.b_v)), strict=False
            ):
                with col:
                    _chart(
                        figs.matrix(w, name, max_rows=s.max_dims, max_cols=s.max_dims, printed_cols=8),
                        f"worked_{name}",
                        stretch=True,
                    )
                    _chart(
                        figs.matrix(b[None, :], f"b{name[1:]}", max_cols=s.max_dims, printed_cols=8),
                        f"worked_b{name[1:]}",
                        stretch=True,
                    )
    cols = st.columns(3)
    for col, (name, m, row) in zip(cols, (("Q", h.q, i), ("K", h.k, j), ("V", h.v, j)), strict=True):
        with col:
            _chart(
                figs.matrix(m, name, rows_highlighted=(row,), numbers=s.numbers, printed_cols=8, **kw),
                f"worked_{name.lower()}",
                stretch=True,
            )
    st.markdown(
        f"Outlined: q_{i} (row {i} of Q), and k_{j}, v_{j} (row {j} of K and V), the rows behind the weight you follow."
    )


def step_scores(s: Shown, i: int, j: int, no: int = 2) -> None:
    h = s.head
    st.subheader(f"{no}. Scores: QKᵀ")
    st.latex(r"S = QK^\top,\qquad S_{ij} = q_i\cdot k_j = \sum_{d} q_{i,d}\,k_{j,d}")
    st.caption(f"Q ({_shape(h.q)}) · Kᵀ ({h.d_head} × {h.n_tokens}) → S ({_shape(h.scores)})")
    st.latex(rf"S_{{{i},{j}}} = q_{{{i}}}\cdot k_{{{j}}} = {_terms(h.q[i], h.k[j])} = {_num(h.scores[i, j], 3)}")
    _chart(
        figs.matrix(
            h.scores,
            "Scores S (row i: query, column j: key)",
            row_labels=s.tokens,
            col_labels=s.tokens,
            max_rows=s.max_tokens,
            max_cols=s.max_tokens,
            cell=(i, j),
            rows_highlighted=(i,),
            numbers=s.numbers,
            y_title="query i",
        ),
        "worked_scores",
    )
    best = int(np.argmax(np.where(visible_row(h, i), h.scores[i], -np.inf)))
    among = f" among the keys it may see (0 to {i})" if _causal(s) else ""
    st.markdown(
        f"Each score is one dot product: large when q_i and k_j point the same way. "
        f"In row {i}, {_tok(s.tokens[i])} scores highest{among} with {_tok(s.tokens[best])} "
        f"({h.scores[i, best]:.2f})."
    )


def step_scaling(s: Shown, i: int, no: int = 3) -> None:
    h = s.head
    root = math.sqrt(h.d_head)
    st.subheader(f"{no}. Scaling by √d_k")
    usual = abs(h.scale * root - 1) < 1e-6
    factor = rf"\frac{{1}}{{\sqrt{{{h.d_head}}}}} = {h.scale:.4f}" if usual else f"{h.scale:.6f}"
    st.latex(rf"S' = S \cdot {factor}")
    st.caption(f"S ({_shape(h.scores)}) × {h.scale:.4f} → S′ ({_shape(h.scaled)}); d_k = d_head = {h.d_head}")
    if not usual:
        st.info(f"This model multiplies the scores by {h.scale:.6f}, not by 1/√{h.d_head}; the page uses its factor.")
    _chart(
        figs.matrix(
            h.scaled,
            "Scaled scores S′",
            row_labels=s.tokens,
            col_labels=s.tokens,
            max_rows=s.max_tokens,
            max_cols=s.max_tokens,
            rows_highlighted=(i,),
            numbers=s.numbers,
            y_title="query i",
        ),
        "worked_scaled",
    )
    st.markdown(
        f"A dot product of {h.d_head} terms grows with d_k; dividing by √d_k = {root:.2f} keeps the scores in a "
        f"range where the softmax of step {no + 2} is not all-or-nothing. Try other divisors for row "
        f"{i} ({_tok(s.tokens[i])}):"
    )
    labels = list(DIVISORS)
    if st.session_state.get(DIVISOR) not in labels:
        st.session_state[DIVISOR] = "√d_k (the model)"
    chosen = st.select_slider("Divide the scores by", labels, key=DIVISOR)
    base = 1.0 / h.scale  # what the model divides by (√d_k for BERT)
    divisor = 1.0 if DIVISORS[chosen] is None else DIVISORS[chosen] * base
    raw = np.where(visible_row(h, i), h.scores[i], -np.inf)
    model_p, chosen_p = softmax_at(raw, 1 / base), softmax_at(raw, 1 / divisor)
    bars = {f"÷ {base:.2f} (the model)": model_p}
    if divisor != base:
        bars["÷ 1 (no scaling)" if DIVISORS[chosen] is None else f"÷ {divisor:.2f} ({chosen})"] = chosen_p
    _chart(figs.softmax_scales(bars, s.tokens[: len(raw)], f"Row {i}: weights at two scales"), "worked_scale_bars")
    uniform = math.log2(max(1, int(visible_row(h, i).sum())))
    if divisor == base:
        st.markdown(
            f"At the model's scale the largest weight of row {i} is {model_p.max():.3f} and the row's spread is "
            f"{entropy_bits(model_p):.2f} bits (0 = all on one key, {uniform:.2f} = uniform). Move the slider: a "
            "smaller divisor sharpens the row, a larger one flattens it."
        )
    else:
        trend = "sharper" if divisor < base else "flatter"
        st.markdown(
            f"Dividing by {divisor:.2f} instead of {base:.2f}: the row is **{trend}**; its largest weight is "
            f"{chosen_p.max():.3f} (model: {model_p.max():.3f}) and its spread is {entropy_bits(chosen_p):.2f} bits "
            f"(model: {entropy_bits(model_p):.2f}; 0 = all on one key, {uniform:.2f} = uniform). "
            "The steps below use the model's divisor."
        )


def step_mask(s: Shown, i: int, no: int = 4) -> None:
    h = s.head
    st.subheader(f"{no}. The mask")
    st.latex(
        r"M_{ij} = \begin{cases} S'_{ij} & \text{if token } j \text{ is real} \\ -\infty & "
        r"\text{if token } j \text{ is padding} \end{cases}"
    )
    pads = [t for t, m in zip(s.tokens, h.mask, strict=True) if not m]
    if not pads:
        st.markdown(
            "No token is padding here, so M = S′. (In a batch, shorter sentences are padded to the longest; "
            "their padding keys get −∞, so e^−∞ = 0 in the softmax: no query attends to them.)"
            + (" One sentence on its own never needs padding." if s.real is not None else "")
        )
        return
    _chart(
        figs.matrix(
            h.masked,
            "Masked scores M",
            row_labels=s.tokens,
            col_labels=s.tokens,
            rows_highlighted=(i,),
            numbers=s.numbers,
            y_title="query i",
        ),
        "worked_masked",
    )
    st.markdown(
        f"{len(pads)} padding token(s) ({', '.join(md_escape(t) for t in pads)}): their columns become −∞, so after "
        "the softmax they get weight 0 in every row. Their own rows are still computed (and ignored later)."
    )


def step_softmax(s: Shown, i: int, j: int, no: int = 5) -> None:
    h = s.head
    st.subheader(f"{no}. Softmax: each row becomes weights that sum to 1")
    st.latex(r"A_{ij} = \frac{e^{M_{ij}}}{\sum_{k} e^{M_{ik}}}")
    st.caption(f"M ({_shape(h.masked)}) → A ({_shape(h.weights)}), row by row")
    visible = s.real.visible if _causal(s) else None  # a decoder's later keys: grey, as on the text page
    fig = figs.weights(h.weights, s.tokens, query=i, key=j, max_tokens=s.max_tokens, visible=visible, numbers=s.numbers)
    clickable = fig.layout.clickmode == "event+select"  # the click layer is there (up to MAX_CLICKABLE tokens)
    st.plotly_chart(
        fig,
        key=WEIGHTS_CHART,
        width="content",
        config={"displayModeBar": False},
        **({"on_select": _on_weights_click, "selection_mode": "points"} if clickable else {}),
    )
    row = softmax_row(h.masked[i])
    shifted = row.shift != 0
    e = (lambda m: rf"e^{{{_num(m, 4)} - {_num(row.shift, 4)}}}") if shifted else (lambda m: rf"e^{{{_num(m, 4)}}}")
    real = [k for k in range(len(row.scores)) if np.isfinite(row.scores[k])]
    shown = real if len(real) <= 6 else [*real[:4], None, real[-1]]
    st.markdown(f"Row {i}, {_tok(s.tokens[i])}, worked through: exp of each score, their sum Σ, each division.")
    terms = " + ".join(r"\dots" if k is None else e(row.scores[k]) for k in shown)
    values = " + ".join(r"\dots" if k is None else _num(row.exps[k], 3) for k in shown)
    st.latex(rf"\Sigma = {terms} = {values} = {_num(row.total, 3)}")
    st.latex(
        rf"A_{{{i},{j}}} = \frac{{{e(row.scores[j]) if np.isfinite(row.scores[j]) else '0'}}}{{\Sigma}} = "
        rf"\frac{{{_num(row.exps[j], 3)}}}{{{_num(row.total, 3)}}} = {_num(row.weights[j], 4)}"
    )
    exp_name = "e^(M_ij − max)" if shifted else "e^M_ij"
    table = {"j": range(len(row.scores)), "key token": s.tokens, "M_ij": row.scores, exp_name: row.exps}
    table["÷ Σ = A_ij"] = row.weights
    number, big = st.column_config.NumberColumn(format="%.4f"), st.column_config.NumberColumn(format="%.4e")
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=min(400, 35 * (len(row.scores) + 1) + 3),
        column_config={"M_ij": number, exp_name: number if row.exps.max() < 1e5 else big, "÷ Σ = A_ij": number},
    )
    note = f" (every score minus the row's largest, {row.shift:.2f}, so that e^M stays finite)" if shifted else ""
    st.markdown(
        f"Σ = {row.total:.4g}{note}. The row sums to **{row.weights.sum():.6f}** ✓. The largest weight goes to "
        f"{_tok(s.tokens[int(np.argmax(row.weights))])} ({row.weights.max():.3f}); "
        + ("the keys after it (−∞) get exactly 0." if _causal(s) else "padding gets exactly 0.")
    )


def step_context(s: Shown, i: int, no: int = 6) -> None:
    h = s.head
    st.subheader(f"{no}. Weighted values: context = A V")
    st.latex(r"Z = AV,\qquad z_i = \sum_j A_{ij}\, v_j")
    st.caption(f"A ({_shape(h.weights)}) · V ({_shape(h.v)}) → Z ({_shape(h.context)})")
    kw = dict(row_labels=s.tokens, col_labels=dims(h.d_head, "d"), max_rows=s.max_tokens, max_cols=s.max_dims)
    _chart(figs.matrix(h.context, "Context Z", rows_highlighted=(i,), numbers=s.numbers, **kw), "worked_context")
    order = np.argsort(-h.weights[i])
    top = [k for k in order[:3] if h.weights[i, k] > 0]
    rest = 1.0 - float(h.weights[i, top].sum())
    parts = " + ".join(f"{h.weights[i, k]:.2f} × v_{k} ({md_escape(s.tokens[k])})" for k in top)
    others = h.n_tokens - len(top)
    more = f" + the other {others} row{'s' * (others > 1)} with weight {rest:.2f} in all" if others else ""
    st.markdown(
        f"Row {i} of Z is an average of the value rows, weighted by row {i} of A: z_{i} = {parts}{more}. "
        "This is what the head passes on for that token."
    )


def step_output(s: Shown, no: int = 7) -> None:
    h = s.head
    if s.toy is not None:
        t = s.toy
        st.subheader(f"{no}. Heads concatenated and projected: Concat(Z₀, …) W_O")
        names = ", ".join(f"Z_{{{k}}}" for k in range(t.n_heads))
        st.latex(rf"\text{{output}} = \operatorname{{Concat}}({names})\,W_O")
        st.caption(
            f"{t.n_heads} × Z ({h.n_tokens} × {t.d_head}) side by side → ({_shape(t.concat)}) · W_O ({_shape(t.w_o)}) "
            f"→ output ({_shape(t.output)})"
        )
        labels = [f"h{k}·{d}" for k in range(t.n_heads) for d in range(t.d_head)]
        c1, c2 = st.columns(2)
        with c1:
            _chart(
                figs.matrix(t.concat, "Concat of the heads", row_labels=s.tokens, col_labels=labels, printed_cols=8),
                "worked_cat",
                stretch=True,
            )
        with c2:
            out_labels = dims(t.output.shape[1], "o")
            _chart(
                figs.matrix(t.output, "Output", row_labels=s.tokens, col_labels=out_labels, printed_cols=8),
                "worked_out",
                stretch=True,
            )
        one = "With one head the concatenation is just Z. " if t.n_heads == 1 else ""
        st.markdown(
            f"{one}Each head's context fills its own columns; W_O mixes them back into one vector per token, of the "
            f"model's width ({t.output.shape[1]}). A transformer then adds this to X (the residual) and normalises."
        )
        return
    r = s.real
    st.subheader(f"{no}. This head's share of the layer's output: Z_{r.head} W_O^({r.head})")
    st.latex(rf"\text{{share}}_{{{r.head}}} = Z_{{{r.head}}}\,W_O^{{({r.head})}}")
    st.caption(
        f"Z ({_shape(r.context)}) · W_O rows {r.head * r.d_head}–{(r.head + 1) * r.d_head - 1} ({_shape(r.w_o)}) "
        f"→ share ({_shape(r.share)})"
    )
    _chart(
        figs.matrix(r.share, "This head's share", row_labels=s.tokens, max_rows=s.max_tokens, max_cols=s.max_dims),
        "worked_share",
    )
    size = np.linalg.norm(r.share, axis=1)
    big = int(np.argmax(size))
    after = (
        "then it adds the result to X, the layer's input before its norm (the residual; a pre-norm layer "
        "normalises before attention, not after)"
        if r.causal
        else "then it adds the bias b_O, the residual X and applies LayerNorm"
    )
    st.markdown(
        f"The layer concatenates its {r.n_heads} heads' contexts and multiplies by W_O, which is the same as adding "
        f"each head's share; {after}. This head adds the largest vector (length {size[big]:.2f}) to "
        f"{_tok(s.tokens[big])}."
    )


def _causal(s: Shown) -> bool:
    return s.real is not None and s.real.causal


def visible_row(h: OneHead, i: int) -> np.ndarray:
    """bool ``(n,)``: the keys query ``i`` may attend to (a decoder's causal mask, or the non-padding keys)."""
    visible = getattr(h, "visible", None)
    return h.mask if visible is None else visible[i]


def summary_caption(s: Shown) -> None:
    """Say how much of the large matrices is drawn, and which cells print their numbers."""
    if s.numbers == "followed":
        st.caption(
            "Numbers are printed in the outlined rows, the ones the chosen weight comes from; hover any other "
            "cell for its value, or switch on “A number in every cell”."
        )
    if s.real is not None and s.max_dims is not None:
        st.caption(
            f"Large matrices show their first {SUMMARY_DIMS} dimensions and {SUMMARY_TOKENS} tokens; switch on "
            "“Show every dimension” to draw more, or download them whole from the check panel."
        )
    elif s.max_tokens is not None and s.n > s.max_tokens:
        st.caption(
            f"Every dimension is drawn for the first {s.max_tokens} of the {s.n} tokens, to keep the page light; "
            "download the whole matrices from the check panel."
        )


def render(s: Shown) -> None:
    """Every step of an encoder's (or the toy's) head, in order, following one chosen weight.

    A decoder's head has more steps: :func:`attnviz.ui.worked_decoder.render_decoder`.
    """
    summary_caption(s)
    i, j = cell_picker(s)
    step_projections(s, i, j)
    step_scores(s, i, j)
    step_scaling(s, i)
    step_mask(s, i)
    step_softmax(s, i, j)
    step_context(s, i)
    step_output(s)
