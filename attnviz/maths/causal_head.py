"""One head of a decoder (GPT-2, Llama, Qwen2 style) step by step, in numpy, every intermediate kept.

A decoder layer differs from BERT's in three places before the softmax, and each is a step here:

1. the layer's input is normalised first (pre-norm: RMSNorm or LayerNorm, :mod:`attnviz.maths.norms`);
2. with RoPE, the projected queries and keys are rotated by their positions
   (:mod:`attnviz.maths.rotary`); GPT-2 has no rotation (its positions were added to the
   token embeddings before layer 0);
3. the mask is causal: query ``i`` sees keys ``0 … i`` only (and, with a sliding window ``w``,
   only the last ``w`` of those), every other score is ``-inf`` and gets weight exactly 0.

Then ``softmax(q·kᵀ · scale + mask) · v`` as in :mod:`attnviz.maths.qkv`. With grouped-query
attention several query heads share one key/value head: the caller passes that head's ``w_k``,
``w_v``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attnviz.errors import InputError
from attnviz.maths.norms import NormStep
from attnviz.maths.qkv import OneHead, _bias, projections, softmax
from attnviz.maths.rotary import BeforeRotation, RopeStep, rope_step


@dataclass(frozen=True)
class CausalHead(BeforeRotation, OneHead):
    """The intermediates of one decoder head (``n`` tokens, ``d_model`` inputs, ``d_head`` per head).

    The :class:`~attnviz.maths.qkv.OneHead` fields, with these meanings where they differ:
    ``x (n, d_model)`` is the layer's input, *before* the norm; the projections read
    ``norm.normed``; ``q, k (n, d_head)`` are *after* RoPE (``rope.q_before`` is
    ``norm.normed @ w_q + b_q``), so that ``scores = q @ k.T`` still holds; ``masked`` is
    ``-inf`` wherever ``visible`` is False; ``mask (n,)`` is all True (no padding).

    Attributes:
        norm: the pre-attention norm of ``x``.
        rope: the rotation of ``q`` and ``k``, or None for a model without RoPE (GPT-2).
        visible: bool ``(n, n)``: key ``j`` is visible to query ``i`` (``j ≤ i``, within the window).
        window: the sliding window (how many of the latest keys a query sees), or None.
    """

    norm: NormStep
    rope: RopeStep | None
    visible: np.ndarray
    window: int | None


def causal_visible(n: int, window: int | None = None) -> np.ndarray:
    """bool ``(n, n)``: ``[i, j]`` is True when query ``i`` may attend to key ``j``.

    ``j ≤ i`` (the lower triangle, diagonal included); with a window ``w`` also ``i − j < w``
    (transformers' ``sliding_window_overlay``: ``kv_idx > q_idx − w``).
    """
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    visible = j <= i
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise InputError(f"The sliding window must be a whole number of at least 1, not {window!r}.")
        visible &= j > i - int(window)
    return visible


def causal_head_steps(
    norm: NormStep,
    w_q,
    w_k,
    w_v,
    *,
    b_q=None,
    b_k=None,
    b_v=None,
    rope_base: float | None = None,
    positions=None,
    scale: float | None = None,
    window: int | None = None,
) -> CausalHead:
    """One causal head, every step kept.

    Args:
        norm: the layer input and its norm (:func:`attnviz.maths.norms.norm_step`).
        w_q, w_k, w_v: ``(d_model, d_head)`` this query head's columns, and its key/value head's.
        b_q, b_k, b_v: ``(d_head,)`` biases (Qwen2, GPT-2), zero when omitted.
        rope_base: RoPE's ``rope_theta``; None for no rotation.
        positions: int ``(n,)`` the tokens' positions, default ``0 … n−1``.
        scale: factor applied to ``q·k``, default ``1/√d_head``.
        window: a sliding window, or None for full causal attention.
    """
    x = norm.normed  # (n, d_model): what the projections read
    n, d_model = x.shape
    w_q, w_k, w_v = projections(w_q, w_k, w_v, d_model)  # one head's columns each
    d_head = w_q.shape[1]
    b_q, b_k, b_v = (_bias(b, name, d_head) for b, name in ((b_q, "b_Q"), (b_k, "b_K"), (b_v, "b_V")))
    scale = 1.0 / math.sqrt(d_head) if scale is None else float(scale)
    q = x @ w_q + b_q  # (n, dh)
    k = x @ w_k + b_k  # (n, dh)
    v = x @ w_v + b_v  # (n, dh)
    rope = None
    if rope_base is not None:
        rope = rope_step(q, k, rope_base, positions)
        q, k = rope.q, rope.k
    scores = q @ k.T  # (n, n)
    scaled = scores * scale
    visible = causal_visible(n, window)
    # -inf, not a large negative number: exp(-inf) is exactly 0, so future tokens get weight 0.
    masked = np.where(visible, scaled, -np.inf)  # (n, n)
    weights = softmax(masked)  # (n, n), rows sum to 1
    context = weights @ v  # (n, dh)
    return CausalHead(
        x=norm.x,
        w_q=w_q,
        w_k=w_k,
        w_v=w_v,
        b_q=b_q,
        b_k=b_k,
        b_v=b_v,
        mask=np.ones(n, dtype=bool),
        q=q,
        k=k,
        v=v,
        scores=scores,
        scaled=scaled,
        masked=masked,
        weights=weights,
        context=context,
        scale=scale,
        norm=norm,
        rope=rope,
        visible=visible,
        window=None if window is None else int(window),
    )
