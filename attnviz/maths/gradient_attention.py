"""Attention weighted by its gradient (Chefer et al. 2021), and the layered graph attention flow runs on.

**Attention × gradient.** Chefer, Gur & Wolf, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers" (ICCV 2021), eqs. 5–6: each layer's
attention map is weighted by the gradient of the explained score with respect to it, negative
contributions are dropped, heads are averaged, and layers compose like rollout with the residual
as the identity::

    Ā_l = mean_h max(∇A_l ⊙ A_l, 0)          # [t, t]
    R_0 = I;   R_l = R_{l-1} + Ā_l · R_{l-1}   # l = 0 .. L-1, first layer first

``R[i, j]`` is the relevance of input token j to token i's output; the scoreboard reads the row of
the position whose output is explained (a decoder's last token, an encoder's [CLS]).

**Attention flow.** Abnar & Zuidema 2020 treat the layers as a graph: node (l, j) is token j's
state entering layer l, and the edge from (l + 1, i) down to (l, j) has capacity
``Ã_l[i, j]``, the layer's attention averaged over heads with the residual added and rows
normalised (the matrices rollout multiplies, :func:`residual_layers`). A token's flow is the
maximum flow from the explained position's top node to the token's bottom node; the text wing
computes it with networkx (:mod:`attnviz.text.attention_flow`), this module builds the capacities.
"""

from __future__ import annotations

import numpy as np

from attnviz.errors import InputError


def _check(weights: np.ndarray, name: str) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2] or 0 in w.shape:
        raise InputError(f"{name} must be shaped [layers, heads, t, t], got {w.shape}.")
    if not np.isfinite(w).all():
        raise InputError(f"{name} contain NaN or infinite values.")
    return w


def gradient_weighted_rollout(weights, gradients) -> np.ndarray:
    """Chefer et al. 2021's relevance ``R`` ``[t, t]`` from attention and its gradient, both
    ``[layers, heads, t, t]`` (module docstring). float64; not row-normalised."""
    a = _check(weights, "The attention weights")
    g = _check(gradients, "The attention gradients")
    if a.shape != g.shape:
        raise InputError(f"Attention {a.shape} and gradients {g.shape} must have the same shape.")
    layers = np.clip(g * a, 0.0, None).mean(axis=1)  # (L, t, t)
    t = a.shape[-1]
    relevance = np.eye(t)
    for layer in layers:
        relevance = relevance + layer @ relevance
    return relevance


def residual_layers(weights) -> np.ndarray:
    """``[layers, t, t]``: each layer's attention averaged over heads, plus the identity, rows
    normalised to 1 (the matrices attention rollout multiplies, and attention flow's capacities)."""
    a = _check(weights, "The attention weights")
    fused = a.mean(axis=1) + np.eye(a.shape[-1])  # (L, t, t)
    return fused / fused.sum(axis=-1, keepdims=True)
