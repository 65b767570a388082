"""Per-head statistics and labels on constructed attention and on the bundled model; head divergence and map."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

import attnviz
from attnviz import InputError, TextAttention, head_stats
from attnviz.examples import TEXT_EXAMPLES
from attnviz.maths.divergence import head_divergence, head_map, sampled_rows
from attnviz.maths.head_statistics import COLUMNS, LABELS, is_punctuation, key_masks
from tests.helpers import random_attention

# [CLS] the cat , sat . [SEP]  (punctuation at 3 and 5)
TOKENS = ["[CLS]", "the", "cat", ",", "sat", "on", "the", "mat", ".", "[SEP]"]
N = len(TOKENS)
SPECIAL = np.array([t in ("[CLS]", "[SEP]") for t in TOKENS])


def attention(pattern: np.ndarray, n_layers: int = 1, n_heads: int = 1) -> TextAttention:
    """A TextAttention over TOKENS whose every head has the [n, n] ``pattern``."""
    weights = np.broadcast_to(pattern.astype(np.float32), (n_layers, n_heads, N, N)).copy()
    return TextAttention(
        tokens=list(TOKENS),
        weights=weights,
        truncated=False,
        n_cut=0,
        special=SPECIAL.copy(),
        segment=np.zeros(N, dtype=np.int64),
        word_index=np.arange(N),
        words=list(TOKENS),
        text="the cat, sat on the mat.",
        model_name="constructed",
    )


def one_hot_rows(targets) -> np.ndarray:
    w = np.zeros((N, N))
    w[np.arange(N), targets] = 1.0
    return w


def only_row(table: pd.DataFrame, layer: int = 0, head: int = 0) -> pd.Series:
    return table[(table["layer"] == layer) & (table["head"] == head)].iloc[0]


# ---------------------------------------------------------------- constructed patterns


def test_pure_previous_token_pattern():
    # Row 0 ([CLS]) has no previous token and attends to itself.
    row = only_row(head_stats(attention(one_hot_rows([0] + list(range(N - 1))))))
    assert row["label"] == "previous token"
    assert row["prev_mass"] == pytest.approx(1.0)
    assert row["next_mass"] == pytest.approx(0.0)
    assert row["entropy"] == pytest.approx(0.0, abs=1e-6)
    assert row["self_mass"] == pytest.approx(1 / N)
    assert row["mean_distance"] == pytest.approx((N - 1) / N)
    assert row["uniform_entropy"] == pytest.approx(math.log(N))


def test_pure_next_token_pattern():
    row = only_row(head_stats(attention(one_hot_rows(list(range(1, N)) + [N - 1]))))
    assert row["label"] == "next token"
    assert row["next_mass"] == pytest.approx(1.0)
    assert row["sep_mass"] == pytest.approx(2 / N)  # rows 8 and 9 attend to [SEP]


def test_uniform_pattern_is_broad():
    row = only_row(head_stats(attention(np.full((N, N), 1.0 / N))))
    assert row["label"] == "broad"
    assert row["entropy"] == pytest.approx(math.log(N), abs=1e-5)
    assert row["entropy"] == pytest.approx(row["uniform_entropy"], abs=1e-5)
    assert row["cls_mass"] == pytest.approx(1 / N)
    assert row["sep_mass"] == pytest.approx(1 / N)
    assert row["punct_mass"] == pytest.approx(2 / N)
    assert row["prev_mass"] == pytest.approx(1 / N)
    expected_distance = np.abs(np.subtract.outer(np.arange(N), np.arange(N))).mean()
    assert row["mean_distance"] == pytest.approx(expected_distance, abs=1e-5)


@pytest.mark.parametrize(
    "targets, label",
    [
        ([0] * N, "[CLS]"),
        ([N - 1] * N, "[SEP]"),
        ([3] * 5 + [8] * 5, "punctuation"),
        (list(range(N)), "self"),
    ],
)
def test_special_punctuation_and_self_patterns(targets, label):
    assert only_row(head_stats(attention(one_hot_rows(targets))))["label"] == label


def test_a_blend_below_every_threshold_is_mixed():
    w = 0.4 * np.eye(N) + 0.4 * one_hot_rows([0] + list(range(N - 1))) + 0.2 * one_hot_rows([0] * N)
    row = only_row(head_stats(attention(w)))
    assert row["label"] == "mixed"
    assert row["entropy"] < 0.8 * row["uniform_entropy"]


def test_thresholds_are_strict():
    # Exactly 0.5 is not above 0.5: half self, half previous (row 0: half next) is mixed.
    w = 0.5 * np.eye(N) + 0.5 * one_hot_rows([1] + list(range(N - 1)))
    assert only_row(head_stats(attention(w)))["label"] == "mixed"
    # A little more on the previous token tips it over; offsets are checked before self.
    w = 0.49 * np.eye(N) + 0.51 * one_hot_rows([1] + list(range(N - 1)))
    assert only_row(head_stats(attention(w)))["label"] == "previous token"


def test_table_layout_and_value_ranges(rng):
    weights = random_attention(rng, 3, 4, N)
    ta = attention(np.eye(N))
    ta = dataclasses.replace(ta, weights=weights)
    table = head_stats(ta)
    assert list(table.columns) == ["layer", "head", *COLUMNS, "label"]
    assert len(table) == 12
    assert table[["layer", "head"]].values.tolist() == [[l, h] for l in range(3) for h in range(4)]
    for column in ("cls_mass", "sep_mass", "punct_mass", "self_mass", "prev_mass", "next_mass"):
        assert table[column].between(0, 1 + 1e-6).all(), column
    assert (table["entropy"] <= table["uniform_entropy"] + 1e-6).all()
    assert set(table["label"]) <= set(LABELS)
    # A statistic by hand for one head: mass on [CLS] is the mean of column 0.
    np.testing.assert_allclose(table["cls_mass"].to_numpy().reshape(3, 4), weights[:, :, :, 0].mean(axis=2), atol=1e-6)


def test_masks_name_cls_sep_and_punctuation():
    cls, sep, punct = key_masks(TOKENS, SPECIAL)
    assert np.flatnonzero(cls).tolist() == [0]
    assert np.flatnonzero(sep).tolist() == [N - 1]
    assert np.flatnonzero(punct).tolist() == [3, 8]
    # A pair input has two [SEP]; RoBERTa-style <s> ... </s></s> works the same way.
    cls, sep, _ = key_masks(["<s>", "a", "</s>", "</s>", "b", "</s>"], np.array([1, 0, 1, 1, 0, 1], dtype=bool))
    assert cls.tolist() == [True, False, False, False, False, False]
    assert np.flatnonzero(sep).tolist() == [2, 3, 5]


@pytest.mark.parametrize(
    "token, expected",
    [(".", True), (",", True), ("##.", True), ("'", True), ("—", True), ("«", True), ("?!", True), ("...", True)]
    + [("##", True), ("a", False), ("$", False), ("+", False), ("", False), ("a.", False), ("##s", False)],
)
def test_punctuation_is_unicode_category_p(token, expected):
    assert is_punctuation(token) is expected


def test_bad_input_is_an_input_error():
    with pytest.raises(InputError, match="TextAttention"):
        head_stats(np.zeros((1, 1, 2, 2)))
    ta = attention(np.eye(N))
    with pytest.raises(InputError, match="one token per row"):
        head_stats(dataclasses.replace(ta, tokens=TOKENS[:-1]))


def test_head_stats_is_the_exported_function():
    assert attnviz.head_stats is head_stats


# ---------------------------------------------------------------- the bundled model


@pytest.mark.bundled
@pytest.mark.parametrize("label", list(TEXT_EXAMPLES))
def test_bundled_layer0_head2_is_a_previous_token_head(bundled_model, label):
    text, pair = TEXT_EXAMPLES[label]
    table = head_stats(attnviz.text_attention(bundled_model, text, pair))
    assert len(table) == 72
    row = only_row(table, 0, 2)
    assert row["label"] == "previous token"
    assert row["prev_mass"] > 0.95
    assert row["entropy"] < 0.1


# ---------------------------------------------------------------- divergence and map


def test_divergence_of_identical_and_disjoint_heads():
    eye, shifted = np.eye(4), np.roll(np.eye(4), 1, axis=1)
    weights = np.stack([eye, eye, shifted])[None]  # (1, 3, 4, 4)
    d = head_divergence(weights)
    assert d.shape == (3, 3)
    np.testing.assert_allclose(np.diag(d), 0.0, atol=1e-12)
    assert d[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert d[0, 2] == pytest.approx(math.log(2))  # one-hot rows on different keys: the maximum
    np.testing.assert_allclose(d, d.T)


def test_divergence_samples_rows_of_long_inputs(rng):
    assert sampled_rows(10).tolist() == list(range(10))
    rows = sampled_rows(512)
    assert len(rows) == 64 and rows[0] == 0 and rows[-1] == 511
    w = random_attention(rng, 2, 3, 6)
    full = head_divergence(w)
    assert (full >= 0).all() and (full <= math.log(2) + 1e-9).all()


def test_head_map_separates_two_groups(rng):
    base = random_attention(rng, 1, 2, 8)[0]  # two different patterns
    heads = np.stack([base[0]] * 3 + [base[1]] * 3)  # three copies of each
    coords = head_map(head_divergence(heads[None]))
    assert coords.shape == (6, 2)
    within = np.linalg.norm(coords[0] - coords[1]) + np.linalg.norm(coords[3] - coords[4])
    between = np.linalg.norm(coords[0] - coords[3])
    assert within < 1e-6 < between
