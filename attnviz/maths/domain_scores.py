"""Is this input like the training data? The scores of a domain check, and their calibration.

Two detectors from the out-of-distribution literature, each computed from one forward pass:

* **Mahalanobis distance** (Lee, Lee, Lee & Shin 2018, "A Simple Unified Framework for Detecting
  Out-of-Distribution Samples and Adversarial Attacks", NeurIPS): one Gaussian per class with a
  covariance shared by the classes, fitted on training features; the score is the squared distance
  to the nearest class mean. Lee et al. combine several layers ("feature ensemble"); the image wing
  uses two, the class token the head reads and the pooled statistics of the last convolution.
* **Energy** (Liu, Wang, Owens & Li 2020, "Energy-based Out-of-distribution Detection", NeurIPS):
  ``-logsumexp(logits)``; a model is less sure of anything on an input far from its data, so the
  energy rises.
* **Input complexity** (Serrà et al. 2020, "Input Complexity and Out-of-distribution Detection with
  Likelihood-based Generative Models", ICLR): the bits per pixel of the image compressed losslessly
  (PNG), as two scores, ``too simple`` (its negative) and ``too complex``. A flat colour or plain
  noise looks like nothing else to a compressor, whatever the network makes of it.

An input is out of domain when **any** score passes its threshold. Each threshold is a split-conformal
quantile of the score over inputs that did not shape it, and the scores share the false-alarm budget
(the union bound), so that the union flags at most ``false_alarm`` of fresh in-domain inputs in
expectation, however few calibration images there are and however the scores depend on each other
(:func:`calibrate`); a score whose calibration set is too small for a share is left out. A union because each
detector misses a kind of input that another catches (on the bundled model: energy misses greyscale
scans and most photographs, the class token misses flat colours and Gaussian noise, the
convolution's statistics miss photographs, complexity misses most photographs;
``benchmarks/domain_check.py`` measures each).

Numbers only (numpy): the image wing (:mod:`attnviz.image.domain_check`) gets the features from the
model, fits, saves and loads the check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Added to the shared covariance's diagonal, as a share of its mean variance: a feature that never
#: varies on the training images (a dead channel) must not make the inverse blow up.
SHRINKAGE = 1e-3

ENERGY = "energy"
#: The feature holding each image's PNG bits per pixel, and the two scores made of it.
BITS, TOO_SIMPLE, TOO_COMPLEX = "png_bits_per_pixel", "too simple", "too complex"


@dataclass(frozen=True)
class ClassGaussians:
    """Class means ``[K, D]`` and the precision (inverse shared covariance) ``[D, D]``."""

    means: np.ndarray
    precision: np.ndarray


def fit_gaussians(features: np.ndarray, labels: np.ndarray) -> ClassGaussians:
    """Lee et al.'s class-conditional Gaussians with one covariance: ``features [N, D]``, ``labels [N]``.

    Classes absent from ``labels`` get no mean (the nearest-class distance ignores them).
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    if features.ndim != 2 or len(features) != len(labels) or len(features) < 2:
        raise ValueError(f"need features [N, D] with N >= 2 and one label each, got {features.shape}, {labels.shape}")
    classes = np.unique(labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in classes])  # (K, D)
    centred = features - means[np.searchsorted(classes, labels)]  # (N, D)
    cov = centred.T @ centred / len(features)  # (D, D)
    cov += SHRINKAGE * max(float(np.trace(cov)) / len(cov), 1e-12) * np.eye(len(cov))
    return ClassGaussians(means=means, precision=np.linalg.inv(cov))


def mahalanobis(features: np.ndarray, gaussians: ClassGaussians) -> np.ndarray:
    """Squared Mahalanobis distance of each row of ``features [N, D]`` to its nearest class mean: ``[N]``."""
    features = np.asarray(features, dtype=np.float64)
    best = np.full(len(features), np.inf)
    for mean in gaussians.means:  # K passes of [N, D]: no [N, K, D] array
        d = features - mean
        best = np.minimum(best, np.einsum("nd,de,ne->n", d, gaussians.precision, d))
    return best


def energy(logits: np.ndarray) -> np.ndarray:
    """Liu et al.'s energy ``-logsumexp(logits)`` of each row of ``logits [N, K]``: ``[N]``."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=1, keepdims=True)
    return -(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1)))


def flagged(scores: dict[str, np.ndarray], thresholds: dict[str, float]) -> np.ndarray:
    """``[N]`` True where any score passes its threshold."""
    return np.any([np.asarray(scores[k]) > t for k, t in thresholds.items()], axis=0)


def conformal_rank(n: int, share: float) -> int:
    """The split-conformal order statistic: with ``n`` calibration scores, a threshold at the
    ``ceil((n + 1)(1 - share))``-th smallest flags a fresh exchangeable score with probability at most
    ``share`` (Vovk et al. 2005; Angelopoulos & Bates 2023, "Conformal Prediction: A Gentle Introduction").
    Above ``n`` when ``n`` is too small for ``share`` (fewer than ``1 / share - 1`` scores)."""
    return math.ceil((n + 1) * (1 - share) - 1e-9)  # the tolerance: (n + 1)(1 - share) whole up to rounding


@dataclass(frozen=True)
class Calibration:
    """The thresholds of a check whose union flags at most ``bound`` of fresh in-domain inputs.

    ``shares``: each used score's part of the false-alarm budget; ``sizes``: the calibration scores each
    had; ``ranks``: which order statistic of them is its threshold; ``left_out``: the scores whose
    calibration sets are too small to take a part of the budget (no threshold: they never flag).
    """

    thresholds: dict[str, float]
    shares: dict[str, float]
    sizes: dict[str, int]
    ranks: dict[str, int]
    left_out: tuple[str, ...]
    bound: float  # the sum of (n + 1 - rank) / (n + 1): the union's false-alarm bound
    false_alarm: float  # the target

    @property
    def supported(self) -> bool:
        """Whether the calibration sets were large enough for the target (False: the fallback of :func:`calibrate`)."""
        return self.bound <= self.false_alarm + 1e-12


def calibrate(scores: dict[str, np.ndarray], false_alarm: float) -> Calibration:
    """Thresholds whose union flags at most ``false_alarm`` of fresh in-domain inputs, from each score's
    own calibration set (``scores[k]``: score ``k`` of inputs that did not shape it; the sets may differ).

    Each score is a split-conformal test at its share of the budget (:func:`conformal_rank`), and the
    shares add up to ``false_alarm``: the union bound makes the any-score check a test at ``false_alarm``,
    whatever the dependence between the scores. A score's share is at least ``1 / (n + 1)``, the least
    its ``n`` calibration scores can test at; the scores with the largest calibration sets are taken first
    (in ``scores``' order among equals) while their least shares fit the budget, and what is left of it is
    shared equally. The others are ``left_out``. When not even one fits, the scores of the largest set get
    the threshold at their largest value each (the least they can test at), and ``bound`` says what that
    gives, above ``false_alarm``.
    """
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must be between 0 and 1, not {false_alarm}")
    values = {k: np.sort(np.asarray(v, dtype=np.float64).reshape(-1)) for k, v in scores.items()}
    if not values or any(len(v) == 0 for v in values.values()):
        raise ValueError("every score needs at least one calibration value")
    sizes = {k: len(v) for k, v in values.items()}
    order = sorted(values, key=lambda k: -sizes[k])  # stable: the given order among equal sizes
    used: list[str] = []
    for k in order:
        if sum(1 / (sizes[j] + 1) for j in [*used, k]) <= false_alarm + 1e-12:
            used.append(k)
    if used:
        spare = (false_alarm - sum(1 / (sizes[k] + 1) for k in used)) / len(used)
        shares = {k: 1 / (sizes[k] + 1) + spare for k in used}
        ranks = {k: min(conformal_rank(sizes[k], shares[k]), sizes[k]) for k in used}
    else:
        largest = sizes[order[0]]
        used = [k for k in order if sizes[k] == largest]
        shares = {k: 1 / (largest + 1) for k in used}
        ranks = {k: largest for k in used}
    thresholds = {k: float(values[k][ranks[k] - 1]) for k in used}
    bound = float(sum((sizes[k] + 1 - ranks[k]) / (sizes[k] + 1) for k in used))
    return Calibration(
        thresholds=thresholds,
        shares=shares,
        sizes={k: sizes[k] for k in used},
        ranks=ranks,
        left_out=tuple(k for k in values if k not in used),
        bound=bound,
        false_alarm=false_alarm,
    )


@dataclass(frozen=True)
class DomainCheck:
    """A fitted, calibrated check: Gaussians per feature name, a threshold per score."""

    gaussians: dict[str, ClassGaussians]
    thresholds: dict[str, float]  # of the scores used: feature names, ENERGY, TOO_SIMPLE, TOO_COMPLEX
    false_alarm: float  # the target of the calibration
    #: Older checks (the bundled model's): the share of the calibration images flagged. Checks calibrated by
    #: :func:`calibrate`: the union's false-alarm bound on fresh in-domain inputs (:attr:`Calibration.bound`).
    calibration_rate: float
    #: How the thresholds were set (None for older checks, calibrated in-sample on one held-out set).
    calibration: Calibration | None = None

    def scores(self, features: dict[str, np.ndarray], logits: np.ndarray) -> dict[str, np.ndarray]:
        """Every score of a batch: ``{name: [N]}`` (``features`` holds each Gaussian's features and BITS)."""
        out = {name: mahalanobis(features[name], g) for name, g in self.gaussians.items()}
        out[ENERGY] = energy(logits)
        bits = np.asarray(features[BITS], dtype=np.float64).reshape(-1)
        out[TOO_SIMPLE], out[TOO_COMPLEX] = -bits, bits
        return out

    def flags(self, features: dict[str, np.ndarray], logits: np.ndarray) -> np.ndarray:
        """``[N]`` True for the inputs outside the domain."""
        return flagged(self.scores(features, logits), self.thresholds)
