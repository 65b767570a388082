"""The scoreboard's table and curves from a synthetic model: a score that is the kept units' weight."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pandas as pd
import pytest

from attnviz.maths.curve_runs import run_curves
from attnviz.maths.deletion_curves import MaskScores, auc, fractions, leave_one_out, random_orders, removed_counts
from attnviz.maths.explanation_table import COLUMNS, RANDOM, assemble

WEIGHTS = np.array([0.05, 0.4, 0.1, 0.25, 0.0, 0.2])  # the synthetic model's use of each unit


def compute(removed: np.ndarray) -> np.ndarray:
    return 0.1 + (WEIGHTS * ~removed).sum(axis=1)  # (m,): full input 1.1, all removed 0.1


def scoreboard(steps=6, random_count=5, seed=0):
    n = WEIGHTS.size
    pool = MaskScores(n, batch=4)
    full, removed = pool.scores(np.array([np.zeros(n, bool), np.ones(n, bool)]), compute)
    loo = leave_one_out(full, pool.scores(np.eye(n, dtype=bool), compute))
    importance = {"truth": WEIGHTS.copy(), "reversed": -WEIGHTS, "leave-one-out": loo}
    runs, rows = run_curves(
        pool,
        compute,
        importance=importance,
        steps=steps,
        random_count=random_count,
        seed=seed,
        extra_masks={"leave-one-out": np.eye(n, dtype=bool)},
        importance_seconds={"truth": 1.0},
    )
    scores = assemble(
        fractions=fractions(steps),
        importance=rows,
        deletion_raw=runs.deletion,
        insertion_raw=runs.insertion,
        seconds=runs.seconds,
        loo=loo,
        random_deletion_raw=runs.random_deletion,
        random_insertion_raw=runs.random_insertion,
        random_importance=runs.random_importance,
        random_seconds=runs.random_seconds,
        full_score=full,
        removed_score=removed,
        target="synthetic",
        removal="a unit's weight is dropped",
        units=[f"u{i}" for i in range(n)],
        notes=[],
        model_name="synthetic",
        family="encoder",
        steps=steps,
        random_orders=random_count,
        seed=seed,
        best_layer=None,
    )
    return scores, pool


def test_columns_and_sort():
    scores, _ = scoreboard()
    assert list(scores.table.columns) == list(COLUMNS)
    assert scores.table["deletion_auc"].is_monotonic_increasing
    assert set(scores.table["method"]) == {"truth", "reversed", "leave-one-out", RANDOM}
    others = scores.table[scores.table["method"] != RANDOM]
    assert others[["deletion_sd", "insertion_sd"]].isna().all().all()
    assert scores.table.set_index("method").loc[RANDOM, ["deletion_sd", "insertion_sd"]].notna().all()


def test_curves_start_at_the_full_score_and_end_at_the_removed_one():
    scores, _ = scoreboard()
    assert scores.full_score == pytest.approx(1.1) and scores.removed_score == pytest.approx(0.1)
    for method in scores.deletion:
        d, i = scores.deletion[method], scores.insertion[method]
        assert d[0] == 1.0 and i[-1] == 1.0
        assert d[-1] == pytest.approx(0.1 / 1.1) and i[0] == pytest.approx(0.1 / 1.1)


def test_the_right_order_wins_and_beats_random():
    scores, _ = scoreboard()
    table = scores.table.set_index("method")
    assert (
        table.loc["truth", "deletion_auc"] < table.loc[RANDOM, "deletion_auc"] < table.loc["reversed", "deletion_auc"]
    )
    assert table.loc["truth", "insertion_auc"] > table.loc["reversed", "insertion_auc"]
    assert table.loc["leave-one-out", "loo_spearman"] == pytest.approx(1.0)
    assert table.loc["truth", "loo_spearman"] == pytest.approx(1.0)  # LOO of an additive score is the weight
    assert "truth" in scores.summary() and "reversed" not in scores.summary()
    assert scores.methods[0] in {"truth", "leave-one-out"}


def test_random_band_equals_an_independent_computation():
    steps, count, seed = 6, 5, 3
    scores, _ = scoreboard(steps, count, seed)
    n = WEIGHTS.size
    k = [int(np.floor(i * n / steps + 0.5)) for i in range(steps + 1)]  # round(f n), half up
    assert k == removed_counts(n, steps).tolist()
    rng = np.random.default_rng(seed)
    deletion, insertion = [], []
    for _ in range(count):
        order = rng.permutation(n)
        deletion.append([(0.1 + WEIGHTS[np.setdiff1d(np.arange(n), order[:j])].sum()) / 1.1 for j in k])
        back = order[::-1]  # insertion uses the reversed order: it puts back n - k[steps - i] units
        insertion.append([(0.1 + WEIGHTS[back[: n - k[steps - i]]].sum()) / 1.1 for i in range(steps + 1)])
    np.testing.assert_allclose(scores.random_band["deletion"][0], np.mean(deletion, axis=0))
    np.testing.assert_allclose(scores.random_band["deletion"][1], np.std(deletion, axis=0))
    np.testing.assert_allclose(scores.random_band["insertion"][0], np.mean(insertion, axis=0))
    table = scores.table.set_index("method")
    areas = [auc(c) for c in deletion]
    assert table.loc[RANDOM, "deletion_auc"] == pytest.approx(np.mean(areas))
    assert table.loc[RANDOM, "deletion_sd"] == pytest.approx(np.std(areas))
    np.testing.assert_array_equal(random_orders(n, count, seed)[0], np.random.default_rng(seed).permutation(n))


def test_seconds_add_up_to_the_passes_and_the_importance_time():
    scores, pool = scoreboard()
    assert scores.table["seconds"].sum() == pytest.approx(pool.seconds + 1.0, rel=1e-6)
    assert (scores.table["seconds"] >= 0).all()


def test_without_random_the_summary_says_so_and_it_pickles():
    scores, _ = scoreboard(random_count=0)
    assert RANDOM not in set(scores.table["method"]) and scores.random_band == {}
    assert "random" in scores.summary().lower()
    assert pickle.dumps(scores)  # a cache may pickle it; deepcopy rebuilds it through the same protocol
    again = copy.deepcopy(scores)
    pd.testing.assert_frame_equal(again.table, scores.table)
    np.testing.assert_array_equal(again.deletion["truth"], scores.deletion["truth"])
