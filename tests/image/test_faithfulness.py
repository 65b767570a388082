"""Pointing game and mass inside the mask, on constructed maps and masks."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.image.faithfulness import evaluate, table
from attnviz.maths.map_scores import mass_inside, point_hits, pointing_hit


def _mask(rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((64, 64), dtype=bool)
    m[rows, cols] = True
    return m


def test_peak_on_the_object_hits_and_elsewhere_misses():
    mask = _mask(slice(8, 16), slice(40, 48))  # exactly grid cell (1, 5)
    grid = np.zeros((8, 8))
    grid[1, 5] = 1.0
    assert pointing_hit(grid, mask)
    grid = np.zeros((8, 8))
    grid[6, 1] = 1.0
    assert not pointing_hit(grid, mask)


def test_tolerance_is_half_a_cell():
    mask = _mask(slice(8, 16), slice(48, 49))  # a 1-px wide line at x = 48
    # Cell (1, 5) has its centre at x = 44: the mask pixel centre 48.5 is 4.5 px away, > 4 px.
    assert not point_hits((44.0, 12.5), mask, tolerance=4.0)
    assert point_hits((44.5, 12.5), mask, tolerance=4.0)


def test_flat_map_never_hits():
    assert not pointing_hit(np.zeros((8, 8)), np.ones((64, 64), bool))
    assert not pointing_hit(np.ones((8, 8)), np.ones((64, 64), bool))


def test_mass_inside():
    mask = _mask(slice(0, 32), slice(0, 64))  # the top half
    assert mass_inside(np.ones((8, 8)), mask) == pytest.approx(0.5)
    top = np.zeros((8, 8))
    top[:4] = 1
    assert mass_inside(top, mask) == pytest.approx(1.0)
    half_cell = _mask(slice(0, 4), slice(0, 8))  # half of cell (0, 0)
    one = np.zeros((8, 8))
    one[0, 0] = 2.0
    assert mass_inside(one, half_cell) == pytest.approx(0.5)
    assert mass_inside(np.zeros((8, 8)), mask) == 0.0


def test_evaluate_runs_and_reports_each_method(random_model):  # noqa: F811
    result = evaluate(random_model, n_images=12, seed=5)
    assert set(result.pointing) == {"last-layer attention", "rollout", "Grad-CAM", "centre baseline"}
    assert all(0 <= v <= 1 for v in (*result.pointing.values(), *result.mass.values()))
    assert 0 < result.mass["uniform baseline"] < 0.5
    assert "rollout" in table(result)
