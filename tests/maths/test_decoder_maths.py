"""RoPE, RMSNorm/LayerNorm and the causal head, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnviz import InputError
from attnviz.maths.causal_head import causal_head_steps, causal_visible
from attnviz.maths.norms import LAYER_NORM, RMS_NORM, layer_norm, norm_step, rms_norm
from attnviz.maths.rotary import apply_rope, rope_angles, rope_frequencies, rope_step, rotate_half


def rope_complex(x: np.ndarray, positions: np.ndarray, base: float) -> np.ndarray:
    """RoPE in its complex form (RoFormer eq. 34), written without any code of the module under test:
    the pair (x_i, x_{i+d/2}) is the complex number x_i + i·x_{i+d/2}, multiplied by e^{i·m·θ_i}."""
    d = x.shape[1]
    half = d // 2
    theta = np.array([base ** (-2.0 * i / d) for i in range(half)])
    z = x[:, :half] + 1j * x[:, half:]
    turned = z * np.exp(1j * positions[:, None] * theta[None, :])
    return np.concatenate([turned.real, turned.imag], axis=1)


# ---------------------------------------------------------------- RoPE


@pytest.mark.parametrize(("d", "base"), [(2, 10_000.0), (8, 10_000.0), (64, 100_000.0)])
def test_rope_equals_the_complex_rotation(rng, d, base):
    q, k = rng.normal(size=(2, 11, d))
    step = rope_step(q, k, base)
    positions = np.arange(11)
    np.testing.assert_allclose(step.q, rope_complex(q, positions, base), atol=1e-12)
    np.testing.assert_allclose(step.k, rope_complex(k, positions, base), atol=1e-12)
    np.testing.assert_array_equal(step.q_before, q)
    assert step.angles.shape == (11, d // 2) and step.pairs[0] == (0, d // 2)


def test_rope_frequencies_and_angles_by_hand():
    inv = rope_frequencies(4, 10_000.0)  # θ_0 = 1, θ_1 = 10000^(-2/4) = 0.01
    np.testing.assert_allclose(inv, [1.0, 0.01])
    np.testing.assert_allclose(rope_angles([0, 1, 3], inv), [[0, 0], [1, 0.01], [3, 0.03]])


def test_rotate_half_pairs_i_with_i_plus_half():
    np.testing.assert_array_equal(rotate_half(np.array([1.0, 2.0, 3.0, 4.0])), [-3.0, -4.0, 1.0, 2.0])
    # A quarter turn of pair (a, b) = (x_0, x_2) gives (−b, a).
    out = apply_rope(np.array([[1.0, 0.0, 5.0, 0.0]]), np.array([[np.pi / 2, 0.0]]))
    np.testing.assert_allclose(out, [[-5.0, 0.0, 1.0, 0.0]], atol=1e-12)


def test_rope_keeps_lengths_and_scores_depend_on_the_offset_only(rng):
    """RoPE turns each pair, so lengths stay; q_m·k_n depends on m − n only (RoFormer §3.4.2)."""
    q, k = rng.normal(size=(2, 1, 16))
    at = [rope_step(np.repeat(q, 2, 0), np.repeat(k, 2, 0), 500.0, positions=[m, n]) for m, n in ((3, 1), (10, 8))]
    near, far = (float(s.q[0] @ s.k[1]) for s in at)
    assert near == pytest.approx(far, abs=1e-12)
    np.testing.assert_allclose(np.linalg.norm(at[1].q, axis=1), np.linalg.norm(np.repeat(q, 2, 0), axis=1))


def test_position_zero_is_not_turned(rng):
    q, k = rng.normal(size=(2, 3, 6))
    step = rope_step(q, k, 10_000.0)
    np.testing.assert_allclose(step.q[0], q[0], atol=1e-15)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: rope_frequencies(5, 10_000.0), "must be even"),
        (lambda: rope_frequencies(4, 0.5), "above 1"),
        (lambda: rope_step(np.zeros((3, 4)), np.zeros((2, 4)), 10_000.0), "one shape"),
        (lambda: rope_step(np.zeros((3, 4)), np.zeros((3, 4)), 10_000.0, positions=[0, 1]), "one position per token"),
    ],
)
def test_rope_bad_input_says_what_to_fix(call, message):
    with pytest.raises(InputError, match=message):
        call()


# ---------------------------------------------------------------- norms


def test_rms_norm_by_hand_and_against_torch(rng):
    # [3, 4]: mean square 12.5, root √12.5; with weight [1, 2].
    np.testing.assert_allclose(rms_norm([[3.0, 4.0]], [1.0, 2.0], eps=0.0), [[3 / 12.5**0.5, 8 / 12.5**0.5]])
    x, w = rng.normal(size=(5, 12)), rng.normal(size=12)
    expected = torch.nn.functional.rms_norm(torch.tensor(x), (12,), torch.tensor(w), eps=1e-5).numpy()
    np.testing.assert_allclose(rms_norm(x, w, eps=1e-5), expected, atol=1e-12)
    step = norm_step(RMS_NORM, x, w, eps=1e-5)
    np.testing.assert_array_equal(step.centre, 0.0)
    np.testing.assert_allclose(step.spread, np.sqrt((x**2).mean(axis=1) + 1e-5))


def test_layer_norm_against_torch(rng):
    x, w, b = rng.normal(size=(5, 12)), rng.normal(size=12), rng.normal(size=12)
    expected = torch.nn.functional.layer_norm(torch.tensor(x), (12,), torch.tensor(w), torch.tensor(b), eps=1e-5)
    np.testing.assert_allclose(layer_norm(x, w, b, eps=1e-5), expected.numpy(), atol=1e-12)
    step = norm_step(LAYER_NORM, x, w, b, eps=1e-5)
    np.testing.assert_allclose(step.centre, x.mean(axis=1))
    np.testing.assert_allclose(step.spread, np.sqrt(x.var(axis=1) + 1e-5))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((RMS_NORM, np.zeros((2, 3)), np.ones(3), np.zeros(3)), "RMSNorm has no bias"),
        ((RMS_NORM, np.zeros((2, 3)), np.ones(4)), "one number per dimension"),
        (("BatchNorm", np.zeros((2, 3)), np.ones(3)), "Unknown norm"),
        ((LAYER_NORM, np.zeros(3), np.ones(3)), "matrix of token vectors"),
    ],
)
def test_norm_bad_input_says_what_to_fix(args, message):
    with pytest.raises(InputError, match=message):
        norm_step(*args)


# ---------------------------------------------------------------- the causal head


def test_causal_visible_with_and_without_a_window():
    np.testing.assert_array_equal(causal_visible(3), [[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    np.testing.assert_array_equal(causal_visible(4, window=2), [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]])
    with pytest.raises(InputError, match="sliding window"):
        causal_visible(3, window=0)


@pytest.mark.parametrize("rope_base", [None, 10_000.0])
def test_causal_head_equals_torch_sdpa(rng, rope_base):
    n, d_model, d_head = 7, 12, 4
    x, g = rng.normal(size=(n, d_model)), rng.normal(size=d_model)
    w_q, w_k, w_v = rng.normal(size=(3, d_model, d_head))
    b_q = rng.normal(size=d_head)
    norm = norm_step(RMS_NORM, x, g, eps=1e-6)
    steps = causal_head_steps(norm, w_q, w_k, w_v, b_q=b_q, rope_base=rope_base)
    q = norm.normed @ w_q + b_q
    k = norm.normed @ w_k
    if rope_base is not None:
        q, k = rope_complex(q, np.arange(n), rope_base), rope_complex(k, np.arange(n), rope_base)
    tq, tk, tv = (torch.tensor(a)[None, None] for a in (q, k, norm.normed @ w_v))
    expected = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True)[0, 0].numpy()
    np.testing.assert_allclose(steps.context, expected, atol=1e-12)
    np.testing.assert_array_equal(steps.weights[np.triu_indices(n, 1)], 0.0)  # exactly zero, not tiny
    assert np.isneginf(steps.masked[np.triu_indices(n, 1)]).all()
    np.testing.assert_allclose(steps.weights.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(steps.scores, steps.q @ steps.k.T)
    np.testing.assert_allclose(steps.q_unrotated, norm.normed @ w_q + b_q)
    assert steps.scale == pytest.approx(d_head**-0.5) and steps.mask.all()
    assert (steps.rope is None) == (rope_base is None)
    np.testing.assert_array_equal(steps.x, x)


def test_first_token_attends_only_to_itself(rng):
    norm = norm_step(LAYER_NORM, rng.normal(size=(5, 6)), np.ones(6), np.zeros(6))
    steps = causal_head_steps(norm, *rng.normal(size=(3, 6, 2)), window=2)
    assert steps.weights[0, 0] == 1.0
    assert steps.weights[4, :3].sum() == 0.0 and steps.window == 2
