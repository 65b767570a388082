"""The integrated-gradients precision check: the share of the change missed, the warning, the next step count."""

from __future__ import annotations

import math

import pytest

from attnviz.maths.integral_check import MAX_SHARE, integral_error, integral_warning, more_steps


def test_error_is_delta_over_change():
    assert integral_error(0.013, 0.1) == pytest.approx(0.13)
    assert integral_error(-0.013, -0.1) == pytest.approx(0.13)
    assert integral_error(0.0, 0.0) == 0.0
    assert math.isinf(integral_error(0.01, 0.0))
    assert math.isnan(integral_error(float("nan"), 1.0))


def test_warning_when_the_delta_is_large():
    """The issue's case: a 13 % error was shown without a warning."""
    warning = integral_warning(0.13, 50)
    assert warning is not None
    assert "13% of the change" in warning and "50 steps" in warning and "5%" in warning
    assert "more than the whole change" in integral_warning(float("inf"), 16)
    assert "more than the whole change" in integral_warning(2.5, 16)


def test_no_warning_within_the_threshold():
    assert integral_warning(0.02, 50) is None
    assert integral_warning(MAX_SHARE, 50) is None  # "within 5 %" includes 5 %
    assert integral_warning(float("nan"), 0) is None  # feature ablation: no integral


def test_more_steps_is_the_next_choice():
    assert more_steps(50, [16, 32, 50, 100, 200]) == 100
    assert more_steps(60, (200, 100, 16)) == 100
    assert more_steps(200, [16, 32, 50, 100, 200]) is None
