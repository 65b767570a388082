"""attention_steps: parity with torch's scaled_dot_product_attention, a hand-worked example, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from attnviz.errors import InputError
from attnviz.maths.qkv import OneHead, attention_steps, entropy_bits, softmax_at, softmax_row
from attnviz.maths.toy_presets import MAX_TOKENS, MIN_TOKENS, PRESETS, RANDOM, from_tables, preset, to_tables, toy_steps


def torch_reference(x, w_q, w_k, w_v, b, n_heads, mask):
    """Weights by an explicit softmax and context by torch's SDPA kernel, in float64."""
    n = x.shape[0]
    t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    xt = t(x)

    def heads(w, bias):  # (n, H*dh) -> (1, H, n, dh)
        return (xt @ t(w) + t(bias)).reshape(n, n_heads, -1).transpose(0, 1)[None]

    q, k, v = heads(w_q, b[0]), heads(w_k, b[1]), heads(w_v, b[2])
    keep = torch.from_numpy(mask)[None, None, None, :]  # (1, 1, 1, n): True = attend
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1)
    context = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=keep)
    return weights[0].numpy(), context[0].numpy()


@pytest.mark.parametrize("n_heads", [1, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_equals_torch_sdpa_with_a_padding_mask(n_heads, seed):
    rng = np.random.default_rng(seed)
    n, d_head = int(rng.integers(2, 9)), int(rng.integers(1, 6))
    d_model = int(rng.integers(2, 10))
    x = rng.normal(size=(n, d_model))
    w_q, w_k, w_v = (rng.normal(size=(d_model, n_heads * d_head)) for _ in range(3))
    b = [rng.normal(size=n_heads * d_head) for _ in range(3)]
    mask = rng.random(n) > 0.3
    mask[rng.integers(n)] = True  # at least one real key
    mask[-1] = False  # and at least one padding key
    steps = attention_steps(x, w_q, w_k, w_v, b_q=b[0], b_k=b[1], b_v=b[2], n_heads=n_heads, mask=mask)

    weights, context = torch_reference(x, w_q, w_k, w_v, b, n_heads, mask)
    assert steps.weights.shape == (n_heads, n, n)
    assert steps.context.shape == (n_heads, n, d_head)
    np.testing.assert_allclose(steps.weights, weights, atol=1e-12)
    np.testing.assert_allclose(steps.context, context, atol=1e-10)
    np.testing.assert_allclose(steps.weights.sum(-1), 1.0, atol=1e-12)
    assert np.all(steps.weights[:, :, ~mask] == 0), "padding keys must get exactly zero weight"
    assert np.all(np.isneginf(steps.masked[:, :, ~mask]))
    np.testing.assert_allclose(steps.scaled, steps.scores / math.sqrt(d_head))
    # The concatenation is head 0's columns, then head 1's, ...
    np.testing.assert_array_equal(steps.concat, np.concatenate(list(steps.context), axis=1))
    assert steps.output is None


def test_output_projection_matches_torch_multi_head_attention():
    """With W_O, the output equals torch's own multi-head attention module (same weights)."""
    rng = np.random.default_rng(7)
    n, d, heads = 5, 6, 3
    mha = torch.nn.MultiheadAttention(d, heads, batch_first=True, dtype=torch.float64)
    x = torch.from_numpy(rng.normal(size=(1, n, d)))
    pad = torch.tensor([[False, False, False, True, True]])  # torch: True = padding
    out, w = mha(x, x, x, key_padding_mask=pad, average_attn_weights=False)
    w_q, w_k, w_v = (m.T.detach().numpy() for m in mha.in_proj_weight.chunk(3))
    b_q, b_k, b_v = (b.detach().numpy() for b in mha.in_proj_bias.chunk(3))
    steps = attention_steps(
        x[0].numpy(),
        w_q,
        w_k,
        w_v,
        b_q=b_q,
        b_k=b_k,
        b_v=b_v,
        n_heads=heads,
        mask=~pad[0].numpy(),
        w_o=mha.out_proj.weight.T.detach().numpy(),
        b_o=mha.out_proj.bias.detach().numpy(),
    )
    np.testing.assert_allclose(steps.weights, w[0].detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(steps.output, out[0].detach().numpy(), atol=1e-12)


def test_two_tokens_by_hand():
    """X = [[1, 0], [1, 1]], W_Q = W_K = I, W_V = [[1, 2], [3, 4]], one head, d_head = 2.

    Q = K = X.  scores = QKᵀ = [[1·1+0·0, 1·1+0·1], [1·1+1·0, 1·1+1·1]] = [[1, 1], [1, 2]].
    scaled = scores / √2 = [[a, a], [a, 2a]] with a = 1/√2 = 0.70710678.
    row 0: equal scores -> [0.5, 0.5].
    row 1: softmax([a, 2a]) = [1, e^a] / (1 + e^a); e^a = 2.02811498, so
           [1 / 3.02811498, 2.02811498 / 3.02811498] = [0.33023845, 0.66976155].
    V = X W_V = [[1, 2], [1+3, 2+4]] = [[1, 2], [4, 6]].
    context row 0 = 0.5·[1, 2] + 0.5·[4, 6] = [2.5, 4.0].
    context row 1 = 0.33023845·[1, 2] + 0.66976155·[4, 6] = [1 + 3·0.66976155, 2 + 4·0.66976155]
                  = [3.00928465, 4.67904620].
    """
    eye = np.eye(2)
    steps = attention_steps([[1, 0], [1, 1]], eye, eye, [[1, 2], [3, 4]])
    np.testing.assert_allclose(steps.scores[0], [[1, 1], [1, 2]], atol=1e-12)
    np.testing.assert_allclose(steps.scaled[0], [[0.70710678, 0.70710678], [0.70710678, 1.41421356]], atol=1e-6)
    np.testing.assert_allclose(steps.weights[0], [[0.5, 0.5], [0.33023845, 0.66976155]], atol=1e-6)
    np.testing.assert_allclose(steps.v[0], [[1, 2], [4, 6]], atol=1e-12)
    np.testing.assert_allclose(steps.context[0], [[2.5, 4.0], [3.00928465, 4.67904620]], atol=1e-6)

    # The same with the second token as padding: both rows put all their weight on token 0,
    # so both contexts are v_0 = [1, 2]; the padding row itself is still computed.
    padded = attention_steps([[1, 0], [1, 1]], eye, eye, [[1, 2], [3, 4]], mask=[True, False])
    np.testing.assert_allclose(padded.weights[0], [[1, 0], [1, 0]], atol=1e-12)
    np.testing.assert_allclose(padded.context[0], [[1, 2], [1, 2]], atol=1e-12)


def test_biases_and_a_custom_scale_by_hand():
    """X = [[1], [2]], W = [[1]], b_Q = 1, b_K = 0, b_V = 10, scale 0.5.

    Q = [[2], [3]], K = [[1], [2]], V = [[11], [12]].
    scores = [[2, 4], [3, 6]]; scaled = [[1, 2], [1.5, 3]].
    row 0: [1, e] / (1 + e) = [0.26894142, 0.73105858]; row 1: [1, e^1.5] / (1 + e^1.5), e^1.5 = 4.48168907,
    so [0.18242552, 0.81757448]. context = 11 + weight on token 1 = [[11.73105858], [11.81757448]].
    """
    steps = attention_steps([[1], [2]], [[1]], [[1]], [[1]], b_q=[1], b_k=[0], b_v=[10], scale=0.5)
    np.testing.assert_allclose(steps.scaled[0], [[1, 2], [1.5, 3]], atol=1e-12)
    np.testing.assert_allclose(steps.weights[0], [[0.26894142, 0.73105858], [0.18242552, 0.81757448]], atol=1e-6)
    np.testing.assert_allclose(steps.context[0], [[11.73105858], [11.81757448]], atol=1e-6)


def test_one_head_is_a_slice():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(4, 6)), [rng.normal(size=(6, 6)) for _ in range(3)]
    steps = attention_steps(x, *w, n_heads=2)
    head = steps.head(1)
    assert isinstance(head, OneHead)
    assert (head.n_tokens, head.d_model, head.d_head) == (4, 6, 3)
    np.testing.assert_allclose(head.q, x @ w[0][:, 3:])
    alone = attention_steps(x, w[0][:, 3:], w[1][:, 3:], w[2][:, 3:])
    np.testing.assert_allclose(head.weights, alone.weights[0])
    with pytest.raises(InputError, match="choose a head from 0 to 1"):
        steps.head(2)


def test_softmax_row_written_out():
    row = softmax_row([0.5, -1.0, float("-inf"), 2.0])
    assert row.shift == 0.0
    np.testing.assert_allclose(row.exps, [math.exp(0.5), math.exp(-1.0), 0.0, math.exp(2.0)])
    assert row.total == pytest.approx(math.exp(0.5) + math.exp(-1.0) + math.exp(2.0))
    np.testing.assert_allclose(row.weights, row.exps / row.total)
    assert row.weights.sum() == pytest.approx(1.0)
    big = softmax_row([800.0, 799.0])  # e^800 overflows: shifted by the largest score instead
    assert big.shift == 800.0
    np.testing.assert_allclose(big.weights, [1 / (1 + math.exp(-1)), math.exp(-1) / (1 + math.exp(-1))])
    with pytest.raises(InputError):
        softmax_row([float("-inf")])


def test_softmax_sharpens_with_the_scale():
    scores = np.array([3.0, 1.0, 0.0, float("-inf")])
    flat, model, sharp = (softmax_at(scores, f) for f in (0.01, 0.5, 10.0))
    assert entropy_bits(flat) > entropy_bits(model) > entropy_bits(sharp)
    np.testing.assert_allclose(flat[:3], 1 / 3, atol=0.01)
    assert sharp[0] > 0.999 and flat[3] == model[3] == sharp[3] == 0.0
    assert entropy_bits(np.array([1.0, 0.0])) == 0.0


@pytest.mark.parametrize("row", [[1.0, 0.0], [0.0, 0.0, 1.0], [1.0 + 1e-12, 0.0], np.float32([1, 0, 0])])
def test_entropy_of_a_one_hot_row_is_plus_zero(row):
    """-(1 · log2 1) is -0.0, which prints as "-0.00 bits"; a row summing to just over 1 went below 0."""
    h = entropy_bits(np.asarray(row))
    assert f"{h:.2f}" == "0.00" and math.copysign(1.0, h) == 1.0


EYE = np.eye(2)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (([1, 2], EYE, EYE, EYE), {}, "must be a matrix"),
        (([[1, "a"], [0, 1]], EYE, EYE, EYE), {}, "only numbers"),
        (([[1, np.nan], [0, 1]], EYE, EYE, EYE), {}, "missing value"),
        ((np.zeros((0, 2)), EYE, EYE, EYE), {}, "empty"),
        ((EYE, np.eye(3), EYE, EYE), {}, "W_Q has 3 rows"),
        ((EYE, EYE, np.ones((2, 3)), EYE), {}, "same number of columns"),
        ((EYE, np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3))), {"n_heads": 2}, "divisible by 2"),
        ((EYE, EYE, EYE, EYE), {"n_heads": 0}, "at least 1"),
        ((EYE, EYE, EYE, EYE), {"b_q": [1, 2, 3]}, "b_Q has 3 numbers"),
        ((EYE, EYE, EYE, EYE), {"mask": [True]}, "one entry per token"),
        ((EYE, EYE, EYE, EYE), {"mask": [False, False]}, "Every token is marked as padding"),
        ((EYE, EYE, EYE, EYE), {"mask": [2, 1]}, "True/False"),
        ((EYE, EYE, EYE, EYE), {"w_o": np.ones((3, 2))}, "W_O has 3 rows"),
        ((EYE, EYE, EYE, EYE), {"b_o": [1, 2]}, "without W_O"),
        ((EYE, EYE, EYE, EYE), {"scale": -1.0}, "positive number"),
    ],
)
def test_bad_input_says_what_to_fix(args, kwargs, message):
    with pytest.raises(InputError, match=message):
        attention_steps(*args, **kwargs)


# ---------------------------------------------------------------- toy presets and their tables


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_round_trips_through_its_tables(name):
    inputs = preset(name)
    back = from_tables(to_tables(inputs))
    assert back.tokens == inputs.tokens
    for field in ("x", "padding", "w_q", "w_k", "w_v", "b_q", "b_k", "b_v", "w_o"):
        np.testing.assert_array_equal(getattr(back, field), getattr(inputs, field))
    assert MIN_TOKENS <= len(inputs.tokens) <= MAX_TOKENS and inputs.d_model <= 8
    steps = toy_steps(inputs, 1)
    np.testing.assert_allclose(steps.weights.sum(-1), 1.0)


def test_presets_show_what_their_names_promise():
    alike = toy_steps(preset("Two tokens that look alike"), 1).weights[0]  # tokens: the, cat, kitten, sat
    assert np.abs(alike[1] - alike[2]).max() < 0.05, "cat and kitten should attend alike"
    assert np.abs(alike[:, 1] - alike[:, 2]).max() < 0.05, "and be attended to alike"
    padded = toy_steps(preset("A padding token"), 2)
    assert np.all(padded.weights[:, :, 3] == 0)
    np.testing.assert_array_equal(preset(RANDOM, seed=3).x, preset(RANDOM, seed=3).x)
    assert not np.array_equal(preset(RANDOM, seed=3).x, preset(RANDOM, seed=4).x)
    assert preset(RANDOM, n_tokens=6, d_model=8).x.shape == (6, 8)
    with pytest.raises(InputError, match="2-6 tokens"):
        preset(RANDOM, n_tokens=9)
    with pytest.raises(InputError, match="Unknown preset"):
        preset("nope")


def test_tables_accept_text_numbers_and_fill_blank_names():
    tables = to_tables(preset("Two tokens, worked by hand"))
    x = tables["X"].astype(object)
    x.loc[0, "x0"], x.loc[1, "token"], x.loc[1, "padding"] = " 2.5 ", None, None
    inputs = from_tables({**tables, "X": x})
    assert inputs.x[0, 0] == 2.5 and inputs.tokens == ["a", "t1"] and not inputs.padding.any()


@pytest.mark.parametrize(
    ("table", "row", "column", "value", "message"),
    [
        ("X", 0, "x1", "1,5", "X, row 0, column x1 holds '1,5', which is not a number: type a number \\(use a dot"),
        ("X", 1, "x0", float("nan"), "X, row 1, column x0 is empty"),
        ("X", 1, "x0", "", "X, row 1, column x0 is empty"),
        ("W_K", "x1", "k0", float("inf"), "W_K, row x1, column k0 holds inf: use a finite number"),
        ("biases", "b_V", "1", "x", "biases, row b_V, column 1 holds 'x'"),
    ],
)
def test_bad_table_cells_name_the_cell(table, row, column, value, message):
    tables = to_tables(preset("Two tokens, worked by hand"))
    df = tables[table].astype(object)
    df.loc[row, column] = value
    with pytest.raises(InputError, match=message):
        from_tables({**tables, table: df})


def test_tables_of_mismatched_sizes_say_what_to_fix():
    tables = to_tables(preset("Two tokens, worked by hand"))
    with pytest.raises(InputError, match="W_Q is 1 × 2 but X has 2 columns: W_Q must be 2 × 2"):
        from_tables({**tables, "W_Q": tables["W_Q"].iloc[:1]})
    with pytest.raises(InputError, match="3 rows"):
        from_tables({**tables, "biases": tables["biases"].iloc[:2]})
    with pytest.raises(InputError, match="vector size divisible by 2"):
        toy_steps(preset(RANDOM, d_model=3), 2)
