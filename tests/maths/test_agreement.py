"""Rank correlation in numpy: ties, edge cases, agreement with scipy, and p-values against exact enumeration.

scipy is a test requirement (requirements-test.txt): the comparison always runs, it never skips.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from attnviz import InputError
from attnviz.maths.agreement import (
    describe,
    pearson,
    permutation_p_value,
    rankdata,
    relation,
    spearman,
    strength,
)


def test_ranks_average_ties():
    np.testing.assert_array_equal(rankdata([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    np.testing.assert_array_equal(rankdata([1, 1, 1]), [2, 2, 2])
    np.testing.assert_array_equal(rankdata(np.array([[3, 1], [2, 2]])), [4, 1, 2.5, 2.5])


def test_spearman_hand_computed():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 100, 2, 3]) == pytest.approx(0.4)  # ranks 1 4 2 3: 1 - 6·6/(4·15)
    # Monotone transformations do not change it.
    x = np.array([0.1, 0.5, 0.2, 0.9, 0.3])
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)


def test_spearman_accepts_grids():
    """The image page compares a rollout grid with a Grad-CAM grid of the same shape."""
    a = np.arange(12.0).reshape(3, 4)
    assert spearman(a, a**2) == pytest.approx(1.0)


def test_constant_scores_give_nan():
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(pearson([0, 0], [1, 2]))
    assert math.isnan(permutation_p_value([1, 1, 1], [1, 2, 3]))
    assert "same score" in describe(float("nan"), 3)


@pytest.mark.parametrize(
    "a, b, message",
    [([1, 2], [1, 2, 3], "same number"), ([1], [2], "at least two"), ([1, np.nan], [1, 2], "NaN")],
)
def test_bad_input(a, b, message):
    with pytest.raises(InputError, match=message):
        spearman(a, b)


def test_matches_scipy(rng):
    for n in (2, 5, 17, 100):
        a = rng.integers(0, 5, n).astype(float)  # many ties
        b = a + rng.normal(size=n)
        expected = stats.spearmanr(a, b).statistic
        if np.isnan(expected):
            assert math.isnan(spearman(a, b))
        else:
            assert spearman(a, b) == pytest.approx(expected, abs=1e-12)
        assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)


def exact_p_value(a, b) -> float:
    """Two-sided p-value of Spearman's rho over *every* ordering of ``b`` (scipy's ranks and rho)."""
    rho = abs(stats.spearmanr(a, b).statistic)
    ra, rb = stats.rankdata(a), stats.rankdata(b)
    orders = rb[np.array(list(itertools.permutations(range(len(rb)))))]  # (n!, n)
    rhos = np.array([stats.pearsonr(ra, order).statistic for order in orders])
    return float(np.mean(np.abs(rhos) >= rho - 1e-12))


@pytest.mark.parametrize(
    "a, b",
    [
        ([1, 2, 3, 4, 5, 6, 7], [2, 1, 4, 3, 7, 5, 6]),  # rho = +0.82, exact p = 0.034
        ([1, 2, 3, 4, 5, 6, 7], [7, 5, 6, 4, 1, 3, 2]),  # rho = -0.86: two-sided, not one-sided
        ([1, 2, 3, 4, 5, 6, 7], [4, 7, 1, 2, 6, 3, 5]),  # rho = 0: p = 1
        ([1, 2, 2, 3, 4, 5, 5], [3, 1, 2, 2, 5, 4, 4]),  # ties in both, rho = +0.64
        ([0.3, 0.1, 0.9, 0.4, 0.5, 0.2], [0.2, 0.8, 0.1, 0.5, 0.3, 0.6]),  # rho = -0.83
    ],
)
def test_permutation_p_value_matches_exact_enumeration(a, b):
    """Shuffling estimates the share of all n! orders that agree at least as well (both signs)."""
    exact = exact_p_value(a, b)
    n_permutations = 20_000
    estimate = permutation_p_value(a, b, n_permutations=n_permutations)
    # A seeded estimate: binomial standard error of the share, four times over, plus the +1 of the estimator.
    tolerance = 4 * math.sqrt(exact * (1 - exact) / n_permutations) + 2 / n_permutations
    assert estimate == pytest.approx(exact, abs=tolerance)


def test_permutation_p_value_closed_forms():
    x = np.arange(12.0)
    # Only the identity and the reversal reach |rho| = 1 among 12! orders (p = 2/12!, ~4e-9): 2,000 shuffles
    # almost surely find neither, and the estimator then gives (0 + 1) / (2000 + 1).
    assert permutation_p_value(x, x) == pytest.approx(1 / 2001)
    assert permutation_p_value(x, -x, n_permutations=500) == pytest.approx(1 / 501)
    # rho = 0: every order agrees at least as well, so p = 1.
    assert spearman([1, 2, 3, 4, 5], [2, 5, 3, 1, 4]) == pytest.approx(0.0)
    assert permutation_p_value([1, 2, 3, 4, 5], [2, 5, 3, 1, 4]) == pytest.approx(1.0)


def test_permutation_p_value_is_seeded():
    a, b = [1, 2, 3, 4, 5, 6, 7], [2, 1, 4, 3, 7, 5, 6]
    assert permutation_p_value(a, b, seed=3) == permutation_p_value(a, b, seed=3)
    assert permutation_p_value(a, b, seed=3) != permutation_p_value(a, b, seed=4)  # the seed is used


def test_words():
    assert [strength(r) for r in (0.05, -0.1, 0.29, -0.3, 0.5, -0.69, 0.7, 0.95, float("nan"))] == [
        "no relation",
        "weak",
        "weak",
        "moderate",
        "strong",
        "strong",
        "very strong",
        "very strong",
        "undefined",
    ]
    text = describe(0.72, 10, 0.02, ("IG", "rollout"))
    assert text.startswith("ρ = +0.72, very strong agreement: items that IG ranks high, rollout tends")
    assert "rarely" in text
    assert "rank low" in describe(-0.5, 10)
    assert "no relation" in describe(0.05, 10, 0.8)


def test_a_negative_rho_is_never_called_agreement():
    """The image page once said rollout and Grad-CAM "hardly disagree" for rho = -0.05 and -0.16."""
    assert relation(-0.05) == "no relation"
    assert relation(0.05) == "no relation"
    assert relation(-0.16) == "weak disagreement (opposite order)"
    assert relation(0.69) == "strong agreement"
    assert relation(-0.8) == "very strong disagreement (opposite order)"
    assert relation(float("nan")) == "undefined"
    for rho in np.linspace(-1, -0.1, 19):
        assert "agreement" not in relation(rho).replace("disagreement", "")
