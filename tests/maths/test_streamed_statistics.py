"""Head statistics streamed a block of query rows at a time (for 8,192-token inputs) give the table
of head_stats on the full attention, for encoders and decoders, and never allocate (n, n)."""

from __future__ import annotations

import threading
import tracemalloc
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from attnviz.errors import InputError
from attnviz.maths import decoder_heads as dh
from attnviz.maths.head_statistics import (
    COLUMNS,
    DECODER_COLUMNS,
    StatisticsStopped,
    StreamedHeadStatistics,
    head_stats,
    streamed_head_stats,
)

N = 23
VOCAB = ["the", "cat", "sat", ",", "on", "mat", ".", "\ufffd"]


@dataclass
class Full:
    """The least that head_stats reads: the full weights and the tokens."""

    weights: np.ndarray
    tokens: list[str]
    special: np.ndarray
    token_ids: np.ndarray | None = None
    causal: bool = False


def random_weights(rng, n_layers: int, n_heads: int, n: int, causal: bool) -> np.ndarray:
    """float32 ``[layers, heads, n, n]`` rows summing to 1 (zeros above the diagonal when causal)."""
    w = np.exp(rng.normal(scale=2.0, size=(n_layers, n_heads, n, n)))
    if causal:
        w *= np.tri(n)
    return (w / w.sum(axis=-1, keepdims=True)).astype(np.float32)


def random_input(rng, n: int, causal: bool) -> Full:
    """Tokens from a small vocabulary (repeats, punctuation, one U+FFFD piece) with specials."""
    tokens = list(rng.choice(VOCAB, size=n))
    special = np.zeros(n, dtype=bool)
    special[[0, n // 2, n - 1]] = True
    for i in np.flatnonzero(special):
        tokens[i] = "[CLS]" if i == 0 else "[SEP]"
    return Full(random_weights(rng, 2, 3, n, causal), tokens, special, causal=causal)


def splits(n: int) -> dict[str, list[int]]:
    """Block starts: one row at a time, uneven sizes, one block of every row."""
    return {"rows": list(range(n)), "uneven": [0, 3, 4, 11, 12, 20], "one": [0]}


def blocks_of(weights: np.ndarray, starts: list[int]):
    """``(layer, start, block)`` for every layer, last layer first (any order is allowed)."""
    n = weights.shape[-1]
    for layer in reversed(range(weights.shape[0])):
        for start, stop in zip(starts, [*starts[1:], n], strict=True):
            yield layer, start, weights[layer, :, start:stop, :]


def assert_same_table(streamed: pd.DataFrame, full: pd.DataFrame) -> None:
    assert list(streamed.columns) == list(full.columns)
    assert streamed["label"].tolist() == full["label"].tolist()
    pd.testing.assert_frame_equal(streamed, full, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("split", ["rows", "uneven", "one"])
def test_encoder_streamed_table_equals_head_stats(rng, split):
    full = random_input(rng, N, causal=False)
    expected = head_stats(full)
    assert list(expected.columns) == ["layer", "head", *COLUMNS, "label"]
    table = streamed_head_stats(2, 3, blocks_of(full.weights, splits(N)[split]), full.tokens, full.special)
    assert_same_table(table, expected)


@pytest.mark.parametrize("split", ["rows", "uneven", "one"])
@pytest.mark.parametrize("with_ids", [False, True])
def test_decoder_streamed_table_equals_head_stats(rng, split, with_ids):
    full = random_input(rng, N, causal=True)
    if with_ids:
        full.token_ids = rng.integers(-1, 4, size=N)  # a small vocabulary, and unknown ids (-1)
    expected = head_stats(full)
    assert list(expected.columns) == ["layer", "head", *DECODER_COLUMNS, "label"]
    assert expected[["duplicate_mass", "induction_mass"]].notna().all(axis=None)  # tokens repeat
    blocks = blocks_of(full.weights, splits(N)[split])
    table = streamed_head_stats(2, 3, blocks, full.tokens, full.special, full.token_ids, causal=True)
    assert_same_table(table, expected)


def test_layers_may_be_split_differently_and_added_in_any_order(rng):
    full = random_input(rng, N, causal=True)
    stats = StreamedHeadStatistics(2, 3, full.tokens, full.special, causal=True)
    for start, stop in ((10, N), (0, 10)):
        stats.add(0, start, full.weights[0, :, start:stop])
    for start in reversed(range(N)):
        stats.add(1, start, full.weights[1, :, start : start + 1])
    assert_same_table(stats.table(), head_stats(full))


@pytest.mark.parametrize("causal", [False, True])
def test_no_repeats_and_one_token_keep_the_nan_rules(rng, causal):
    tokens = [f"t{i}" for i in range(6)]
    full = Full(random_weights(rng, 1, 2, 6, causal), tokens, np.zeros(6, dtype=bool), causal=causal)
    table = streamed_head_stats(1, 2, blocks_of(full.weights, [0, 2, 5]), tokens, full.special, causal=causal)
    assert_same_table(table, head_stats(full))
    one = Full(np.ones((1, 2, 1, 1), dtype=np.float32), ["Hi"], np.zeros(1, dtype=bool), causal=causal)
    table = streamed_head_stats(1, 2, blocks_of(one.weights, [0]), ["Hi"], one.special, causal=causal)
    assert_same_table(table, head_stats(one))


def test_block_masks_are_the_rows_of_the_full_masks(rng):
    ids = rng.integers(-1, 4, size=N)
    for start, m in ((0, N), (0, 1), (5, 7), (N - 1, 1), (N, 0)):
        rows = slice(start, start + m)
        np.testing.assert_array_equal(dh.duplicate_mask(ids, start, m), dh.duplicate_mask(ids)[rows])
        np.testing.assert_array_equal(dh.induction_mask(ids, start, m), dh.induction_mask(ids)[rows])
        np.testing.assert_array_equal(dh.local_window_mask(N, 3, start, m), dh.local_window_mask(N)[rows])
    with pytest.raises(InputError):
        dh.duplicate_mask(ids, 20, 5)


def test_row_statistics_of_a_block_are_the_rows_of_the_full_ones(rng):
    full = random_input(rng, N, causal=True)
    ids, special = rng.integers(0, 4, size=N), full.special
    whole = dh.row_statistics(full.weights, ids, special)
    part = dh.row_statistics(full.weights[:, :, 5:12], ids, special, start=5)
    for name, (values, rows) in whole.items():
        np.testing.assert_allclose(part[name][0], values[..., 5:12], rtol=1e-12, err_msg=name)
        np.testing.assert_array_equal(part[name][1], rows[5:12], err_msg=name)


def test_progress_is_called_after_each_block(rng):
    full = random_input(rng, N, causal=False)
    calls = []
    streamed_head_stats(2, 3, blocks_of(full.weights, [0, 10]), full.tokens, full.special, progress=calls.append)
    assert calls == [1, 2, 3, 4]


def test_stop_raises_before_the_next_block_is_taken(rng):
    full = random_input(rng, N, causal=True)
    stop, taken = threading.Event(), []

    def blocks():
        for item in blocks_of(full.weights, [0, 5, 10]):
            taken.append(item[:2])
            yield item

    def progress(done):
        if done == 2:
            stop.set()

    with pytest.raises(StatisticsStopped) as raised:
        streamed_head_stats(2, 3, blocks(), full.tokens, full.special, causal=True, progress=progress, stop=stop)
    assert raised.value.blocks_done == 2
    assert len(taken) == 2  # the third block was never asked for
    with pytest.raises(StatisticsStopped):
        streamed_head_stats(2, 3, blocks(), full.tokens, full.special, causal=True, stop=stop)
    assert len(taken) == 2


def test_missing_repeated_or_misshapen_blocks_are_refused(rng):
    full = random_input(rng, N, causal=False)
    stats = StreamedHeadStatistics(2, 3, full.tokens, full.special)
    stats.add(0, 0, full.weights[0, :, :10])
    with pytest.raises(InputError, match="already added"):
        stats.add(0, 5, full.weights[0, :, 5:8])
    with pytest.raises(InputError, match="never added"):
        stats.table()
    with pytest.raises(InputError):
        stats.add(0, 20, full.weights[0, :, 10:20])  # rows 20..30 of 23
    with pytest.raises(InputError):
        stats.add(2, 0, full.weights[0, :, :10])  # no layer 2
    with pytest.raises(InputError):
        stats.add(1, 0, full.weights[0, :2, :10])  # 2 heads of 3


def peak_bytes(run) -> int:
    """The most memory ``run()`` held at once (numpy's arrays included), in bytes."""
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("causal", [False, True])
def test_a_block_allocates_no_n_by_n_array(rng, causal):
    n, m = 2048, 16
    tokens = [VOCAB[i % 7] for i in range(n)]
    special = np.zeros(n, dtype=bool)
    special[0] = True
    block = rng.random((1, m, n), dtype=np.float32)
    block /= block.sum(axis=-1, keepdims=True)
    stats = StreamedHeadStatistics(1, 1, tokens, special, causal=causal)
    # The limit is a bool (n, n), 4.2 MB (a float64 one is 33.5 MB); a float64 copy of the block
    # is m·n·8 = 0.26 MB. The control: the full duplicate mask alone goes past it.
    limit = n * n
    assert peak_bytes(lambda: dh.duplicate_mask(np.arange(n) % 7)) > limit
    peak = peak_bytes(lambda: stats.add(0, 1000, block))
    assert peak < limit, f"peak {peak / 1e6:.1f} MB"


def formula_rows(w: np.ndarray, ids: np.ndarray, special: np.ndarray, window: int, start: int) -> dict:
    """Each row's sums of :func:`dh.row_statistics` written out in float64, one row at a time."""
    _, _, m, n = w.shape
    out = {name: np.zeros(w.shape[:3]) for name in ("entropy", "mean_distance", "special", "dup", "ind", "local")}
    j = np.arange(n)
    for r in range(m):
        i = start + r
        row = w[:, :, r].astype(np.float64)  # (L, H, n)
        logs = np.log(np.where(row > 0, row, 1.0))
        copies = j[(j < i) & (ids == ids[i]) & (ids[i] >= 0)]
        after = copies[copies + 1 < i] + 1
        out["entropy"][..., r] = -(row * logs).sum(-1)
        out["mean_distance"][..., r] = (row * np.maximum(i - j, 0)).sum(-1)
        out["special"][..., r] = row[..., special].sum(-1)
        out["dup"][..., r] = row[..., copies].sum(-1)
        out["ind"][..., r] = row[..., after].sum(-1)
        out["local"][..., r] = row[..., max(0, i - window) : i + 1].sum(-1)
    return out


@pytest.mark.parametrize("masks", ["sparse", "dense"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_statistics_equal_the_formulas_row_by_row(rng, masks, causal, dtype):
    """Sparse masks are summed from their cells, dense ones row by row, in chunks of rows that skip
    a decoder's invisible keys; weights after the query (not a decoder's) are still counted."""
    n = 300
    if masks == "sparse":  # few earlier copies, 3 special tokens, the default local window
        ids, special, window = rng.integers(0, 200, n), np.isin(np.arange(n), [0, 150, 299]), dh.LOCAL_WINDOW
    else:  # three token ids, 30 % special tokens, a 40-token window
        ids, special, window = rng.integers(0, 3, n), rng.random(n) < 0.3, 40
    ids[7] = -1
    w = random_weights(rng, 2, 3, n, causal).astype(dtype)
    w[0, 1, 5:9] = 0.0  # rows with exact zeros everywhere (0·ln 0 = 0)
    rtol = 1e-6 if dtype == np.float32 else 1e-12
    for start, m in [(0, n), (37, 150), (299, 1)]:
        block = w[:, :, start : start + m]
        stats = dh.row_statistics(block, ids, special, window=window, start=start)
        expected = formula_rows(block, ids, special, window, start)
        for name, key in [
            ("entropy", "entropy"),
            ("mean_distance", "mean_distance"),
            ("special_mass", "special"),
            ("duplicate_mass", "dup"),
            ("induction_mass", "ind"),
            ("local_mass", "local"),
        ]:
            np.testing.assert_allclose(stats[name][0], expected[key], rtol=rtol, atol=1e-12, err_msg=f"{name} {start}")
