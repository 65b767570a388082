"""Attention rollout against hand-computed examples, the published formula, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import attnviz
from attnviz import InputError, rollout
from tests.helpers import random_attention


def reference_rollout(weights: np.ndarray, head_fusion: str = "mean", discard_ratio: float = 0.0) -> np.ndarray:
    """Abnar & Zuidema's rollout written out loop by loop, in float64, for one [L, H, t, t] input."""
    n_layers, _, t, _ = weights.shape
    result = np.eye(t)
    for l in range(n_layers):
        fused = {"mean": np.mean, "max": np.max, "min": np.min}[head_fusion](weights[l].astype(np.float64), axis=0)
        k = int(discard_ratio * t * t)
        if k:
            flat = fused.ravel().copy()
            flat[np.argsort(flat, kind="stable")[:k]] = 0.0
            fused = flat.reshape(t, t)
        a = fused + np.eye(t)
        for i in range(t):
            a[i] = a[i] / a[i].sum()
        result = a @ result
    return result


def stack(*layers) -> np.ndarray:
    """[L, H, t, t] from per-layer lists of head matrices."""
    return np.array([[np.array(h, dtype=np.float64) for h in heads] for heads in layers])


# ---------------------------------------------------------------- hand-computed


def test_one_layer_two_tokens():
    # A + I = [[2, 0], [0.5, 1.5]], each row sums to 2.
    out = rollout(stack([[[1.0, 0.0], [0.5, 0.5]]]))
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.25, 0.75]], atol=1e-7)


def test_two_layers_multiply_from_the_first_up():
    a0 = [[0.5, 0.5], [0.5, 0.5]]  # -> [[0.75, 0.25], [0.25, 0.75]]
    a1 = [[1.0, 0.0], [1.0, 0.0]]  # -> [[1, 0], [0.5, 0.5]]
    out = rollout(stack([a0], [a1]))
    # Ã1 · Ã0; the other order would give [[0.875, 0.125], [0.625, 0.375]].
    np.testing.assert_allclose(out, [[0.75, 0.25], [0.5, 0.5]], atol=1e-7)


@pytest.mark.parametrize(
    "fusion, expected",
    [
        ("mean", 0.75 * np.eye(3) + 0.25 * np.roll(np.eye(3), 1, axis=1)),  # (I/2 + P/2 + I) / 2
        ("max", (2 * np.eye(3) + np.roll(np.eye(3), 1, axis=1)) / 3),  # (I + P + I) / 3
        ("min", np.eye(3)),  # min of two disjoint heads is 0: only the residual is left
    ],
)
def test_head_fusion_on_three_tokens(fusion, expected):
    identity = np.eye(3)
    shift = np.roll(np.eye(3), 1, axis=1)  # token i attends to token i+1 (mod 3)
    out = rollout(stack([identity, shift]), head_fusion=fusion)
    np.testing.assert_allclose(out, expected, atol=1e-7)


def test_discard_drops_the_lowest_and_renormalises_each_row():
    a = [[0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.05, 0.15, 0.8]]
    # int(0.34 * 9) = 3 lowest entries (0.05, 0.1, 0.15) dropped; rows of A + I then sum to 1.9, 2.0, 1.8.
    out = rollout(stack([a]), discard_ratio=0.34)
    expected = [[1.6 / 1.9, 0.3 / 1.9, 0.0], [0.1, 0.6, 0.3], [0.0, 0.0, 1.0]]
    np.testing.assert_allclose(out, expected, atol=1e-7)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)


def test_one_token_is_one():
    np.testing.assert_array_equal(rollout(np.ones((3, 2, 1, 1))), [[1.0]])


# ---------------------------------------------------------------- the formula on random input


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard", [0.0, 0.2, 0.9])
def test_matches_the_formula_on_random_row_stochastic_input(rng, fusion, discard):
    for n_layers, n_heads, t in [(1, 1, 2), (2, 3, 5), (6, 12, 17)]:
        w = random_attention(rng, n_layers, n_heads, t)
        out = rollout(w, head_fusion=fusion, discard_ratio=discard)
        assert out.shape == (t, t) and out.dtype == np.float32
        np.testing.assert_allclose(out, reference_rollout(w, fusion, discard), atol=1e-6)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
        assert (out >= 0).all()


def test_every_batch_item_is_rolled_out_including_the_discard(rng):
    """vit-explain applies the discard to batch item 0 only; here each item equals its own rollout."""
    batch = np.stack([random_attention(rng, 3, 4, 6) for _ in range(3)])  # (B, L, H, t, t)
    out = rollout(batch, head_fusion="max", discard_ratio=0.5)
    assert out.shape == (3, 6, 6)
    for b in range(3):
        np.testing.assert_allclose(out[b], rollout(batch[b], head_fusion="max", discard_ratio=0.5), atol=1e-7)
        np.testing.assert_allclose(out[b], reference_rollout(batch[b], "max", 0.5), atol=1e-6)


def test_torch_tensors_and_per_layer_tuples(rng):
    w = random_attention(rng, 3, 2, 4)
    expected = rollout(w)
    np.testing.assert_allclose(rollout(torch.from_numpy(w).requires_grad_()), expected, atol=1e-7)
    # transformers' outputs.attentions: one (batch, heads, t, t) tensor per layer
    per_layer = tuple(torch.from_numpy(w[l])[None] for l in range(3))
    out = rollout(per_layer)
    assert out.shape == (1, 4, 4)
    np.testing.assert_allclose(out[0], expected, atol=1e-7)


def test_input_is_not_modified(rng):
    w = random_attention(rng, 2, 2, 5)
    before = w.copy()
    rollout(w, discard_ratio=0.5)
    np.testing.assert_array_equal(w, before)


def test_class_token_and_grid_like_an_image_model(rng):
    """1 class token + a 3x3 grid: the class token's row is a distribution over the 10 tokens."""
    w = random_attention(rng, 4, 4, 10)
    cls_row = rollout(w)[0]
    assert cls_row.shape == (10,)
    assert cls_row.sum() == pytest.approx(1.0, abs=1e-6)
    grid = cls_row[1:].reshape(3, 3)
    assert (grid > 0).all()


def test_on_real_text_attention(tiny_model):
    ta = attnviz.text_attention(tiny_model, "the cat sat on the mat .")
    out = attnviz.rollout(ta.weights, head_fusion="mean", discard_ratio=0.1)
    assert out.shape == (ta.n_tokens, ta.n_tokens)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out, reference_rollout(ta.weights, "mean", 0.1), atol=1e-6)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "weights, kwargs, message",
    [
        (np.ones((2, 3, 3)) / 3, {}, "layers, heads, t, t"),
        (np.ones((1, 1, 2, 3)) / 3, {}, "square"),
        (np.ones((0, 1, 2, 2)), {}, "at least one layer"),
        (np.full((1, 1, 2, 2), np.nan), {}, "NaN"),
        (-np.ones((1, 1, 2, 2)), {}, "negative"),
        (np.ones((1, 1, 2, 2)) / 2, {"head_fusion": "median"}, "head_fusion"),
        (np.ones((1, 1, 2, 2)) / 2, {"discard_ratio": 1.0}, "discard_ratio"),
        (np.ones((1, 1, 2, 2)) / 2, {"discard_ratio": -0.1}, "discard_ratio"),
    ],
)
def test_bad_input_raises_input_error(weights, kwargs, message):
    with pytest.raises(InputError, match=message):
        rollout(weights, **kwargs)


def test_rollout_is_the_exported_function():
    assert callable(attnviz.rollout)
    assert attnviz.rollout is rollout


# ---------------------------------------------------------------- the text page's rollout view


def test_rollout_view_applies_display_options_after_rollout(rng):
    from attnviz.export.rollout_files import rollout_csv, rollout_png
    from attnviz.figures.rollout import rollout_matrix
    from attnviz.text.views import make_view, rollout_view
    from tests.helpers import constructed_pair

    ta = constructed_pair(rng)
    full = rollout(ta.weights, "min", 0.2)
    view = rollout_view(ta, head_fusion="min", discard_ratio=0.2)
    np.testing.assert_allclose(view.weights[0, 0], full, atol=1e-7)
    assert "min over heads, lowest 20% discarded" in view.description
    # Words, a pair block and hidden specials: the same selection as a head's, on the rollout.
    import dataclasses

    words = rollout_view(ta, head_fusion="min", discard_ratio=0.2, words=True, block="A→B", hide_special=True)
    as_head = dataclasses.replace(ta, weights=full[None, None])
    expected = make_view(as_head, words=True, block="A→B", hide_special=True)
    np.testing.assert_allclose(words.weights, expected.weights, atol=1e-6)
    assert words.query_tokens == ["The", "unbelievable", "cat"] and words.key_tokens == ["A", "dog"]

    fig = rollout_matrix(view)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), full, atol=1e-7)
    assert fig.layout.title.text.startswith("Attention rollout")
    assert rollout_png(view).startswith(b"\x89PNG")
    lines = rollout_csv(view).decode().splitlines()
    assert lines[0] == "query_index,query,key_index,key,rollout"
    assert len(lines) == 1 + ta.n_tokens**2
    assert lines[1] == f"0,[CLS],0,[CLS],{full[0, 0]:.6f}"


# ------------------------------------------------------------------ causal rollout


def random_causal(rng, n_layers: int, n_heads: int, t: int) -> np.ndarray:
    raw = rng.random((n_layers, n_heads, t, t)) * np.tril(np.ones((t, t)))
    return raw / raw.sum(-1, keepdims=True)


def test_causal_rollout_of_uniform_attention_is_uniform():
    """The baseline divides itself out: attention spread evenly over what each token sees gives even rows."""
    t, n_layers = 7, 4
    uniform = np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]
    weights = np.broadcast_to(uniform, (n_layers, 3, t, t))
    raw = rollout(weights)
    assert raw[-1, 0] > 2 * raw[-1, -1]  # raw rollout favours the first token by position alone
    np.testing.assert_allclose(rollout(weights, causal=True), uniform, atol=1e-6)


def test_causal_rollout_equals_its_definition(rng):
    t, n_layers = 6, 3
    weights = random_causal(rng, n_layers, 2, t)
    # The definition, written out: R / U element-wise on and below the diagonal, rows renormalised.
    layers = weights.mean(axis=1) + np.eye(t)
    layers /= layers.sum(-1, keepdims=True)
    uniform = (np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None] + np.eye(t)) / 2
    r, u = layers[0], uniform
    for l in range(1, n_layers):
        r, u = layers[l] @ r, uniform @ u
    ratio = np.divide(r, u, out=np.zeros_like(r), where=np.tril(np.ones((t, t))) > 0)
    expected = ratio / ratio.sum(-1, keepdims=True)
    got = rollout(weights, causal=True)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert (np.triu(got, 1) == 0).all()
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-6)
