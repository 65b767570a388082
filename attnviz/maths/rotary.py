"""Rotary position embeddings (RoPE), in numpy, every part kept.

Su et al. 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding", eq. 34: the
query and key of the token at position ``m`` are rotated, pair of dimensions by pair, by the
angle ``m·θ_i`` with ``θ_i = base^(−2i/d)`` (``i = 0 … d/2 − 1``; the paper's base is 10 000,
Llama's config calls it ``rope_theta``). Then ``q_m · k_n`` depends on the positions only
through ``m − n``.

Pairing follows Hugging Face's Llama, Mistral and Qwen2 (``rotate_half``): dimension ``i`` is
paired with dimension ``i + d/2`` (the first half holds the pairs' first coordinates, the second
half their second ones), not with ``i + 1`` as in the paper's figure. For the pair
``(a, b) = (x_i, x_{i+d/2})`` at angle ``φ``::

    a' = a·cos φ − b·sin φ
    b' = b·cos φ + a·sin φ
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnviz.errors import InputError


@dataclass(frozen=True)
class RopeStep:
    """The rotation of one head's queries and keys (``n`` tokens, ``d`` dimensions per head).

    Attributes:
        base: ``θ``'s base (``rope_theta``).
        positions: int ``(n,)`` each token's position (0, 1, … for one unpadded input).
        inv_freq: ``(d/2,)`` ``θ_i = base^(−2i/d)``: radians per position of pair ``i``.
        angles: ``(n, d/2)`` ``positions[m] · θ_i``: how far pair ``i`` of token ``m`` turns.
        q_before, k_before: ``(n, d)`` the projected queries and keys.
        q, k: ``(n, d)`` the same, rotated: what the scores are computed from.
    """

    base: float
    positions: np.ndarray
    inv_freq: np.ndarray
    angles: np.ndarray
    q_before: np.ndarray
    k_before: np.ndarray
    q: np.ndarray
    k: np.ndarray

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """The dimensions rotated together: ``(i, i + d/2)`` for each pair ``i``."""
        half = int(self.inv_freq.shape[0])
        return [(i, i + half) for i in range(half)]


def rope_frequencies(d_head: int, base: float) -> np.ndarray:
    """``(d_head/2,)`` ``θ_i = base^(−2i/d_head)``: the first pair turns 1 radian per position, the
    last about ``1/base``."""
    if isinstance(d_head, bool) or not isinstance(d_head, (int, np.integer)) or d_head < 2 or d_head % 2:
        raise InputError(f"RoPE rotates pairs of dimensions: the head size must be even, not {d_head!r}.")
    if not (np.isfinite(base) and base > 1):
        raise InputError(f"RoPE's base (rope_theta) must be a number above 1, not {base!r}.")
    return float(base) ** (-np.arange(0, d_head, 2, dtype=np.float64) / d_head)


def rope_angles(positions, inv_freq) -> np.ndarray:
    """``(n, d/2)`` ``positions[m] · inv_freq[i]``, in radians (not reduced modulo 2π)."""
    return np.outer(np.asarray(positions, dtype=np.float64), np.asarray(inv_freq, dtype=np.float64))


def rotate_half(x: np.ndarray) -> np.ndarray:
    """``(..., d)`` → ``(..., d)``: ``[x₁, x₂] ↦ [−x₂, x₁]`` with ``x₁, x₂`` the two halves (HF's ``rotate_half``)."""
    x = np.asarray(x, dtype=np.float64)
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, angles) -> np.ndarray:
    """Rotate each row ``x[m] (d,)`` by ``angles[m] (d/2,)``: ``x·cos + rotate_half(x)·sin``.

    ``cos`` and ``sin`` are the angles' cosines and sines repeated for both halves (``(n, d)``),
    as in HF's ``apply_rotary_pos_emb``.
    """
    x = np.asarray(x, dtype=np.float64)  # (n, d)
    angles = np.asarray(angles, dtype=np.float64)  # (n, d/2)
    if x.ndim != 2 or angles.shape != (x.shape[0], x.shape[1] // 2) or x.shape[1] % 2:
        raise InputError(
            f"RoPE needs vectors (n, d) with d even and angles (n, d/2); got {x.shape} and {angles.shape}."
        )
    full = np.concatenate([angles, angles], axis=-1)  # (n, d)
    return x * np.cos(full) + rotate_half(x) * np.sin(full)


def rope_step(q, k, base: float, positions=None) -> RopeStep:
    """Rotate queries and keys ``(n, d)`` by their positions (default ``0 … n−1``)."""
    q = np.asarray(q, dtype=np.float64)
    k = np.asarray(k, dtype=np.float64)
    if q.ndim != 2 or q.shape != k.shape:
        raise InputError(f"Queries and keys must be matrices of one shape (n, d); got {q.shape} and {k.shape}.")
    positions = np.arange(q.shape[0]) if positions is None else np.asarray(positions)
    if positions.shape != (q.shape[0],):
        raise InputError(f"Give one position per token ({q.shape[0]}), not shape {positions.shape}.")
    inv_freq = rope_frequencies(q.shape[1], base)
    angles = rope_angles(positions, inv_freq)
    return RopeStep(
        base=float(base),
        positions=positions,
        inv_freq=inv_freq,
        angles=angles,
        q_before=q,
        k_before=k,
        q=apply_rope(q, angles),
        k=apply_rope(k, angles),
    )


class BeforeRotation:
    """For a result with ``q``, ``k`` ``(n, d_head)`` and ``rope`` (a :class:`RopeStep`, or None when the
    model turns nothing): the queries and keys as projected, before any rotation. One definition for
    the maths' :class:`~attnviz.maths.causal_head.CausalHead` and the model's ``HeadSteps``."""

    q: np.ndarray
    k: np.ndarray
    rope: RopeStep | None

    @property
    def q_unrotated(self) -> np.ndarray:
        """``(n, d_head)`` the queries as projected, before any rotation (``q`` itself without RoPE)."""
        return self.q if self.rope is None else self.rope.q_before

    @property
    def k_unrotated(self) -> np.ndarray:
        """``(n, d_head)`` the keys as projected, before any rotation (``k`` itself without RoPE)."""
        return self.k if self.rope is None else self.rope.k_before
