"""The normalisations a decoder layer applies before its attention, in numpy, every part kept.

- RMSNorm (Zhang & Sennrich 2019, "Root Mean Square Layer Normalization", eq. 4), used by Llama,
  Mistral and Qwen2: ``y = x / √(mean(x²) + ε) · g``. No centring, no bias.
- LayerNorm (Ba et al. 2016, "Layer Normalization", eq. 4), used by GPT-2:
  ``y = (x − mean(x)) / √(var(x) + ε) · g + b``, with the biased variance (divided by d).

Both act on each token (each row) alone. Everything is float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnviz.errors import InputError

RMS_NORM = "RMSNorm"
LAYER_NORM = "LayerNorm"


@dataclass(frozen=True)
class NormStep:
    """One normalisation of ``n`` token vectors of ``d`` numbers.

    Attributes:
        kind: ``"RMSNorm"`` or ``"LayerNorm"``.
        x: ``(n, d)`` the vectors going in.
        centre: ``(n,)`` what was subtracted from each row: its mean for LayerNorm, 0 for RMSNorm.
        spread: ``(n,)`` what each centred row was divided by: ``√(mean((x − centre)²) + eps)``
            (the root mean square for RMSNorm, the standard deviation for LayerNorm).
        weight: ``(d,)`` the learned gain ``g``; ``bias``: ``(d,)`` (zeros for RMSNorm).
        eps: the ε added under the square root.
        normed: ``(n, d)`` ``(x − centre) / spread · weight + bias``: what the projections read.
    """

    kind: str
    x: np.ndarray
    centre: np.ndarray
    spread: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    eps: float
    normed: np.ndarray


def _vector(value, name: str, d: int) -> np.ndarray:
    v = np.asarray(value, dtype=np.float64)
    if v.shape != (d,):
        raise InputError(f"The norm's {name} must have one number per dimension ({d}), not shape {v.shape}.")
    return v


def norm_step(kind: str, x, weight, bias=None, eps: float = 1e-5) -> NormStep:
    """Normalise each row of ``x (n, d)`` by ``kind`` (:data:`RMS_NORM` or :data:`LAYER_NORM`).

    Args:
        weight: ``(d,)`` the gain; bias: ``(d,)`` LayerNorm's shift (must be None for RMSNorm).
        eps: added to the mean square (RMSNorm) or the variance (LayerNorm) before the root.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"A norm reads a matrix of token vectors (n, d), not shape {x.shape}.")
    d = x.shape[1]
    weight = _vector(weight, "weight", d)
    if kind == RMS_NORM:
        if bias is not None:
            raise InputError("RMSNorm has no bias: give None.")
        centre = np.zeros(x.shape[0])
        bias = np.zeros(d)
    elif kind == LAYER_NORM:
        centre = x.mean(axis=1)  # (n,)
        bias = np.zeros(d) if bias is None else _vector(bias, "bias", d)
    else:
        raise InputError(f"Unknown norm {kind!r}: use {RMS_NORM!r} or {LAYER_NORM!r}.")
    if not (np.isfinite(eps) and eps >= 0):
        raise InputError(f"The norm's epsilon must be a number of at least 0, not {eps!r}.")
    centred = x - centre[:, None]  # (n, d)
    spread = np.sqrt((centred**2).mean(axis=1) + eps)  # (n,)
    normed = centred / spread[:, None] * weight + bias  # (n, d)
    return NormStep(
        kind=kind, x=x, centre=centre, spread=spread, weight=weight, bias=bias, eps=float(eps), normed=normed
    )


def rms_norm(x, weight, eps: float = 1e-6) -> np.ndarray:
    """``(n, d)`` ``x / √(mean(x²) + eps) · weight``, row by row (Llama's ``LlamaRMSNorm``)."""
    return norm_step(RMS_NORM, x, weight, eps=eps).normed


def layer_norm(x, weight, bias, eps: float = 1e-5) -> np.ndarray:
    """``(n, d)`` ``(x − mean) / √(var + eps) · weight + bias``, row by row (``torch.nn.LayerNorm``)."""
    return norm_step(LAYER_NORM, x, weight, bias, eps=eps).normed
