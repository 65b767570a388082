"""Attention x gradient (Chefer et al. 2021) and the residual layers of attention flow, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.errors import InputError
from attnviz.maths.gradient_attention import gradient_weighted_rollout, residual_layers


def test_one_layer_by_hand():
    a = np.array([[[[0.5, 0.5], [0.2, 0.8]], [[1.0, 0.0], [0.6, 0.4]]]])  # (1 layer, 2 heads, 2, 2)
    g = np.array([[[[2.0, -1.0], [1.0, 1.0]], [[1.0, 3.0], [-1.0, 0.5]]]])
    # grad * attention, clamped at 0: head 0 [[1, 0], [0.2, 0.8]], head 1 [[1, 0], [0, 0.2]]
    mean = np.array([[1.0, 0.0], [0.1, 0.5]])
    np.testing.assert_allclose(gradient_weighted_rollout(a, g), np.eye(2) + mean)


def test_layers_compose_first_layer_first():
    rng = np.random.default_rng(0)
    a = rng.random((2, 3, 4, 4))
    g = rng.normal(size=(2, 3, 4, 4))
    first, second = (np.clip(g[i] * a[i], 0, None).mean(axis=0) for i in range(2))
    r1 = np.eye(4) + first @ np.eye(4)
    expected = r1 + second @ r1  # R_1 = R_0 + Ā_1 R_0
    np.testing.assert_allclose(gradient_weighted_rollout(a, g), expected)
    np.testing.assert_allclose(expected, (np.eye(4) + second) @ (np.eye(4) + first))


def test_zero_gradient_leaves_the_identity():
    a = np.full((3, 2, 3, 3), 1 / 3)
    np.testing.assert_array_equal(gradient_weighted_rollout(a, np.zeros_like(a)), np.eye(3))


def test_residual_layers_by_hand():
    a = np.array([[[[0.5, 0.5], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]]])  # heads mean [[0.75, 0.25], [0, 1]]
    np.testing.assert_allclose(residual_layers(a)[0], [[0.875, 0.125], [0.0, 1.0]])


def test_bad_shapes_are_refused():
    with pytest.raises(InputError):
        gradient_weighted_rollout(np.ones((2, 2, 2)), np.ones((2, 2, 2)))
    with pytest.raises(InputError):
        gradient_weighted_rollout(np.ones((1, 1, 2, 2)), np.ones((1, 2, 2, 2)))
    with pytest.raises(InputError):
        residual_layers(np.full((1, 1, 2, 2), np.nan))
