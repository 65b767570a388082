"""Attention rollout: how attention composes across layers (Abnar & Zuidema 2020).

One layer's attention says which tokens a token reads *in that layer*; rollout follows the
flow through every layer, with the residual connection counted as attention to oneself:

    Â_l = fuse_heads(A_l)                      # [t, t]: mean, max or min over heads
    Â_l = drop the lowest discard_ratio of Â_l  # optional, as vit-explain does
    Ã_l = (Â_l + I) / rowsum(Â_l + I)           # residual stream, rows sum to 1 again
    R   = Ã_{L-1} · … · Ã_1 · Ã_0               # layers multiplied from the first up

``R[i, j]`` is how much token i's output at the last layer draws on input token j; each row
sums to 1. This module is pure numpy: the text page, the image page and a notebook call it
on any ``[layers, heads, t, t]`` array (text tokens, or an image model's class token + grid).

Compared with vit-explain's ``vit_rollout.py``: rows are normalised with ``keepdims`` (it
divides by a row-sum vector that broadcasts over columns), the discard is applied to every
batch item (it only touches item 0), and bad input raises an exception instead of an assert.

Decoders (``causal=True`` in :func:`rollout`): token i sees only tokens 0..i, so composing
layers piles mass onto the first tokens whatever the heads do: with every head attending
uniformly to what it can see, token 0 still ends up with the largest share of every row. Abnar &
Zuidema warn that rollout's raw shares mix such structure with what the model does. The causal
option divides R element-wise by that baseline, the rollout ``U`` of uniform causal attention
(row i: 1/(i+1) over 0..i, same number of layers, same residual), and renormalises each row:

    R_causal[i, j] = (R[i, j] / U[i, j]) / Σ_j' (R[i, j'] / U[i, j'])      for j ≤ i; 0 after i

A uniform model then gives uniform rows, and a share above 1/(i+1) means "more than position
alone would give".
"""

from __future__ import annotations

import functools

import numpy as np

from attnviz.errors import InputError

HEAD_FUSIONS = ("mean", "max", "min")


def _as_array(weights) -> np.ndarray:
    """numpy float64 from a numpy array, a torch tensor, or a sequence of per-layer tensors."""
    if hasattr(weights, "detach"):  # a torch tensor, possibly on a GPU or requiring grad
        weights = weights.detach().cpu().numpy()
    elif isinstance(weights, (list, tuple)):  # e.g. HF ``outputs.attentions``: L tensors [B, H, t, t]
        weights = np.stack([_as_array(w) for w in weights])
        # (L, B, H, t, t) -> (B, L, H, t, t) so that the batch comes first, as it does for arrays
        if weights.ndim == 5:
            weights = np.moveaxis(weights, 1, 0)
    return np.asarray(weights, dtype=np.float64)


def fuse_heads(weights: np.ndarray, head_fusion: str = "mean") -> np.ndarray:
    """``[..., heads, t, t]`` -> ``[..., t, t]`` by the mean, max or min over heads."""
    if head_fusion == "mean":
        return weights.mean(axis=-3)
    if head_fusion == "max":
        return weights.max(axis=-3)
    if head_fusion == "min":
        return weights.min(axis=-3)
    raise InputError(f"head_fusion must be one of {', '.join(HEAD_FUSIONS)}, not {head_fusion!r}.")


def discard_lowest(matrices: np.ndarray, discard_ratio: float) -> np.ndarray:
    """Zero the lowest ``discard_ratio`` of the entries of each ``[t, t]`` matrix in ``[..., t, t]``.

    Exactly ``floor(discard_ratio * t * t)`` entries are dropped per matrix (ties broken by
    position), so the ratio means the same for every layer and batch item.
    """
    t = matrices.shape[-1]
    k = int(discard_ratio * t * t)
    if k == 0:
        return matrices
    flat = matrices.reshape(-1, t * t).copy()  # (B*L, t*t)
    lowest = np.argpartition(flat, k - 1, axis=1)[:, :k]  # (B*L, k) indices of the k smallest
    np.put_along_axis(flat, lowest, 0.0, axis=1)
    return flat.reshape(matrices.shape)


@functools.lru_cache(maxsize=16)
def uniform_causal_rollout(t: int, n_layers: int) -> np.ndarray:
    """The rollout ``[t, t]`` of ``n_layers`` layers whose every row i attends uniformly to 0..i.

    It depends on the sizes only, so it is kept (read-only) for the next call: rebuilding it took
    about 1 s at 512 tokens and 30 layers.
    """
    uniform = np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]  # (t, t) rows sum to 1
    out = rollout(np.broadcast_to(uniform, (n_layers, 1, t, t))).astype(np.float64)
    out.flags.writeable = False
    return out


def causal_normalise(matrix: np.ndarray, n_layers: int) -> np.ndarray:
    """Divide a causal rollout ``[..., t, t]`` by :func:`uniform_causal_rollout` and renormalise rows
    (see the module docstring); keys after each query stay exactly 0."""
    t = matrix.shape[-1]
    baseline = uniform_causal_rollout(t, n_layers)  # (t, t), > 0 on and below the diagonal
    ratio = np.where(baseline > 0, matrix / np.where(baseline > 0, baseline, 1.0), 0.0)
    return (ratio / ratio.sum(axis=-1, keepdims=True)).astype(np.float32)


def rollout(weights, head_fusion: str = "mean", discard_ratio: float = 0.0, causal: bool = False) -> np.ndarray:
    """Attention rollout of ``weights``: how much each token's final state draws on each input token.

    Args:
        weights: attention of every layer and head, ``[layers, heads, t, t]`` (e.g.
            ``TextAttention.weights`` or ``ImageAttention.weights``), or a batch
            ``[batch, layers, heads, t, t]``; a numpy array, a torch tensor, or a list of
            per-layer tensors ``[batch, heads, t, t]`` as transformers returns them. Rows are
            expected to sum to 1 (softmax output); they need not be exactly stochastic.
        head_fusion: how each layer's heads become one matrix: ``"mean"`` (Abnar & Zuidema),
            ``"max"`` or ``"min"`` (vit-explain's options).
        discard_ratio: fraction in ``[0, 1)`` of each fused layer matrix's lowest entries set to
            0 before the identity is added (vit-explain's noise filter); 0 keeps everything.
        causal: a decoder's attention (zeros above the diagonal): divide by the rollout of
            uniform causal attention and renormalise (module docstring), so that the first
            tokens do not win by position alone.

    Returns:
        float32 ``[t, t]`` (or ``[batch, t, t]``); ``R[i, j]`` = share of token i's last-layer
        state that flows from input token j. Every row sums to 1.

    Raises:
        InputError: wrong shape (not square, no layers or heads), NaN/inf or negative weights,
            an unknown ``head_fusion``, or ``discard_ratio`` outside ``[0, 1)``.
    """
    w = _as_array(weights)
    if w.ndim not in (4, 5):
        raise InputError(
            f"rollout needs weights shaped [layers, heads, t, t] or [batch, layers, heads, t, t], got shape {w.shape}."
        )
    if w.shape[-1] != w.shape[-2]:
        raise InputError(f"rollout needs square self-attention matrices (t x t), got {w.shape[-2]} x {w.shape[-1]}.")
    if 0 in w.shape:
        raise InputError(f"rollout needs at least one layer, one head and one token, got shape {w.shape}.")
    if not np.isfinite(w).all():
        raise InputError("The attention weights contain NaN or infinite values.")
    if (w < 0).any():
        raise InputError("Attention weights must not be negative (they are softmax outputs).")
    if isinstance(discard_ratio, bool) or not 0.0 <= float(discard_ratio) < 1.0:
        raise InputError(f"discard_ratio must be at least 0 and below 1, not {discard_ratio!r}.")
    if head_fusion not in HEAD_FUSIONS:
        raise InputError(f"head_fusion must be one of {', '.join(HEAD_FUSIONS)}, not {head_fusion!r}.")

    batched = w.ndim == 5
    if not batched:
        w = w[None]  # (1, L, H, t, t)
    fused = fuse_heads(w, head_fusion)  # (B, L, t, t)
    fused = discard_lowest(fused, float(discard_ratio))
    t = fused.shape[-1]
    layers = fused + np.eye(t)  # the residual connection: every token also keeps itself
    layers /= layers.sum(axis=-1, keepdims=True)  # rows sum to 1; the +I keeps every sum > 0
    result = layers[:, 0]  # (B, t, t)
    for l in range(1, layers.shape[1]):
        result = layers[:, l] @ result  # a later layer reads the mix the earlier layers made
    result = causal_normalise(result, layers.shape[1]) if causal else result.astype(np.float32)
    return result if batched else result[0]
