"""Rank correlation in numpy: ties, edge cases, and agreement with scipy where it is installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnviz import InputError
from attnviz.maths.agreement import describe, pearson, permutation_p_value, rankdata, spearman, strength


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
    stats = pytest.importorskip("scipy.stats")
    for n in (2, 5, 17, 100):
        a = rng.integers(0, 5, n).astype(float)  # many ties
        b = a + rng.normal(size=n)
        expected = stats.spearmanr(a, b).statistic
        if np.isnan(expected):
            assert math.isnan(spearman(a, b))
        else:
            assert spearman(a, b) == pytest.approx(expected, abs=1e-12)
        assert pearson(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)


def test_permutation_p_value():
    x = np.arange(12.0)
    assert permutation_p_value(x, x) < 0.01
    assert permutation_p_value(x, x, seed=3) == permutation_p_value(x, x, seed=3)
    rng = np.random.default_rng(1)
    assert permutation_p_value(x, rng.permutation(x)) > 0.05


def test_words():
    assert [strength(r) for r in (0.1, -0.3, 0.5, -0.7, 0.95)] == [
        "very weak",
        "weak",
        "moderate",
        "strong",
        "very strong",
    ]
    text = describe(0.72, 10, 0.02, ("IG", "rollout"))
    assert text.startswith("ρ = +0.72, a strong positive correlation: items that IG ranks high, rollout tends")
    assert "rarely" in text
    assert "rank low" in describe(-0.5, 10)
    assert "almost independently" in describe(0.05, 10, 0.8)
