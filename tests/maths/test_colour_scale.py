"""Colour-scale tops and the near-uniform note, in numbers."""

from __future__ import annotations

import numpy as np

from attnviz.maths.colour_scale import colour_top, near_uniform_note


def test_the_issue_map_is_called_nearly_uniform_in_numbers():
    """64 cells spanning 0-0.02, where uniform is 1/64 = 0.0156: max is 1.3x uniform."""
    v = np.linspace(0.0112, 0.02, 64)
    v = v / v.sum()
    note = near_uniform_note(v.reshape(8, 8))
    assert note is not None
    assert f"the largest value, {v.max():.3g}, is 1.3x uniform (1/64 = 0.0156)" in note
    assert f"the smallest, {v.min():.3g}, is {v.min() * 64:.1f}x" in note


def test_a_peaked_map_gets_no_note():
    v = np.full(64, 0.5 / 63)
    v[10] = 0.5
    assert near_uniform_note(v) is None


def test_a_map_that_does_not_sum_to_one_says_the_mean():
    note = near_uniform_note([1.0, 1.2, 0.9, 1.1])
    assert note is not None and "uniform (its total spread evenly over the 4 cells, 1.05)" in note and "1.1x" in note
    assert "the largest value, 1.2, is 1.1x" in note and "the smallest, 0.9, is 0.9x" in note


def test_degenerate_maps_get_no_note():
    assert near_uniform_note([0.0, 0.0, 0.0]) is None
    assert near_uniform_note([1.0]) is None
    assert near_uniform_note([np.nan, 0.5, 0.5]) is not None  # NaN cells left out: 2 equal cells


def test_colour_top_is_the_max_unless_a_few_cells_wash_out_the_rest():
    spread = np.linspace(0.001, 0.01, 1000)
    top, words = colour_top(spread)
    assert top == 0.01 and "largest value, 0.01" in words
    peaked = spread.copy()
    peaked[:5] = 0.3  # a few outliers, 30x the rest
    top, words = colour_top(peaked)
    assert top == np.percentile(peaked, 99) and "99th percentile" in words and "up to 0.3" in words
    assert colour_top(np.zeros(4)) == (1.0, "0 to 1 (nothing above 0)")
