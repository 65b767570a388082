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

An input is out of domain when **any** score passes its threshold. The thresholds are one quantile
of each score over held-out training-domain images, the quantile chosen by bisection so that the
union flags at most ``false_alarm`` of those images (:func:`calibrate`). A union because each
detector misses a kind of input that another catches (on the bundled model: energy misses greyscale
scans and most photographs, the class token misses flat colours and Gaussian noise, the
convolution's statistics miss photographs, complexity misses most photographs;
``benchmarks/domain_check.py`` measures each).

Numbers only (numpy): the image wing (:mod:`attnviz.image.domain_check`) gets the features from the
model, fits, saves and loads the check.
"""

from __future__ import annotations

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


def calibrate(scores: dict[str, np.ndarray], false_alarm: float, rounds: int = 40) -> tuple[dict[str, float], float]:
    """Thresholds so that the union flags at most ``false_alarm`` of these (in-domain) scores.

    Every detector gets the same quantile ``1 - a`` of its own scores; ``a`` is the largest (found by
    bisection) whose union flags at most ``false_alarm`` of the images. Returns (thresholds, the
    share of these images flagged).
    """
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must be between 0 and 1, not {false_alarm}")
    scores = {k: np.asarray(v, dtype=np.float64) for k, v in scores.items()}

    def at(a: float) -> dict[str, float]:
        return {k: float(np.quantile(v, 1 - a)) for k, v in scores.items()}

    lo, hi = 0.0, false_alarm  # the union of detectors at rate a flags at least a, so a <= false_alarm
    for _ in range(rounds):
        mid = (lo + hi) / 2
        if flagged(scores, at(mid)).mean() <= false_alarm:
            lo = mid
        else:
            hi = mid
    thresholds = at(lo)
    return thresholds, float(flagged(scores, thresholds).mean())


@dataclass(frozen=True)
class DomainCheck:
    """A fitted, calibrated check: Gaussians per feature name, a threshold per score."""

    gaussians: dict[str, ClassGaussians]
    thresholds: dict[str, float]  # feature names, ENERGY, TOO_SIMPLE and TOO_COMPLEX
    false_alarm: float  # the target of the calibration
    calibration_rate: float  # the share of the calibration images flagged

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
