"""The corpus scoreboard's summary (mean ± sd per method, shares beating random) against a plain
numpy recomputation of every figure, on made-up per-input tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from attnviz.errors import InputError
from attnviz.maths.score_summary import method_key, stack_tables, summarise_scores, summary_markdown

COLUMNS = ("deletion_auc", "insertion_auc", "loo_spearman", "seconds")


def table(rng, methods, best_layer):
    rows = []
    for m in methods:
        name = f"attention (best layer: {best_layer})" if m == "best" else m
        rows.append({"method": name, **{c: float(rng.uniform()) for c in COLUMNS}, "deletion_sd": np.nan})
    return pd.DataFrame(rows)


@pytest.fixture
def tables(rng):
    methods = ["rollout", "best", "leave-one-out", "random", "attention flow"]
    out = [table(rng, methods, best_layer=i % 3) for i in range(7)]
    out[2] = out[2][out[2]["method"] != "attention flow"]  # flow only on short inputs
    out[4].loc[out[4]["method"] == "leave-one-out", "loo_spearman"] = np.nan
    return out


def test_method_key_drops_a_per_input_choice():
    assert method_key("attention (best layer: 3)") == "attention (best layer)"
    assert method_key("attention (best layer: 29)") == "attention (best layer)"
    assert method_key("position (nearness to [CLS])") == "position (nearness to [CLS])"
    assert method_key("attention × gradient") == "attention × gradient"


def test_mean_and_sd_equal_numpy_over_the_inputs(tables):
    summary = summarise_scores(stack_tables(tables)).set_index("method")
    assert set(summary.index) == {"rollout", "attention (best layer)", "leave-one-out", "random", "attention flow"}
    for method in summary.index:
        per_input = [t[t["method"].map(method_key) == method] for t in tables]
        per_input = [p.iloc[0] for p in per_input if len(p)]
        assert summary.loc[method, "inputs"] == len(per_input)
        for c in COLUMNS:
            values = np.array([p[c] for p in per_input], dtype=float)
            values = values[~np.isnan(values)]
            assert summary.loc[method, f"{c}_mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert summary.loc[method, f"{c}_sd"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    assert summary.loc["attention flow", "inputs"] == 6
    means = summarise_scores(stack_tables(tables))["deletion_auc_mean"].to_numpy()
    assert (np.diff(means) >= 0).all()  # best (lowest deletion area) first


def test_beats_random_is_paired_per_input(tables):
    summary = summarise_scores(stack_tables(tables)).set_index("method")
    for method in ("rollout", "attention flow"):
        wins_d, wins_i = [], []
        for t in tables:
            mine = t[t["method"] == method]
            if not len(mine):
                continue
            rnd = t[t["method"] == "random"].iloc[0]
            wins_d.append(mine.iloc[0]["deletion_auc"] < rnd["deletion_auc"])
            wins_i.append(mine.iloc[0]["insertion_auc"] > rnd["insertion_auc"])
        assert summary.loc[method, "beats_random_deletion"] == pytest.approx(np.mean(wins_d))
        assert summary.loc[method, "beats_random_insertion"] == pytest.approx(np.mean(wins_i))
    assert math.isnan(summary.loc["random", "beats_random_deletion"])


def test_one_input_has_no_sd_and_no_random_no_shares(rng):
    one = table(rng, ["rollout", "leave-one-out"], 0)
    summary = summarise_scores(stack_tables([one]))
    assert summary["inputs"].tolist() == [1, 1]
    assert summary["deletion_auc_sd"].isna().all() and summary["beats_random_deletion"].isna().all()
    text = summary_markdown(summary)
    assert "| rollout | 1 |" in text and "±" not in text


def test_markdown_has_a_row_per_method(tables):
    summary = summarise_scores(stack_tables(tables))
    text = summary_markdown(summary)
    for method in summary["method"]:
        assert f"| {method} |" in text
    assert len(text.splitlines()) == 2 + len(summary)


def test_bad_tables_are_input_errors(rng):
    with pytest.raises(InputError, match="lacks"):
        stack_tables([pd.DataFrame({"method": ["x"], "deletion_auc": [0.1]})])
    with pytest.raises(InputError, match="input names"):
        stack_tables([table(rng, ["x"], 0)], inputs=["a", "b"])
    doubled = stack_tables([table(rng, ["random", "random"], 0)])
    with pytest.raises(InputError, match="more than one"):
        summarise_scores(doubled)
    assert stack_tables([]).empty and summarise_scores(stack_tables([])).empty
