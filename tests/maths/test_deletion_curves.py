"""Deletion and insertion curves on arrays: counts, masks, orders, areas, the mask pool."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.errors import InputError
from attnviz.maths.deletion_curves import (
    MaskScores,
    auc,
    centre_nearness,
    check_settings,
    deletion_masks,
    fractions,
    insertion_masks,
    leave_one_out,
    order_importance,
    order_of,
    random_orders,
    removed_counts,
)


def test_counts_round_half_up_by_hand():
    # n = 5, steps = 4: f·n = 0, 1.25, 2.5, 3.75, 5
    assert removed_counts(5, 4).tolist() == [0, 1, 3, 4, 5]
    assert removed_counts(31, 20)[[0, 1, 10, 20]].tolist() == [0, 2, 16, 31]  # 1.55 -> 2, 15.5 -> 16
    assert fractions(4).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_order_breaks_ties_by_position_and_puts_nan_last():
    assert order_of([0.2, 0.5, 0.2, np.nan, 0.5]).tolist() == [1, 4, 0, 2, 3]
    order = np.array([2, 0, 3, 1])
    assert order_of(order_importance(order)).tolist() == order.tolist()


def test_deletion_removes_the_most_important_first():
    masks = deletion_masks(order_of([0.1, 0.9, 0.5, 0.3, 0.7]), steps=5)  # order 1, 4, 2, 3, 0
    assert masks.shape == (6, 5)
    assert masks[0].sum() == 0 and masks[-1].all()
    assert masks[1].tolist() == [False, True, False, False, False]
    assert masks[2].tolist() == [False, True, False, False, True]
    assert masks[3].tolist() == [False, True, True, False, True]


def test_insertion_starts_empty_and_puts_the_most_important_back_first():
    order = order_of([0.1, 0.9, 0.5, 0.3, 0.7])
    masks = insertion_masks(order, steps=5)
    assert masks[0].all() and not masks[-1].any()
    assert (~masks[1]).tolist() == [False, True, False, False, False]  # unit 1 is back
    assert (~masks[2]).tolist() == [False, True, False, False, True]
    # the same masks as deletion with the reversed order, read backwards
    np.testing.assert_array_equal(masks, deletion_masks(order[::-1], 5)[::-1])


@pytest.mark.parametrize(("n", "steps"), [(7, 3), (31, 20), (64, 20), (3, 10), (10, 4)])
def test_insertion_puts_back_round_f_n_units_up_to_ties(n, steps):
    kept = (~insertion_masks(np.arange(n), steps)).sum(axis=1)
    assert np.all(np.abs(kept - fractions(steps) * n) <= 0.5)
    assert kept[0] == 0 and kept[-1] == n and np.all(np.diff(kept) >= 0)


def test_trapezoid_area_by_hand():
    assert auc([1.0, 1.0, 1.0]) == pytest.approx(1.0)
    assert auc([1.0, 0.5, 0.0]) == pytest.approx(0.5)
    assert auc([1.0, 0.0, 0.0, 0.0, 0.0]) == pytest.approx(0.125)  # (1 + 0) / 2 * 0.25
    assert auc([0.0, 1.0], np.array([0.0, 1.0])) == pytest.approx(0.5)


def test_random_orders_are_seeded_permutations():
    a, b = random_orders(6, 4, seed=3), random_orders(6, 4, seed=3)
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(3)
    np.testing.assert_array_equal(a[0], rng.permutation(6))
    assert all(sorted(o) == list(range(6)) for o in a)
    assert not np.array_equal(a, random_orders(6, 4, seed=4))


def test_leave_one_out_and_centre_by_hand():
    np.testing.assert_allclose(leave_one_out(0.9, [0.5, 0.9, 1.0]), [0.4, 0.0, -0.1])
    centre = centre_nearness((2, 2)).reshape(2, 2)
    assert np.allclose(centre, centre[0, 0])  # four cells, all at the same distance
    big = centre_nearness((3, 3)).reshape(3, 3)
    assert big.argmax() == 4 and big[0, 0] < big[0, 1] < big[1, 1]


def test_the_pool_computes_each_distinct_mask_once():
    calls = []

    def compute(masks):
        calls.append(len(masks))
        return masks.sum(axis=1).astype(float)

    pool = MaskScores(3, batch=2)
    masks = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(pool.scores(masks, compute), [1, 0, 1, 3])
    assert calls == [2, 1] and pool.computed == 3
    np.testing.assert_array_equal(pool.scores(masks[::-1], compute), [3, 1, 0, 1])
    assert calls == [2, 1]  # nothing new
    assert masks[0] in pool and np.array([0, 1, 0], bool) not in pool


def test_settings_are_checked():
    check_settings(2, 0, 0)
    for bad in ((1, 20, 0), (20, -1, 0), (True, 20, 0), (20, 20, 1.5), (2.0, 1, 0)):
        with pytest.raises(InputError):
            check_settings(*bad)
