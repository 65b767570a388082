"""The domain check's scores against independent computations, and its calibration."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from scipy.special import logsumexp

from attnviz.maths.domain_scores import (
    BITS,
    ENERGY,
    SHRINKAGE,
    TOO_COMPLEX,
    TOO_SIMPLE,
    DomainCheck,
    calibrate,
    energy,
    fit_gaussians,
    flagged,
    mahalanobis,
)


@pytest.fixture
def blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 1.0], [0.0, 6.0, -2.0]])
    labels = np.repeat(np.arange(3), 200)
    features = centres[labels] + rng.normal(size=(600, 3)) @ np.diag([1.0, 0.5, 2.0])
    return features, labels


def test_gaussians_are_class_means_and_the_inverse_pooled_covariance(blobs):
    features, labels = blobs
    g = fit_gaussians(features, labels)
    means = np.stack([features[labels == c].mean(axis=0) for c in range(3)])
    np.testing.assert_allclose(g.means, means)
    # Pooled within-class covariance, computed class by class (np.cov with the N denominator).
    pooled = sum(np.cov(features[labels == c].T, bias=True) * (labels == c).sum() for c in range(3)) / len(labels)
    pooled += SHRINKAGE * np.trace(pooled) / 3 * np.eye(3)
    np.testing.assert_allclose(g.precision, np.linalg.inv(pooled), rtol=1e-10)


def test_mahalanobis_is_the_squared_distance_to_the_nearest_class(blobs):
    features, labels = blobs
    g = fit_gaussians(features, labels)
    points = np.array([[0.1, 0.2, 0.0], [5.0, 0.0, 1.0], [20.0, 20.0, 20.0]])
    expected = [min(scipy_mahalanobis(p, m, g.precision) ** 2 for m in g.means) for p in points]
    np.testing.assert_allclose(mahalanobis(points, g), expected, rtol=1e-10)
    assert mahalanobis(points, g)[2] > 10 * mahalanobis(points, g)[0]


def test_energy_is_minus_logsumexp():
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, -1000.0, 0.0], [-5.0, -5.0, -5.0]])
    np.testing.assert_allclose(energy(logits), -logsumexp(logits, axis=1))


def test_calibration_flags_at_most_the_target_and_close_to_it():
    rng = np.random.default_rng(1)
    scores = {"a": rng.normal(size=2000), "b": rng.exponential(size=2000), "c": rng.normal(size=2000) ** 3}
    thresholds, rate = calibrate(scores, 0.03)
    flags = flagged(scores, thresholds)
    assert rate == flags.mean() <= 0.03
    assert rate >= 0.03 - 3 / 2000  # bisection gets within a few images of the target
    # One detector: its threshold is its own quantile.
    one, one_rate = calibrate({"a": scores["a"]}, 0.05)
    assert one_rate <= 0.05 and abs(one["a"] - np.quantile(scores["a"], 0.95)) < 0.05


def test_a_check_flags_points_far_from_the_classes(blobs):
    features, labels = blobs
    g = fit_gaussians(features, labels)
    check = DomainCheck({"f": g}, {}, 0.05, 0.0)
    logits = np.zeros((len(features), 3))
    bits = np.full(len(features), 10.0)
    thresholds, _ = calibrate(check.scores({"f": features, BITS: bits}, logits), 0.05)
    assert set(thresholds) == {"f", ENERGY, TOO_SIMPLE, TOO_COMPLEX}
    check = DomainCheck({"f": g}, thresholds, 0.05, 0.0)
    far = {"f": np.array([[30.0, -30.0, 30.0], [0.0, 0.0, 0.0]]), BITS: np.array([10.0, 10.0])}
    assert check.flags(far, np.zeros((2, 3))).tolist() == [True, False]
    plain = {"f": np.zeros((2, 3)), BITS: np.array([0.2, 40.0])}  # a flat image, pure noise
    assert check.flags(plain, np.zeros((2, 3))).tolist() == [True, True]
