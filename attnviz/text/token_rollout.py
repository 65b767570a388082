"""Attention rollout from one token, at any length.

:func:`attnviz.maths.attention_rollout.rollout` multiplies every layer's fused ``[n, n]`` matrix:
at 8,192 tokens each is 268 MB (537 MB in float64) and the products cost n³ per layer. One token's
row needs only a vector times each matrix, from the last layer down:

    v = e_q;   for l = L-1 … 0:   v = v · Ã_l,   Ã_l = (fuse_heads(A_l) + I) / rowsum

and ``v`` then equals row q of the full rollout. Each layer is read one block of query rows at a
time (:meth:`attnviz.text.recorded_attention.RecordedAttention.row_blocks`), and for a decoder only
the rows at or before q, which are the only ones ``v`` can reach. Memory is one block; time is one
pass over every head (about a forward pass's attention).

``causal_normalised`` divides by the same row of the rollout of uniform causal attention (see
:func:`attnviz.maths.attention_rollout.causal_normalise`); that row is also a vector product, and
a uniform causal layer's product is a reverse cumulative sum, O(n) per layer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from attnviz.errors import InputError
from attnviz.maths.attention_rollout import fuse_heads
from attnviz.text.extraction import TextAttention
from attnviz.text.recorded_attention import BLOCK_VALUES


class RolloutStopped(Exception):
    """:func:`rollout_from` was stopped through its ``stop`` event."""


def _layer_rows(ta: TextAttention, layer: int, last: int):
    """``(start, block [heads, m, n])`` over the query rows 0..last of one layer."""
    if ta.holds_weights:
        yield 0, ta.weights[layer, :, : last + 1]
        return
    step = max(1, BLOCK_VALUES // (ta.n_heads * ta.n_tokens))
    for a in range(0, last + 1, step):
        yield a, ta.recorded.layer_rows(layer, a, min(last + 1, a + step))


def _uniform_row(query: int, n: int, n_layers: int) -> np.ndarray:
    """Row ``query`` of the rollout of ``n_layers`` uniform causal layers (row i: 1/(i+1) over 0..i)."""
    v = np.zeros(n)
    v[query] = 1.0
    positions = np.arange(1, n + 1, dtype=np.float64)
    for _ in range(n_layers):
        through = np.cumsum((v / positions)[::-1])[::-1]  # (v·C)_j = Σ_{i ≥ j} v_i / (i+1)
        v = (through + v) / 2.0  # (C + I) / 2: every row of C + I sums to 2
    return v


def rollout_from(
    ta: TextAttention,
    query: int,
    *,
    head_fusion: str = "mean",
    causal_normalised: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop=None,
) -> np.ndarray:
    """Row ``query`` of the attention rollout of ``ta``: float32 ``[n]``, summing to 1.

    Equal to ``rollout(ta.weights, head_fusion, causal=causal_normalised)[query]`` where the
    weights are held (``tests/text/test_token_rollout.py``), without ever holding ``[n, n]``.

    Args:
        progress: called as ``progress(layers_done, n_layers)``.
        stop: a ``threading.Event``; once set, :class:`RolloutStopped` is raised before the next block.
    """
    n, n_layers = ta.n_tokens, ta.n_layers
    if not 0 <= query < n:
        raise InputError(f"Token {query} is out of range: the input has {n} tokens.")
    if causal_normalised and not ta.causal:
        raise InputError("The causal normalisation is for decoders, whose tokens see only earlier ones.")
    last = query if ta.causal else n - 1  # a decoder's v never reaches a row after the query
    v = np.zeros(n)
    v[query] = 1.0
    for done, layer in enumerate(reversed(range(n_layers)), start=1):
        out = np.zeros(n)
        for start, block in _layer_rows(ta, layer, last):
            if stop is not None and stop.is_set():
                raise RolloutStopped
            part = v[start : start + block.shape[1]]
            if not part.any():
                continue
            fused = fuse_heads(np.asarray(block, dtype=np.float64), head_fusion)  # (m, n)
            scaled = part / (fused.sum(axis=-1) + 1.0)  # each row of fused + I, normalised
            out += scaled @ fused
            out[start : start + len(scaled)] += scaled  # the identity's share
        v = out
        if progress is not None:
            progress(done, n_layers)
    if causal_normalised:
        baseline = _uniform_row(query, n, n_layers)
        ratio = np.where(baseline > 0, v / np.where(baseline > 0, baseline, 1.0), 0.0)
        v = ratio / ratio.sum()
    return v.astype(np.float32)
