"""Scaled dot-product attention written out step by step, in numpy, keeping every intermediate.

One function, :func:`attention_steps`, in the spirit of nanoGPT's ``CausalSelfAttention`` and
Hugging Face's ``eager_attention_forward`` (Vaswani et al. 2017, "Attention Is All You Need",
eq. 1: ``softmax(QKᵀ/√d_k)V``), except that nothing is thrown away: the worked-example page
draws each intermediate, and :func:`attnviz.explain_head` feeds it a real model's weights.

Conventions: a token is a row vector, so a projection is ``X @ W`` with ``W`` of shape
``(d_in, d_out)``; a ``torch.nn.Linear`` stores the transpose (``weight`` is ``(d_out, d_in)``).
Everything is computed in float64 so that the numbers printed on the page are exact to the
digits shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attnviz.errors import InputError


@dataclass(frozen=True)
class OneHead:
    """The intermediates of one head (``n`` tokens, ``d_model`` inputs, ``d_head`` per head).

    Attributes:
        x: ``(n, d_model)`` the token vectors entering the head.
        w_q, w_k, w_v: ``(d_model, d_head)`` this head's projection columns; ``b_q, b_k, b_v``: ``(d_head,)``.
        mask: bool ``(n,)`` over keys; False = padding, which gets zero weight.
        q, k, v: ``(n, d_head)``; ``q = x @ w_q + b_q``.
        scores: ``(n, n)`` ``q @ k.T``; ``scaled``: ``scores * scale``.
        masked: ``scaled`` with padding keys set to ``-inf``.
        weights: ``(n, n)`` softmax of each row of ``masked``; rows sum to 1.
        context: ``(n, d_head)`` ``weights @ v``.
        scale: the factor the scores were multiplied by (``1/√d_head`` unless given).
    """

    x: np.ndarray
    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    b_q: np.ndarray
    b_k: np.ndarray
    b_v: np.ndarray
    mask: np.ndarray
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    scores: np.ndarray
    scaled: np.ndarray
    masked: np.ndarray
    weights: np.ndarray
    context: np.ndarray
    scale: float

    @property
    def n_tokens(self) -> int:
        return int(self.x.shape[0])

    @property
    def d_model(self) -> int:
        return int(self.x.shape[1])

    @property
    def d_head(self) -> int:
        return int(self.q.shape[1])


@dataclass(frozen=True)
class AttentionSteps:
    """Every intermediate of multi-head attention over ``n`` tokens (``H`` heads of ``d_head``).

    Attributes:
        x: ``(n, d_model)``; ``mask``: bool ``(n,)`` over keys (False = padding).
        w_q, w_k, w_v: ``(d_model, H * d_head)``; ``b_q, b_k, b_v``: ``(H * d_head,)`` (zeros if not given).
        q, k, v: ``(H, n, d_head)``: columns ``h*d_head : (h+1)*d_head`` of ``x @ w + b``.
        scores: ``(H, n, n)`` ``q @ kᵀ``; ``scaled``: ``scores * scale``; ``masked``: padding keys ``-inf``.
        weights: ``(H, n, n)`` softmax over keys; ``context``: ``(H, n, d_head)`` ``weights @ v``.
        concat: ``(n, H * d_head)`` the heads' contexts side by side.
        output: ``(n, d_out)`` ``concat @ w_o + b_o``, or None when no ``w_o`` was given.
        scale: the factor the scores were multiplied by.
    """

    x: np.ndarray
    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    b_q: np.ndarray
    b_k: np.ndarray
    b_v: np.ndarray
    mask: np.ndarray
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    scores: np.ndarray
    scaled: np.ndarray
    masked: np.ndarray
    weights: np.ndarray
    context: np.ndarray
    concat: np.ndarray
    output: np.ndarray | None
    w_o: np.ndarray | None
    b_o: np.ndarray | None
    scale: float

    @property
    def n_heads(self) -> int:
        return int(self.q.shape[0])

    @property
    def d_head(self) -> int:
        return int(self.q.shape[2])

    def head(self, h: int) -> OneHead:
        """Head ``h`` alone, with its slices of the projection weights."""
        if not 0 <= h < self.n_heads:
            raise InputError(f"Head {h} does not exist: choose a head from 0 to {self.n_heads - 1}.")
        cols = slice(h * self.d_head, (h + 1) * self.d_head)
        return OneHead(
            x=self.x,
            w_q=self.w_q[:, cols],
            w_k=self.w_k[:, cols],
            w_v=self.w_v[:, cols],
            b_q=self.b_q[cols],
            b_k=self.b_k[cols],
            b_v=self.b_v[cols],
            mask=self.mask,
            q=self.q[h],
            k=self.k[h],
            v=self.v[h],
            scores=self.scores[h],
            scaled=self.scaled[h],
            masked=self.masked[h],
            weights=self.weights[h],
            context=self.context[h],
            scale=self.scale,
        )


# ---------------------------------------------------------------- checking input


def _matrix(value, name: str, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must contain only numbers ({exc}).") from exc
    if arr.ndim != ndim:
        want = "a matrix (rows × columns)" if ndim == 2 else "a vector (one row of numbers)"
        raise InputError(f"{name} must be {want}, but has shape {arr.shape}.")
    if arr.size == 0:
        raise InputError(f"{name} is empty: give it at least one number.")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains an infinite or missing value: replace it with a number.")
    return arr


def _bias(value, name: str, size: int) -> np.ndarray:
    if value is None:
        return np.zeros(size)
    b = _matrix(value, name, 1)
    if b.shape != (size,):
        raise InputError(f"{name} has {b.shape[0]} numbers but its weights make {size} outputs: give {size}.")
    return b


def _weights(value, name: str, d_model: int) -> np.ndarray:
    w = _matrix(value, name, 2)
    if w.shape[0] != d_model:
        raise InputError(
            f"{name} has {w.shape[0]} rows but the token vectors have {d_model} numbers: "
            f"{name} needs one row per number of a token vector ({d_model} rows)."
        )
    return w


def projections(w_q, w_k, w_v, d_model: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W_Q, W_K, W_V as float64 ``(d_model, d)`` matrices of one width, or an InputError saying which."""
    w_q, w_k, w_v = (_weights(w, name, d_model) for w, name in ((w_q, "W_Q"), (w_k, "W_K"), (w_v, "W_V")))
    if not (w_q.shape[1] == w_k.shape[1] == w_v.shape[1]):
        raise InputError(
            f"W_Q, W_K and W_V must have the same number of columns (they have {w_q.shape[1]}, "
            f"{w_k.shape[1]} and {w_v.shape[1]}): q·k needs queries and keys of one size."
        )
    return w_q, w_k, w_v


def _mask(value, n: int) -> np.ndarray:
    if value is None:
        return np.ones(n, dtype=bool)
    mask = np.asarray(value)
    if mask.shape != (n,):
        raise InputError(f"The mask must have one entry per token ({n}), not shape {mask.shape}.")
    if mask.dtype != bool:
        if not np.all(np.isin(mask, (0, 1))):
            raise InputError("The mask must be True/False (or 1/0) per token: False marks padding.")
        mask = mask.astype(bool)
    if not mask.any():
        raise InputError("Every token is marked as padding: leave at least one real token to attend to.")
    return mask


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; ``-inf`` entries get exactly 0.

    The row's largest value is subtracted first: ``e^(s - m) / Σ e^(s - m)`` equals
    ``e^s / Σ e^s`` but never overflows.
    """
    top = np.max(z, axis=-1, keepdims=True)
    e = np.exp(z - top)
    return e / e.sum(axis=-1, keepdims=True)


# ---------------------------------------------------------------- the maths


def attention_steps(
    x,
    w_q,
    w_k,
    w_v,
    *,
    b_q=None,
    b_k=None,
    b_v=None,
    n_heads: int = 1,
    mask=None,
    w_o=None,
    b_o=None,
    scale: float | None = None,
) -> AttentionSteps:
    """Multi-head scaled dot-product attention, every intermediate kept.

    Args:
        x: ``(n, d_model)`` one row per token.
        w_q, w_k, w_v: ``(d_model, H * d_head)``; head ``h`` uses columns ``h*d_head : (h+1)*d_head``.
        b_q, b_k, b_v: ``(H * d_head,)`` biases, zero when omitted.
        n_heads: ``H``; must divide the number of columns of the projections.
        mask: bool ``(n,)`` over keys; False marks padding, which gets weight 0 in every row.
        w_o, b_o: optional output projection ``(H * d_head, d_out)`` and its bias ``(d_out,)``.
        scale: factor applied to ``q·k``; default ``1/√d_head`` as in the paper and in BERT.

    Raises:
        InputError: shapes that do not fit together, non-numbers, or every key masked.
    """
    x = _matrix(x, "X (the token vectors)", 2)
    n, d_model = x.shape
    w_q, w_k, w_v = projections(w_q, w_k, w_v, d_model)
    d_all = w_q.shape[1]
    if isinstance(n_heads, bool) or not isinstance(n_heads, (int, np.integer)) or n_heads < 1:
        raise InputError(f"The number of heads must be a whole number of at least 1, not {n_heads!r}.")
    if d_all % n_heads:
        raise InputError(
            f"{n_heads} heads cannot share {d_all} columns of W_Q/W_K/W_V equally: "
            f"use a number of columns divisible by {n_heads}, or another number of heads."
        )
    n_heads = int(n_heads)
    d_head = d_all // n_heads
    b_q, b_k, b_v = (_bias(b, name, d_all) for b, name in ((b_q, "b_Q"), (b_k, "b_K"), (b_v, "b_V")))
    mask = _mask(mask, n)
    if scale is None:
        scale = 1.0 / math.sqrt(d_head)
    elif not (isinstance(scale, (int, float, np.floating)) and math.isfinite(scale) and scale > 0):
        raise InputError(f"The scale must be a positive number, not {scale!r}.")

    def split(t: np.ndarray) -> np.ndarray:  # (n, H*dh) -> (H, n, dh)
        return t.reshape(n, n_heads, d_head).transpose(1, 0, 2)

    q = split(x @ w_q + b_q)  # (H, n, dh)
    k = split(x @ w_k + b_k)  # (H, n, dh)
    v = split(x @ w_v + b_v)  # (H, n, dh)
    scores = q @ k.transpose(0, 2, 1)  # (H, n, n): scores[h, i, j] = q_i · k_j
    scaled = scores * float(scale)
    # Padding keys get -inf so that exp() gives them exactly zero weight, in every query row.
    masked = np.where(mask[None, None, :], scaled, -np.inf)  # (H, n, n)
    weights = softmax(masked)  # (H, n, n), rows sum to 1
    context = weights @ v  # (H, n, dh)
    concat = context.transpose(1, 0, 2).reshape(n, d_all)  # (n, H*dh)

    output = None
    if w_o is not None:
        w_o = _matrix(w_o, "W_O", 2)
        if w_o.shape[0] != d_all:
            raise InputError(
                f"W_O has {w_o.shape[0]} rows but the heads' concatenated output has {d_all} numbers "
                f"per token: give W_O {d_all} rows."
            )
        b_o = _bias(b_o, "b_O", w_o.shape[1])
        output = concat @ w_o + b_o  # (n, d_out)
    elif b_o is not None:
        raise InputError("b_O was given without W_O: give the output projection W_O too.")
    return AttentionSteps(
        x=x,
        w_q=w_q,
        w_k=w_k,
        w_v=w_v,
        b_q=b_q,
        b_k=b_k,
        b_v=b_v,
        mask=mask,
        q=q,
        k=k,
        v=v,
        scores=scores,
        scaled=scaled,
        masked=masked,
        weights=weights,
        context=context,
        concat=concat,
        output=output,
        w_o=w_o,
        b_o=b_o,
        scale=float(scale),
    )


@dataclass(frozen=True)
class SoftmaxRow:
    """One row of the softmax written out: ``weights[j] = exps[j] / total``.

    Attributes:
        scores: the row's (scaled, masked) scores; ``-inf`` for padding keys.
        shift: subtracted from every score before ``exp`` (0 unless the scores are so large
            that ``e^s`` would overflow); it cancels in the division.
        exps: ``e^(score - shift)``; 0 for padding keys.
        total: the sum of ``exps``.
        weights: ``exps / total``; sums to 1.
    """

    scores: np.ndarray
    shift: float
    exps: np.ndarray
    total: float
    weights: np.ndarray


def softmax_row(scores) -> SoftmaxRow:
    """The softmax of one row, with each exponential, their sum and each division kept."""
    s = np.asarray(scores, dtype=np.float64)  # (n,)
    finite = s[np.isfinite(s)]
    if s.ndim != 1 or finite.size == 0:
        raise InputError("A softmax row needs at least one finite score.")
    # e^s stays exact and readable up to e^50 (~5e21); beyond that, shift by the largest score.
    top = float(finite.max())
    shift = top if abs(top) > 50 else 0.0
    exps = np.exp(s - shift)
    total = float(exps.sum())
    return SoftmaxRow(scores=s, shift=shift, exps=exps, total=total, weights=exps / total)


def softmax_at(scores, factor: float) -> np.ndarray:
    """Softmax of one row of raw ``q·k`` scores multiplied by ``factor`` (``-inf`` stays masked).

    The page's scale control: ``factor = 1/√d_k`` is what the model does; smaller factors
    flatten the row towards uniform, larger ones sharpen it towards the largest score.
    """
    s = np.asarray(scores, dtype=np.float64)
    return softmax(np.where(np.isfinite(s), s * float(factor), -np.inf))


def entropy_bits(p: np.ndarray) -> float:
    """How spread a row of weights is: 0 bits = all on one key, log2(n) = uniform.

    Never below +0.0: a one-hot row gives ``-(1 · log2 1) = -0.0``, and a row that sums to a
    hair over 1 a tiny negative number; either would print as "-0.00 bits".
    """
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return max(0.0, float(-(nz * np.log2(nz)).sum()))
