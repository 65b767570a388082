"""The domain check's scores against independent computations, and its calibration."""

from __future__ import annotations

import math
from fractions import Fraction

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
    conformal_rank,
    energy,
    fit_gaussians,
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


def test_the_conformal_rank_is_ceil_of_n_plus_one_times_one_minus_the_share():
    for n, share in [(19, 0.05), (18, 0.05), (99, 0.01), (2000, 0.03), (100, 0.0297), (7, 0.5)]:
        exact = math.ceil(Fraction(n + 1) * (1 - Fraction(str(share))))  # rational arithmetic, no rounding
        assert conformal_rank(n, share) == exact, (n, share)
    assert conformal_rank(18, 0.05) == 19 > 18  # 18 scores cannot test at 5 %


def test_the_thresholds_are_each_scores_conformal_order_statistic_and_the_shares_add_up():
    """Three scores with calibration sets of 999, 999 and 99: all fit a 3 % budget (each needs 1 / (n + 1));
    the spare 1.8 % is shared equally; recomputed here by hand."""
    rng = np.random.default_rng(2)
    scores = {"a": rng.normal(size=999), "b": rng.exponential(size=999), "c": rng.normal(size=99) ** 3}
    cal = calibrate(scores, 0.03)
    spare = (0.03 - 1 / 1000 - 1 / 1000 - 1 / 100) / 3
    assert cal.shares == pytest.approx({"a": 0.001 + spare, "b": 0.001 + spare, "c": 0.01 + spare})
    assert sum(cal.shares.values()) == pytest.approx(0.03)
    assert cal.ranks == {"a": 993, "b": 993, "c": 99}  # ceil(1000 * 0.993), ceil(100 * 0.984)
    for k, rank in cal.ranks.items():
        assert cal.thresholds[k] == sorted(scores[k])[rank - 1]
    assert cal.bound == pytest.approx(7 / 1000 + 7 / 1000 + 1 / 100) and cal.bound <= 0.03
    assert cal.left_out == () and cal.supported


def test_a_score_with_too_few_calibration_values_is_left_out_and_too_few_for_any_says_so():
    rng = np.random.default_rng(3)
    cal = calibrate({"few": rng.normal(size=10), "many": rng.normal(size=100), "more": rng.normal(size=100)}, 0.03)
    assert cal.left_out == ("few",) and set(cal.thresholds) == {"many", "more"}  # 1/11 alone is over 3 %
    assert cal.supported and cal.bound <= 0.03
    # 20 values each: 1/21 is over 3 % for any one of them. The fallback: the largest set's values at their
    # maximum each, and a bound that says what that gives.
    tiny = calibrate({"x": rng.normal(size=20), "y": rng.normal(size=20), "z": rng.normal(size=5)}, 0.03)
    assert set(tiny.thresholds) == {"x", "y"} and tiny.left_out == ("z",)
    assert tiny.ranks == {"x": 20, "y": 20} and tiny.bound == pytest.approx(2 / 21)
    assert not tiny.supported
    with pytest.raises(ValueError):
        calibrate({"x": np.ones(5)}, 1.5)


def test_the_union_flags_at_most_the_target_of_fresh_draws_whatever_the_dependence():
    """Monte Carlo: 4,000 calibrations of three correlated scores (60 values each), each tested on 100
    fresh draws. Each score's false-alarm rate averages (n + 1 - rank) / (n + 1) exactly (the conformal
    rank's distribution-free law); the union's is at most their sum, the target. The allowance: 4 standard
    errors of the 400,000 Bernoulli draws (each score's sd is at most 0.5 / sqrt(400,000) ~ 0.0008,
    correlated within a calibration, so 0.004 is comfortably over 4 of them)."""
    rng = np.random.default_rng(4)
    mix = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.8]])
    reps, n, fresh_n, target = 4000, 60, 100, 0.1
    per_score, union = np.zeros(3), 0.0
    for _ in range(reps):
        cal_draws = rng.normal(size=(n, 3)) @ mix.T
        fresh = rng.normal(size=(fresh_n, 3)) @ mix.T
        cal = calibrate({k: cal_draws[:, i] for i, k in enumerate("abc")}, target)
        hits = np.stack([fresh[:, i] > cal.thresholds[k] for i, k in enumerate("abc")])
        per_score += hits.mean(axis=1)
        union += hits.any(axis=0).mean()
    expected = np.array([(n + 1 - cal.ranks[k]) / (n + 1) for k in "abc"])  # the same ranks every time
    np.testing.assert_allclose(per_score / reps, expected, atol=0.004)
    assert union / reps <= cal.bound + 0.004 and cal.bound <= target


def test_a_check_flags_points_far_from_the_classes(blobs):
    features, labels = blobs
    g = fit_gaussians(features, labels)
    check = DomainCheck({"f": g}, {}, 0.05, 0.0)
    logits = np.zeros((len(features), 3))
    bits = np.full(len(features), 10.0)
    thresholds = calibrate(check.scores({"f": features, BITS: bits}, logits), 0.05).thresholds
    assert set(thresholds) == {"f", ENERGY, TOO_SIMPLE, TOO_COMPLEX}
    check = DomainCheck({"f": g}, thresholds, 0.05, 0.0)
    far = {"f": np.array([[30.0, -30.0, 30.0], [0.0, 0.0, 0.0]]), BITS: np.array([10.0, 10.0])}
    assert check.flags(far, np.zeros((2, 3))).tolist() == [True, False]
    plain = {"f": np.zeros((2, 3)), BITS: np.array([0.2, 40.0])}  # a flat image, pure noise
    assert check.flags(plain, np.zeros((2, 3))).tolist() == [True, True]
