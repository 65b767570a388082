"""The long-input views (issue 13) against independent computations from the full matrices.

Every function of :mod:`attnviz.text.long_views` reads one head or one layer a block of query
rows at a time; here each is compared with the same view written directly over the full
``[n, n]`` matrix. Two bundled models: the decoder (SmolLM2, 30 x 9 heads, grouped-query) at
about 400 tokens, past :data:`~attnviz.text.extraction.HELD_BYTES` so that its heads are computed
on demand (the full matrices are read once with ``ta.head``), and the encoder (all-MiniLM-L6-v2)
at about 300 tokens, whose weights are held. Each view runs with the library's block size and with
small, uneven blocks (``BLOCK_VALUES`` patched), so the folding across blocks is exercised. Also
:mod:`attnviz.text.forward_cost` on the tiny decoders.
"""

from __future__ import annotations

import dataclasses
import threading
import weakref

import numpy as np
import pytest

import attnviz
from attnviz.errors import InputError
from attnviz.maths.decoder_heads import hide_first_token
from attnviz.maths.head_statistics import StatisticsStopped
from attnviz.maths.pooling import bin_edges
from attnviz.text import forward_cost, long_views, recorded_attention
from attnviz.text.extraction import HELD_BYTES
from tests.helpers import WORDS

MODELS = ["decoder", "encoder"]


def words_text(n_words: int, seed: int = 0) -> str:
    """Random words of the test vocabulary with a full stop every 11 words, the first third
    repeated at the end (so that duplicate and induction scores have rows to count)."""
    rng = np.random.default_rng(seed)
    words = [w + ("." if i % 11 == 10 else "") for i, w in enumerate(rng.choice(WORDS, n_words))]
    return " ".join(words + words[: n_words // 3])


@pytest.fixture(scope="module")
def decoder_long(bundled_decoder):
    """The bundled decoder at ~400 tokens (heads computed on demand) and its full ``[L, H, n, n]``."""
    ta = attnviz.text_attention(bundled_decoder, words_text(280))
    n = ta.n_tokens
    assert 30 * 9 * n * n * 4 > HELD_BYTES and not ta.holds_weights and ta.causal
    assert long_views.HEAD_BINS < n < 600
    full = np.stack([np.stack([ta.head(l, h) for h in range(ta.n_heads)]) for l in range(ta.n_layers)])
    return ta, full  # 30 x 9 x ~400² float32: ~170 MB


@pytest.fixture(scope="module")
def encoder_long(bundled_model):
    """The bundled encoder at ~300 tokens (weights held) and its full weights."""
    ta = attnviz.text_attention(bundled_model, words_text(200))
    assert ta.holds_weights and not ta.causal and long_views.HEAD_BINS < ta.n_tokens <= 512
    return ta, ta.weights


@pytest.fixture
def long_input(request):
    """``(ta, full)`` of the model named by the test's ``model`` parameter."""
    return request.getfixturevalue(f"{request.node.callspec.params['model']}_long")


@pytest.fixture(params=["library blocks", "small blocks"])
def blocks(request, monkeypatch):
    """The library's block size, or blocks of 23 rows of a layer (207 of a head) for ~400 tokens."""
    if request.param == "small blocks":
        small = 9 * 400 * 23 + 5
        monkeypatch.setattr(long_views, "BLOCK_VALUES", small)
        monkeypatch.setattr(recorded_attention, "BLOCK_VALUES", small)
    return request.param


# ---------------------------------------------------------------- references over the full matrix


def head_as_read(ta, layer: int, head: int) -> np.ndarray:
    """One head as the long views read it: ``ta.head`` a block of ``BLOCK_VALUES // n`` query rows
    at a time. Computed on demand, a weight's last bit depends on how many rows its product was
    computed with (BLAS kernels differ; up to ~5e-7 from the whole head at once), so exact
    comparisons use the rows as read, and :func:`test_blocks_as_read_are_the_full_matrices`
    bounds the difference."""
    n = ta.n_tokens
    step = max(1, long_views.BLOCK_VALUES // n)
    return np.concatenate([ta.head(layer, head, queries=slice(a, min(n, a + step))) for a in range(0, n, step)])


def layer_as_read(ta, layer: int) -> np.ndarray:
    """Every head of ``layer`` ``[heads, n, n]`` as the layer views read it (the held array, or the
    recorded row blocks)."""
    if ta.holds_weights:
        return ta.weights[layer]
    return np.concatenate([block for _, _, block in ta.recorded.row_blocks(layer)], axis=1)


def bins_of(n: int, bins: int) -> np.ndarray:
    """``[n]``: the bin of each position under :func:`bin_edges`."""
    return np.searchsorted(bin_edges(n, bins), np.arange(n), side="right") - 1


def pooled_reference(matrix: np.ndarray, bins: int, how: str) -> np.ndarray:
    """One ``[q, k]`` matrix pooled with ``ufunc.at`` over each cell's (query bin, key bin)."""
    qb, kb = bins_of(matrix.shape[0], bins), bins_of(matrix.shape[1], bins)
    index = (qb[:, None], kb[None, :])
    shape = (qb[-1] + 1, kb[-1] + 1)
    if how == "max":
        out = np.full(shape, -np.inf, dtype=np.float32)
        np.maximum.at(out, index, matrix)
        return out
    sums, cells = np.zeros(shape), np.zeros(shape)
    np.add.at(sums, index, matrix.astype(np.float64))
    np.add.at(cells, index, 1.0)
    return sums / cells


def assert_pooled(values: np.ndarray, reference: np.ndarray, how: str) -> None:
    if how == "max":  # a max is one of the weights: exact
        np.testing.assert_array_equal(values, reference)
    else:
        np.testing.assert_allclose(values, reference, rtol=1e-6, atol=1e-9)


def edges_reference(matrix: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The k largest positive cells of ``matrix``: strongest first, ties to the earlier (query, key)."""
    qi, ki = np.nonzero(matrix > 0)
    w = matrix[qi, ki]
    order = np.lexsort((ki, qi, -w))[:k]
    return qi[order], ki[order], w[order]


# ---------------------------------------------------------------- the rows as read


@pytest.mark.bundled
@pytest.mark.parametrize("model", MODELS)
def test_blocks_as_read_are_the_full_matrices(long_input, blocks, model):
    ta, full = long_input
    for layer, head in [(0, 0), (3, 5), (ta.n_layers - 1, ta.n_heads - 1)]:
        read = head_as_read(ta, layer, head)
        if ta.holds_weights:
            np.testing.assert_array_equal(read, full[layer, head])
        np.testing.assert_allclose(read, full[layer, head], rtol=0, atol=1e-6)
        np.testing.assert_allclose(layer_as_read(ta, layer), full[layer], rtol=0, atol=1e-6)


# ---------------------------------------------------------------- pooled_head


@pytest.mark.bundled
@pytest.mark.parametrize("how", ["max", "mean"])
@pytest.mark.parametrize("model", MODELS)
def test_pooled_head_equals_pooling_the_full_head(long_input, blocks, model, how):
    ta, full = long_input
    for layer, head in [(0, 0), (ta.n_layers - 1, ta.n_heads - 1), (3, 5)]:
        pooled = long_views.pooled_head(ta, layer, head, how=how)
        n = ta.n_tokens
        assert pooled.pooled.values.shape == (long_views.HEAD_BINS, long_views.HEAD_BINS)
        np.testing.assert_array_equal(pooled.pooled.query_edges, bin_edges(n, long_views.HEAD_BINS))
        np.testing.assert_array_equal(pooled.pooled.key_edges, bin_edges(n, long_views.HEAD_BINS))
        assert pooled.tokens == list(ta.tokens) and (pooled.layer, pooled.head, pooled.hide_first) == (
            layer,
            head,
            False,
        )
        reference = pooled_reference(head_as_read(ta, layer, head), long_views.HEAD_BINS, how)
        assert_pooled(pooled.pooled.values, reference, how)


@pytest.mark.bundled
@pytest.mark.parametrize("how", ["max", "mean"])
def test_pooled_head_with_the_first_token_hidden_pools_hide_first_token(decoder_long, blocks, how):
    ta, full = decoder_long
    for layer, head in [(0, 0), (17, 4), (29, 8)]:
        pooled = long_views.pooled_head(ta, layer, head, how=how, hide_first=True)
        hidden = hide_first_token(head_as_read(ta, layer, head)[None, None])[0, 0]  # (n-1, n-1)
        assert pooled.hide_first and pooled.tokens == list(ta.tokens[1:])
        assert pooled.pooled.n_queries == pooled.pooled.n_keys == ta.n_tokens - 1
        assert_pooled(pooled.pooled.values, pooled_reference(hidden, long_views.HEAD_BINS, how), how)


@pytest.mark.bundled
@pytest.mark.parametrize("model", MODELS)
def test_pooled_head_is_the_head_itself_when_there_are_no_more_tokens_than_bins(long_input, model):
    ta, full = long_input
    n = ta.n_tokens
    for how in ("max", "mean"):
        pooled = long_views.pooled_head(ta, 2, 1, bins=n, how=how).pooled
        np.testing.assert_array_equal(pooled.query_edges, np.arange(n + 1))
        np.testing.assert_array_equal(pooled.values, head_as_read(ta, 2, 1))
    hidden = long_views.pooled_head(ta, 2, 1, bins=n + 10, hide_first=True).pooled
    np.testing.assert_array_equal(hidden.values, hide_first_token(head_as_read(ta, 2, 1)[None, None])[0, 0])


@pytest.mark.bundled
def test_pooled_head_refuses_a_missing_head(encoder_long):
    ta, _ = encoder_long
    with pytest.raises(InputError, match="Layer"):
        long_views.pooled_head(ta, ta.n_layers, 0)
    with pytest.raises(InputError, match="Head"):
        long_views.pooled_head(ta, 0, -1)


# ---------------------------------------------------------------- zoom_window


@pytest.mark.bundled
@pytest.mark.parametrize("model", MODELS)
def test_zoom_window_is_the_slice_of_the_full_head(long_input, model):
    ta, full = long_input
    n = ta.n_tokens
    for layer, head, queries, keys in [
        (4, 2, slice(100, 164), slice(60, 120)),
        (0, 0, slice(n - 30, None), slice(0, 256)),
    ]:
        view = long_views.zoom_window(ta, layer, head, queries, keys)
        q0, q1, _ = queries.indices(n)
        k0, k1, _ = keys.indices(n)
        assert view.weights.shape == (1, 1, q1 - q0, k1 - k0)
        np.testing.assert_array_equal(view.weights[0, 0], ta.head(layer, head, queries=slice(q0, q1))[:, k0:k1])
        np.testing.assert_allclose(view.weights[0, 0], full[layer, head, q0:q1, k0:k1], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(view.query_positions, np.arange(q0, q1))
        np.testing.assert_array_equal(view.key_positions, np.arange(k0, k1))
        assert view.query_tokens == list(ta.tokens[q0:q1]) and view.key_tokens == list(ta.tokens[k0:k1])
        assert view.causal == ta.causal and view.model_name == ta.model_name


@pytest.mark.bundled
@pytest.mark.parametrize(
    ("queries", "keys", "message"),
    [
        (slice(50, 50), slice(0, 10), "empty"),
        (slice(60, 50), slice(0, 10), "empty"),
        (slice(0, 10), slice(5000, 6000), "empty"),  # past the input: clipped to nothing
        (slice(0, long_views.ZOOM_MAX + 1), slice(0, 10), "at most"),
        (slice(0, 10), slice(0, long_views.ZOOM_MAX + 1), "at most"),
    ],
)
def test_zoom_window_refuses_bad_windows(decoder_long, queries, keys, message):
    ta, _ = decoder_long
    with pytest.raises(InputError, match=message):
        long_views.zoom_window(ta, 1, 1, queries, keys)
    with pytest.raises(InputError):
        long_views.zoom_window(ta, 1, ta.n_heads, slice(0, 10), slice(0, 10))


# ---------------------------------------------------------------- strongest_from / strongest_edges


@pytest.mark.bundled
@pytest.mark.parametrize("model", MODELS)
def test_strongest_from_is_the_argsort_of_the_row(long_input, model):
    ta, full = long_input
    for layer, head, query, k in [(5, 3, 200, 20), (0, 0, 0, 20), (29 if ta.causal else 5, 1, ta.n_tokens - 1, 7)]:
        # One query's row, as strongest_from reads it: a one-row product, which BLAS may round
        # differently from the same row of the whole head (by ~3e-7 on the on-demand path).
        row = ta.head(layer, head, queries=slice(query, query + 1))[0]
        np.testing.assert_allclose(row, full[layer, head, query], rtol=0, atol=1e-6)
        best = long_views.strongest_from(ta, layer, head, query, k)
        order = np.argsort(-row.astype(np.float64), kind="stable")  # ties to the earlier key
        order = order[row[order] > 0][:k]
        np.testing.assert_array_equal(best.indices, order)
        np.testing.assert_array_equal(best.values, row[order])
        assert best.rest_count == np.count_nonzero(row) - len(order)
        assert best.rest_mass == pytest.approx(row.sum(dtype=np.float64) - row[order].sum(dtype=np.float64), abs=1e-9)
    with pytest.raises(InputError, match="out of range"):
        long_views.strongest_from(ta, 0, 0, ta.n_tokens)


@pytest.mark.bundled
@pytest.mark.parametrize("skip_first", [False, True])
@pytest.mark.parametrize("model", MODELS)
def test_strongest_edges_are_the_top_k_of_the_full_head(long_input, model, skip_first, monkeypatch):
    ta, full = long_input
    n = ta.n_tokens
    for values in (long_views.BLOCK_VALUES, n * 37, n * 5):  # the library's blocks, then 37 and 5 rows a block
        monkeypatch.setattr(long_views, "BLOCK_VALUES", values)
        for layer, head, k in [(0, 0, 50), (ta.n_layers - 1, 4, 50), (3, 3, 300), (2, 7, 1)]:
            matrix = head_as_read(ta, layer, head)
            if skip_first:
                matrix[:, 0] = 0
            edges = long_views.strongest_edges(ta, layer, head, k, skip_first=skip_first)
            qi, ki, w = edges_reference(matrix, k)
            np.testing.assert_array_equal(edges.queries, qi, err_msg=f"layer {layer} head {head}")
            np.testing.assert_array_equal(edges.keys, ki)
            np.testing.assert_array_equal(edges.weights, w)
            # What is listed and what is not add up to the head's mass: n (each row sums to 1) less
            # the first key's column when it is skipped; every positive cell is listed or counted.
            mass = matrix.sum(dtype=np.float64)
            assert edges.rest_mass + edges.weights.sum(dtype=np.float64) == pytest.approx(mass, rel=1e-9)
            if not skip_first:
                assert mass == pytest.approx(n, rel=1e-5)
            assert edges.rest_count + len(edges.weights) == np.count_nonzero(matrix)


@pytest.mark.bundled
def test_strongest_edges_break_ties_by_position_across_blocks(encoder_long, monkeypatch):
    """Weights rounded to eighths tie everywhere: the earlier (query, key) wins, whatever the blocks."""
    ta, full = encoder_long
    n = ta.n_tokens
    rounded = np.round(full * 8) / 8
    rounded[:, :, ::7] = 0.125  # many exact ties, one row in seven all 1/8
    tied = dataclasses.replace(ta, weights=rounded.astype(np.float32))
    for values in (long_views.BLOCK_VALUES, n * 40, n * 3):
        monkeypatch.setattr(long_views, "BLOCK_VALUES", values)
        for k in (1, 10, 200, 5000):
            edges = long_views.strongest_edges(tied, 2, 3, k)
            qi, ki, w = edges_reference(tied.weights[2, 3], k)
            np.testing.assert_array_equal(np.stack([edges.queries, edges.keys]), np.stack([qi, ki]))
            np.testing.assert_array_equal(edges.weights, w)


@pytest.mark.bundled
def test_strongest_edges_of_none_and_a_bad_k(encoder_long):
    ta, full = encoder_long
    edges = long_views.strongest_edges(ta, 1, 1, 0)
    assert len(edges.queries) == len(edges.keys) == len(edges.weights) == 0
    assert edges.rest_mass == pytest.approx(full[1, 1].sum(dtype=np.float64), rel=1e-9)
    assert edges.rest_count == np.count_nonzero(full[1, 1])
    with pytest.raises(InputError):
        long_views.strongest_edges(ta, 1, 1, -1)


# ---------------------------------------------------------------- pooled_layer and sweep


@pytest.mark.bundled
@pytest.mark.parametrize("model", MODELS)
def test_pooled_layer_is_the_pooled_heads_stacked(long_input, blocks, model):
    ta, _ = long_input
    for how in ("max", "mean"):
        for layer in (0, ta.n_layers - 1):
            read = layer_as_read(ta, layer)
            pooled = long_views.pooled_layer(ta, layer, how=how)
            assert pooled.values.shape == (ta.n_heads, long_views.LAYER_BINS, long_views.LAYER_BINS)
            heads = np.stack(
                [
                    long_views.pooled_head(ta, layer, h, bins=long_views.LAYER_BINS, how=how).pooled.values
                    for h in range(ta.n_heads)
                ]
            )
            if ta.holds_weights:
                np.testing.assert_array_equal(pooled.values, heads)
            else:  # a head's own products and its layer's round differently (head_as_read)
                np.testing.assert_allclose(pooled.values, heads, rtol=0, atol=1e-6)
            reference = np.stack([pooled_reference(read[h], long_views.LAYER_BINS, how) for h in range(ta.n_heads)])
            assert_pooled(pooled.values, reference, how)


@pytest.mark.bundled
@pytest.mark.parametrize("model", MODELS)
def test_sweep_gives_head_stats_and_the_pooled_layers(long_input, blocks, model):
    ta, full = long_input
    calls = []
    result = long_views.sweep(ta, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(layer + 1, ta.n_layers) for layer in range(ta.n_layers)]
    # head_stats of a result that holds every head: the full-matrix computation.
    expected = attnviz.head_stats(dataclasses.replace(ta, weights=full))
    stats = result.statistics
    assert list(stats.columns) == list(expected.columns)
    assert stats["label"].tolist() == expected["label"].tolist()
    numbers = [c for c in expected.columns if c != "label"]
    # Held weights are read as they are; on demand, each weight within ~5e-7 (head_as_read).
    rtol = 1e-9 if ta.holds_weights else 1e-6
    np.testing.assert_allclose(stats[numbers].to_numpy(float), expected[numbers].to_numpy(float), rtol=rtol, atol=1e-12)
    overview = result.overview
    assert overview.values.shape == (ta.n_layers, ta.n_heads, long_views.LAYER_BINS, long_views.LAYER_BINS)
    for layer in (0, ta.n_layers // 2, ta.n_layers - 1):
        layer_pooled = long_views.pooled_layer(ta, layer, bins=long_views.LAYER_BINS)
        np.testing.assert_array_equal(overview.values[layer], layer_pooled.values)
        np.testing.assert_array_equal(overview.query_edges, layer_pooled.query_edges)


@pytest.mark.bundled
def test_sweep_mean_overview_and_statistics_of_the_on_demand_path(decoder_long):
    """The same sweep through the on-demand heads and through a result that holds every head."""
    ta, full = decoder_long
    held = dataclasses.replace(ta, weights=full)
    assert held.holds_weights and not ta.holds_weights
    on_demand, from_held = long_views.sweep(ta, how="mean"), long_views.sweep(held, how="mean")
    np.testing.assert_allclose(on_demand.overview.values, from_held.overview.values, rtol=1e-6, atol=1e-12)
    numbers = [c for c in on_demand.statistics.columns if c != "label"]
    np.testing.assert_allclose(
        on_demand.statistics[numbers].to_numpy(float), from_held.statistics[numbers].to_numpy(float), rtol=1e-6
    )


@pytest.mark.bundled
def test_sweep_stops_before_the_next_block(decoder_long):
    ta, _ = decoder_long
    stop = threading.Event()
    stop.set()
    with pytest.raises(StatisticsStopped) as raised:
        long_views.sweep(ta, stop=stop)
    assert raised.value.blocks_done == 0
    stop.clear()
    calls = []

    def progress(done, total):
        calls.append(done)
        if done == 2:
            stop.set()

    with pytest.raises(StatisticsStopped) as raised:
        long_views.sweep(ta, progress=progress, stop=stop)
    assert calls == [1, 2]
    blocks_per_layer = len(list(range(0, ta.n_tokens, recorded_attention.BLOCK_VALUES // (ta.n_heads * ta.n_tokens))))
    assert raised.value.blocks_done == 2 * blocks_per_layer


# ---------------------------------------------------------------- forward_cost


def hand_count(config, family: str) -> int:
    """Parameters of a tiny decoder's layers and final norm, counted from its config by hand."""
    if family == "gpt2":
        d, layers = config.n_embd, config.n_layer
        inner = config.n_inner or 4 * d
        norms = 2 * 2 * d  # ln_1 and ln_2, weight and bias
        attention = (d * 3 * d + 3 * d) + (d * d + d)  # c_attn (q, k, v) and c_proj
        mlp = (d * inner + inner) + (inner * d + d)  # c_fc and c_proj
        per_layer = norms + attention + mlp
        return layers * per_layer + 2 * d  # + ln_f
    d, layers, inner = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    d_head = d // config.num_attention_heads
    kv = config.num_key_value_heads * d_head
    bias = (d + 2 * kv) if family == "qwen2" else 0  # Qwen2's q, k, v projections have biases
    per_layer = 2 * d + d * d + 2 * d * kv + bias + d * d + 3 * d * inner  # two RMS norms, q k v o, gate up down
    return layers * per_layer + d  # + the final norm


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen2"])
def test_forward_flops_is_the_hand_count(tiny_decoder_dirs, family):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs[family]), device="cpu")
    config = tm.model.config
    params = hand_count(config, family)
    n_layers, heads = tm.n_layers, tm.n_heads
    d_head = (getattr(config, "n_embd", None) or config.hidden_size) // heads
    for n in (1, 10, 100):
        attention = 4 * n_layers * heads * d_head * n * n / 2  # causal: half the pairs
        assert forward_cost.forward_flops(tm, n) == 2 * params * n + attention


def test_forward_flops_of_an_encoder_counts_every_pair(tiny_model):
    config = tiny_model.model.config
    d_head = config.hidden_size // config.num_attention_heads
    extra = forward_cost.forward_flops(tiny_model, 20) - 2 * forward_cost.forward_flops(tiny_model, 10)
    # 2·P·n is linear, so only the attention's n² is left: 4·L·H·d·(20² - 2·10²), not halved.
    assert extra == 4 * config.num_hidden_layers * config.num_attention_heads * d_head * (400 - 200)


def test_estimate_uses_the_default_rate_then_the_rate_of_the_last_recorded_pass(tiny_decoder, monkeypatch):
    monkeypatch.setattr(forward_cost, "_rates", weakref.WeakKeyDictionary())
    flops = forward_cost.forward_flops(tiny_decoder, 300)
    assert forward_cost.estimate_seconds(tiny_decoder, 300) == pytest.approx(flops / forward_cost.DEFAULT_RATE["cpu"])
    forward_cost.record(tiny_decoder, 300, 2.0)
    assert forward_cost.estimate_seconds(tiny_decoder, 300) == pytest.approx(2.0)
    assert forward_cost.estimate_seconds(tiny_decoder, 600) == pytest.approx(
        2.0 * forward_cost.forward_flops(tiny_decoder, 600) / flops
    )
    forward_cost.record(tiny_decoder, 300, 0.1)  # too short to learn from: the rate stays
    assert forward_cost.estimate_seconds(tiny_decoder, 300) == pytest.approx(2.0)
    forward_cost.record(tiny_decoder, 150, 4.0)
    assert forward_cost.estimate_seconds(tiny_decoder, 150) == pytest.approx(4.0)


def test_text_attention_records_its_pass(tiny_decoder, monkeypatch):
    """A forward pass of text_attention teaches the model's rate (short passes count once the floor is 0)."""
    monkeypatch.setattr(forward_cost, "_rates", weakref.WeakKeyDictionary())
    monkeypatch.setattr(forward_cost, "_MIN_SECONDS", 0.0)
    seen = []
    record = forward_cost.record
    monkeypatch.setattr(
        forward_cost, "record", lambda tm, n, seconds: (seen.append((n, seconds)), record(tm, n, seconds))
    )
    ta = attnviz.text_attention(tiny_decoder, "The cat sat on the mat. The dog sat on the log.")
    [(n, seconds)] = seen
    assert n == ta.n_tokens and seconds > 0
    assert forward_cost.estimate_seconds(tiny_decoder, n) == pytest.approx(seconds)
