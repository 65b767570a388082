"""Decoder head scores (previous token, duplicate token, induction, sink, local, broad), the first
token hidden, and head_stats on causal attention: hand-built arrays with known answers, slow loop
definitions, and the bundled SmolLM2."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

import attnviz
from attnviz import InputError, TextAttention, head_stats
from attnviz.examples import TEXT_EXAMPLES
from attnviz.maths import decoder_heads as dh
from attnviz.maths.head_statistics import (
    DECODER_COLUMNS,
    DECODER_LABELS,
    DecoderHeadTotals,
    is_decoder_table,
    token_identities,
)


def causal(rows) -> np.ndarray:
    """``[1, 1, n, n]`` from a list of rows (each padded with zeros to n)."""
    n = len(rows)
    w = np.zeros((n, n))
    for i, row in enumerate(rows):
        w[i, : len(row)] = row
    return w[None, None]


def one_hot(targets) -> np.ndarray:
    """``[1, 1, n, n]``: row i puts all its attention on key ``targets[i]`` (≤ i)."""
    n = len(targets)
    w = np.zeros((n, n))
    w[np.arange(n), targets] = 1.0
    return w[None, None]


def uniform_causal(n: int) -> np.ndarray:
    return np.tril(np.ones((n, n))) / np.arange(1, n + 1)[:, None]


def random_causal(rng, n_layers: int, n_heads: int, n: int) -> np.ndarray:
    """Random float32 causal weights: zeros above the diagonal, rows summing to 1."""
    logits = rng.normal(scale=2.0, size=(n_layers, n_heads, n, n))
    w = np.exp(logits) * np.tril(np.ones((n, n)))
    return (w / w.sum(axis=-1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------- slow definitions, one loop per row


def slow_scores(w: np.ndarray, ids, special, window: int = dh.LOCAL_WINDOW) -> dict[str, np.ndarray]:
    n_layers, n_heads, n, _ = w.shape
    out = {}
    for name in ("prev", "dup", "ind", "first", "special", "local", "fraction"):
        out[name] = np.full((n_layers, n_heads), np.nan)
    for l in range(n_layers):
        for h in range(n_heads):
            a = w[l, h].astype(np.float64)
            prev, dup, ind, first, spec, local, ent, uni = [], [], [], [], [], [], 0.0, 0.0
            for i in range(1, n):
                prev.append(a[i, i - 1])
                first.append(a[i, 0])
                spec.append(sum(a[i, j] for j in range(n) if special[j]))
                earlier = [j for j in range(i) if ids[j] == ids[i] and ids[i] >= 0]
                if earlier:
                    dup.append(sum(a[i, j] for j in earlier))
                targets = {j + 1 for j in earlier if j + 1 < i}
                if targets:
                    ind.append(sum(a[i, k] for k in targets))
                if i > window:
                    local.append(sum(a[i, j] for j in range(i - window, i + 1)))
                ent -= sum(a[i, j] * math.log(a[i, j]) for j in range(i + 1) if a[i, j] > 0)
                uni += math.log(i + 1)
            for name, values in (("prev", prev), ("dup", dup), ("ind", ind), ("first", first)):
                if values:
                    out[name][l, h] = np.mean(values)
            if spec:
                out["special"][l, h] = np.mean(spec)
            if local:
                out["local"][l, h] = np.mean(local)
            if n > 1:
                out["fraction"][l, h] = ent / uni
    return out


def test_every_score_equals_its_loop_definition(rng):
    n = 17
    w = random_causal(rng, 2, 3, n)
    ids = rng.integers(0, 4, size=n)  # a small vocabulary: many repeats, some consecutive
    ids[5] = -1  # unknown: matches nothing
    special = rng.random(n) < 0.2
    slow = slow_scores(w, ids, special)
    np.testing.assert_allclose(dh.previous_token_score(w), slow["prev"], rtol=1e-6)
    np.testing.assert_allclose(dh.duplicate_token_score(w, ids), slow["dup"], rtol=1e-6)
    np.testing.assert_allclose(dh.induction_score(w, ids), slow["ind"], rtol=1e-6)
    np.testing.assert_allclose(dh.first_token_mass(w), slow["first"], rtol=1e-6)
    np.testing.assert_allclose(dh.special_token_mass(w, special), slow["special"], rtol=1e-6)
    np.testing.assert_allclose(dh.local_mass(w), slow["local"], rtol=1e-6)
    np.testing.assert_allclose(dh.entropy_fraction(w), slow["fraction"], rtol=1e-5)
    # row_statistics holds the same numbers before the mean over rows.
    stats = dh.row_statistics(w, ids, special)
    for name, key in (("prev_mass", "prev"), ("duplicate_mass", "dup"), ("induction_mass", "ind")):
        values, rows = stats[name]
        np.testing.assert_allclose(dh.mean_over_rows(values, rows), slow[key], rtol=1e-6)
    np.testing.assert_allclose(dh.mean_over_rows(*stats["local_mass"]), slow["local"], rtol=1e-6)


# ---------------------------------------------------------------- hand-built patterns


def test_previous_token_pattern_scores_1_and_uniform_scores_its_share():
    assert dh.previous_token_score(one_hot([0, 0, 1, 2, 3]))[0, 0] == pytest.approx(1.0)
    # Uniform causal rows put 1/(i+1) on the previous token: (1/2 + 1/3 + 1/4) / 3.
    expected = (1 / 2 + 1 / 3 + 1 / 4) / 3
    assert dh.previous_token_score(uniform_causal(4)[None, None])[0, 0] == pytest.approx(expected)


def test_induction_and_duplicate_on_a_repeated_sequence():
    ids = [5, 7, 9, 5, 7, 9]  # A B C A B C
    # Induction: the second A looks at the first B, the second B at C, the second C at the second A
    # (the token after the first C). Rows 0-2 attend to the first token.
    induction = one_hot([0, 0, 0, 1, 2, 3])
    assert dh.induction_score(induction, ids)[0, 0] == pytest.approx(1.0)
    assert dh.duplicate_token_score(induction, ids)[0, 0] == pytest.approx(0.0)
    # Duplicate token: each token of the second copy looks at its first copy.
    duplicate = one_hot([0, 0, 0, 0, 1, 2])
    assert dh.duplicate_token_score(duplicate, ids)[0, 0] == pytest.approx(1.0)
    assert dh.induction_score(duplicate, ids)[0, 0] == pytest.approx(0.0)
    # Half on the induction target, half on the sink: 0.5.
    half = 0.5 * induction + 0.5 * one_hot([0] * 6)
    assert dh.induction_score(half, ids)[0, 0] == pytest.approx(0.5)
    np.testing.assert_array_equal(np.flatnonzero(dh.induction_mask(ids).any(axis=1)), [3, 4, 5])


def test_the_repeated_random_probe_score_is_the_transformerlens_stripe(rng):
    n = 6
    ids = np.concatenate([np.arange(10, 10 + n)] * 2)
    w = random_causal(rng, 1, 2, 2 * n)
    stripe = np.stack([w[:, :, n + k, k + 1] for k in range(n)], axis=-1).mean(axis=-1)
    np.testing.assert_allclose(dh.induction_score(w, ids), stripe, rtol=1e-6)


def test_a_token_after_itself_is_never_its_own_induction_target():
    # "a a": the token after the first a is the second a, the query itself.
    ids = [3, 3]
    assert not dh.induction_mask(ids).any()
    assert np.isnan(dh.induction_score(one_hot([0, 1]), ids)[0, 0])
    assert dh.duplicate_token_score(one_hot([0, 0]), ids)[0, 0] == pytest.approx(1.0)
    # "a a a": row 2's targets are key 1 (after the first a) but not key 2 (itself).
    assert dh.induction_mask([3, 3, 3])[2].tolist() == [False, True, False]


def test_no_repeat_and_unknown_ids_give_nan():
    w = one_hot([0, 0, 1, 2])
    assert np.isnan(dh.duplicate_token_score(w, [1, 2, 3, 4])[0, 0])
    assert np.isnan(dh.induction_score(w, [-1, 2, -1, -1])[0, 0])


def test_sink_special_and_local_masses():
    w = causal([[1], [0.8, 0.2], [0.6, 0.2, 0.2], [0.5, 0.1, 0.1, 0.3], [0.4, 0.1, 0.1, 0.1, 0.3]])
    assert dh.first_token_mass(w)[0, 0] == pytest.approx((0.8 + 0.6 + 0.5 + 0.4) / 4)
    special = np.array([False, False, True, False, False])
    assert dh.special_token_mass(w, special)[0, 0] == pytest.approx((0 + 0.2 + 0.1 + 0.1) / 4)
    # Window 1: key i and i-1, rows i > 1 only.
    assert dh.local_mass(w, window=1)[0, 0] == pytest.approx((0.4 + 0.4 + 0.4) / 3)
    # Window 3 (the default): only row 4 sees past it; keys 1..4.
    assert dh.local_mass(w)[0, 0] == pytest.approx(0.6)
    assert np.isnan(dh.local_mass(w, window=4)[0, 0])  # no row sees past the window


def test_broadness_is_relative_to_the_visible_keys():
    n = 9
    assert dh.entropy_fraction(uniform_causal(n)[None, None])[0, 0] == pytest.approx(1.0)
    assert dh.entropy_fraction(one_hot([0] * n))[0, 0] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(dh.uniform_entropy(4), np.log([1, 2, 3, 4]))
    # Uniform causal rows reach ln(i+1), never ln n.
    np.testing.assert_allclose(dh.row_entropy(uniform_causal(n)[None, None])[0, 0], np.log(np.arange(1, n + 1)))


# ---------------------------------------------------------------- the first token hidden


def test_hide_first_token_by_hand():
    w = causal([[1], [0.5, 0.5], [0.5, 0.25, 0.25], [1.0, 0, 0, 0], [0.2, 0.2, 0.2, 0.2, 0.2]]).astype(np.float32)
    before = w.copy()
    hidden = dh.hide_first_token(w)
    assert hidden.shape == (1, 1, 4, 4)
    assert hidden.dtype == np.float32
    expected = np.array(
        [
            [1, 0, 0, 0],  # the old row 1: its only key left is itself
            [0.5, 0.5, 0, 0],
            [0, 0, 0, 0],  # all of it was on the first token: nothing left to share out
            [0.25, 0.25, 0.25, 0.25],
        ]
    )
    np.testing.assert_allclose(hidden[0, 0], expected, atol=1e-7)
    np.testing.assert_array_equal(w, before)  # a new array; the input is untouched


def test_hide_first_token_equals_its_loop_definition(rng):
    w = random_causal(rng, 2, 3, 7)
    hidden = dh.hide_first_token(w)
    for l in range(2):
        for h in range(3):
            for i in range(1, 7):
                rest = w[l, h, i, 1:].astype(np.float64)
                np.testing.assert_allclose(hidden[l, h, i - 1], rest / rest.sum(), rtol=1e-5)
    np.testing.assert_allclose(hidden.sum(axis=-1), 1.0, atol=1e-5)
    assert (np.triu(hidden[0, 0], 1) == 0).all()  # still causal
    assert dh.hide_first_token(w[:, :, :1, :1]).shape == (2, 3, 0, 0)


def test_bad_shapes_are_input_errors():
    with pytest.raises(InputError, match="layers, heads, n, n"):
        dh.previous_token_score(np.zeros((2, 2)))
    with pytest.raises(InputError, match="token_ids"):
        dh.induction_score(one_hot([0, 0, 1]), [1, 2])
    with pytest.raises(InputError, match="one flag per token"):
        dh.special_token_mass(one_hot([0, 0, 1]), [True])
    with pytest.raises(InputError, match="window"):
        dh.local_mass(one_hot([0, 0, 1]), window=-1)


# ---------------------------------------------------------------- head_stats on causal attention

WORDS = ["A", " B", " C", " D", " A", " B", " C", " D", " E", " F"]


def decoder_attention(weights: np.ndarray, tokens=WORDS, special=None) -> TextAttention:
    n = len(tokens)
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim == 2:
        weights = weights[None, None]
    return TextAttention(
        tokens=list(tokens),
        weights=weights,
        truncated=False,
        n_cut=0,
        special=np.zeros(n, dtype=bool) if special is None else np.asarray(special),
        segment=np.zeros(n, dtype=np.int64),
        word_index=np.arange(n),
        words=list(tokens),
        text="".join(tokens),
        model_name="constructed decoder",
        causal=True,
    )


def row0(table: pd.DataFrame) -> pd.Series:
    return table.iloc[0]


N = len(WORDS)
PREV = [0] + list(range(N - 1))
# The second A..D attend to the token after their first copy; everything else to the first token.
INDUCTION = [0, 0, 0, 0, 1, 2, 3, 4, 0, 0]
DUPLICATE = [0, 0, 0, 0, 0, 1, 2, 3, 0, 0]


@pytest.mark.parametrize(
    "weights, label",
    [
        (one_hot(PREV), "previous token"),
        (one_hot(INDUCTION), "induction"),
        (one_hot(DUPLICATE), "duplicate token"),
        (one_hot([0] * N), "first-token sink"),
        (one_hot(list(range(N))), "self"),
        # Spread over the token and the three before it: no single key holds more than half.
        (np.tril(np.ones((N, N))) - np.tril(np.ones((N, N)), -4), "local"),
        (uniform_causal(N), "broad"),
        (0.3 * one_hot([0] * N) + 0.3 * one_hot(list(range(N))) + 0.4 * one_hot(PREV), "mixed"),
    ],
)
def test_decoder_labels_on_constructed_patterns(weights, label):
    w = np.asarray(weights, dtype=np.float64).reshape(N, N)
    w = w / w.sum(axis=-1, keepdims=True)
    table = head_stats(decoder_attention(w))
    assert row0(table)["label"] == label


def test_special_tokens_after_the_first_have_their_own_label():
    special = np.zeros(N, dtype=bool)
    special[[0, 3]] = True  # a BOS and a special token in the middle
    targets = [0, 0, 0, 3, 3, 3, 3, 3, 3, 3]
    row = row0(head_stats(decoder_attention(one_hot(targets), special=special)))
    assert row["label"] == "special tokens"
    assert row["special_mass"] == pytest.approx(7 / 9)  # rows 3..9 of rows 1..9
    assert row["first_mass"] == pytest.approx(2 / 9)  # the BOS is counted once, as the first token


def test_decoder_table_columns_values_and_uniform_entropy(rng):
    weights = random_causal(rng, 3, 4, N)
    table = head_stats(decoder_attention(weights))
    assert is_decoder_table(table)
    assert list(table.columns) == ["layer", "head", *DECODER_COLUMNS, "label"]
    assert len(table) == 12
    assert set(table["label"]) <= set(DECODER_LABELS)
    # Row i's uniform entropy is ln(i+1), averaged over rows 1..n-1; never ln n.
    assert table["uniform_entropy"].iloc[0] == pytest.approx(np.log(np.arange(2, N + 1)).mean())
    assert (table["entropy"] <= table["uniform_entropy"] + 1e-6).all()
    ids = token_identities(WORDS)
    grid = {
        "prev_mass": dh.previous_token_score(weights),
        "first_mass": dh.first_token_mass(weights),
        "induction_mass": dh.induction_score(weights, ids),
        "duplicate_mass": dh.duplicate_token_score(weights, ids),
        "local_mass": dh.local_mass(weights),
    }
    for column, expected in grid.items():
        np.testing.assert_allclose(table[column].to_numpy().reshape(3, 4), expected, rtol=1e-6, err_msg=column)
    ratio = table["entropy"] / table["uniform_entropy"]
    np.testing.assert_allclose(ratio.to_numpy().reshape(3, 4), dh.entropy_fraction(weights), rtol=1e-5)


def test_an_encoder_table_is_unchanged_by_the_decoder_rules(rng):
    ta = decoder_attention(random_causal(rng, 1, 2, N))
    encoder = dataclasses.replace(ta, causal=False)
    assert not is_decoder_table(head_stats(encoder))
    assert "cls_mass" in head_stats(encoder).columns


def test_totals_over_two_inputs_weigh_every_row_once(rng):
    a, b = random_causal(rng, 1, 2, 6), random_causal(rng, 1, 2, 9)
    tokens_a, tokens_b = [f"t{i}" for i in range(6)], [f"u{i % 4}" for i in range(9)]
    totals = DecoderHeadTotals(1, 2)
    totals.add(a, tokens_a, np.zeros(6, dtype=bool))
    totals.add(b, tokens_b, np.zeros(9, dtype=bool))
    means = totals.means()
    # Rows 1..5 of a and 1..8 of b: 13 rows.
    expected = (a[..., 1:, 0].sum(axis=-1) + b[..., 1:, 0].sum(axis=-1)) / 13
    np.testing.assert_allclose(means["first_mass"], expected, rtol=1e-6)
    # Induction only has rows in b (a never repeats a token).
    np.testing.assert_allclose(means["induction_mass"], dh.induction_score(b, token_identities(tokens_b)), rtol=1e-6)
    assert totals.sentences == 2


def test_token_identities_match_equal_texts_and_never_broken_bytes():
    assert token_identities([" the", " cat", " the", "\ufffd", "\ufffd"]).tolist() == [0, 1, 0, -1, -1]


def test_a_one_token_decoder_input_is_all_nan_and_mixed():
    table = head_stats(decoder_attention(np.ones((1, 1)), tokens=["Hi"]))
    assert table["label"].tolist() == ["mixed"]
    assert table[list(DECODER_COLUMNS)].isna().all(axis=None)


# ---------------------------------------------------------------- the bundled SmolLM2

SENTENCES = [text for text, pair in TEXT_EXAMPLES.values() if pair is None]


@pytest.mark.bundled
def test_bundled_decoder_first_token_is_a_sink_from_the_middle_layers_on(bundled_decoder):
    # Measured: layers 0-1 put 0.11-0.27 of their attention on the first token, layers 12-29
    # 0.45-0.92 (layer 16 is the lowest of them, 0.45-0.51), 0.57-0.81 on average.
    for text in SENTENCES:
        ta = attnviz.text_attention(bundled_decoder, text)
        per_layer = dh.first_token_mass(ta.weights).mean(axis=1)  # (30,)
        assert (per_layer[:2] < 0.3).all(), (text, per_layer[:2])
        assert per_layer[12:].mean() > 0.5, (text, per_layer[12:])
        assert (per_layer[12:] > 0.4).all(), (text, per_layer[12:])
        assert per_layer[12:].min() > per_layer[:2].max()


@pytest.mark.bundled
def test_bundled_decoder_labels(bundled_decoder):
    for text in SENTENCES:
        table = head_stats(attnviz.text_attention(bundled_decoder, text))
        assert len(table) == 270
        layer1_head2 = table[(table["layer"] == 1) & (table["head"] == 2)].iloc[0]
        assert layer1_head2["label"] == "previous token", text  # measured prev_mass 0.63-0.70
        # Most heads of the late layers park their attention on the first token.
        late = table[table["layer"] >= 20]
        assert (late["label"] == "first-token sink").mean() > 0.4, text
    repeated = head_stats(attnviz.text_attention(bundled_decoder, TEXT_EXAMPLES["Repeated words"][0]))
    induction = repeated[repeated["label"] == "induction"]
    assert len(induction) >= 1 and set(induction["layer"]) <= {17, 18}
