"""A decoder's attention in the figures: keys a query cannot see are "not visible" (empty, grey),
never drawn as weight 0, at token and word level, in one head, in every head, and in the mosaics."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

import attnviz
from attnviz import figures
from attnviz.figures.matrix import NOT_VISIBLE
from attnviz.text.views import AttentionView

GREY = np.array([int(NOT_VISIBLE[i : i + 2], 16) for i in (1, 3, 5)])


def causal_view(rng, n: int, n_layers: int = 2, n_heads: int = 3) -> AttentionView:
    """Random causal attention: rows of a lower triangle that sum to 1, exact zeros above."""
    raw = rng.random((n_layers, n_heads, n, n)).astype(np.float32) * np.tril(np.ones((n, n), dtype=np.float32))
    weights = raw / raw.sum(-1, keepdims=True)
    tokens = [f"t{i}" for i in range(n)]
    return AttentionView(tokens, tokens, weights, np.arange(n), np.arange(n), "causal", causal=True)


def heatmap_z(fig: go.Figure) -> np.ndarray:
    (trace,) = [t for t in fig.data if isinstance(t, go.Heatmap)]
    return np.asarray(trace.z, dtype=float)


def test_head_matrix_leaves_invisible_cells_empty_and_unclickable(rng):
    n = 9
    view = causal_view(rng, n)
    fig = figures.head_matrix(view, 1, 2)
    z = heatmap_z(fig)
    above = np.triu(np.ones((n, n), dtype=bool), 1)
    assert np.isnan(z[above]).all()
    np.testing.assert_allclose(z[~above], view.weights[1, 2][~above], rtol=1e-6)
    assert fig.layout.plot_bgcolor == NOT_VISIBLE
    # One hover/click point per visible cell: row r has r + 1, with row r's own weights.
    (layer,) = [t for t in fig.data if isinstance(t, go.Scatter)]
    rows, cols = np.asarray(layer.y, dtype=int), np.asarray(layer.x, dtype=int)
    assert np.bincount(rows).tolist() == list(range(1, n + 1))
    assert (cols <= rows).all()
    np.testing.assert_allclose(np.asarray(layer.marker.color), view.weights[1, 2][rows, cols], rtol=1e-6)


def test_an_encoder_matrix_is_unchanged(rng):
    view = causal_view(rng, 6)
    encoder = AttentionView(
        view.query_tokens, view.key_tokens, view.weights, view.query_positions, view.key_positions, "x"
    )
    z = heatmap_z(figures.head_matrix(encoder, 0, 0))
    assert not np.isnan(z).any()
    assert figures.head_matrix(encoder, 0, 0).layout.plot_bgcolor is None


def test_token_heads_hide_keys_after_the_query(rng):
    view = causal_view(rng, 8)
    z = heatmap_z(figures.token_heads(view, 3))
    assert z.shape == (2 * 3, 8)
    assert np.isnan(z[:, 4:]).all()
    np.testing.assert_allclose(z[:, :4], view.weights[:, :, 3, :4].reshape(6, 4), rtol=1e-6)


def mosaic_pixels(fig: go.Figure) -> np.ndarray:
    (image,) = [t for t in fig.data if isinstance(t, go.Image)]
    data = base64.b64decode(image.source.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def test_mosaic_tiles_are_grey_above_the_diagonal(rng):
    n, size = 12, 48
    view = causal_view(rng, n, n_layers=1, n_heads=2)
    pixels = mosaic_pixels(figures.model_overview(view, size=size))
    cell = size // n
    for r in range(n):
        for c in range(n):
            colour = pixels[r * cell + cell // 2, c * cell + cell // 2]
            if c > r:
                np.testing.assert_array_equal(colour, GREY)
            else:
                assert not np.array_equal(colour, GREY)


def test_word_level_visibility(tiny_decoder_dirs):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["gpt2"]), device="cpu")
    ta = attnviz.text_attention(tm, "Zebras quickly juxtaposed xylophones")
    view = attnviz.make_view(ta, words=True)
    n = len(view.query_tokens)
    assert n < ta.n_tokens  # some words have several pieces
    np.testing.assert_array_equal(view.visible, np.tril(np.ones((n, n), dtype=bool)))
    # Word i's row puts nothing on later words, and still sums to 1 (a mean of rows that sum to 1).
    assert (view.weights[..., ~view.visible] == 0).all()
    np.testing.assert_allclose(view.weights.sum(-1), 1.0, atol=1e-5)


@pytest.mark.bundled
def test_decoder_overview_of_every_head_stays_under_1_mb(bundled_decoder):
    """All 30 x 9 heads of the bundled decoder at 128 tokens, as one mosaic: the issue's payload budget."""
    words = ("Attention lets every token of a sentence look back at the tokens before it. " * 20).split()
    ids = bundled_decoder.tokenizer(" ".join(words))["input_ids"][:128]
    text = bundled_decoder.tokenizer.decode(ids)
    ta = attnviz.text_attention(bundled_decoder, text)
    assert abs(ta.n_tokens - 128) <= 2
    fig = figures.model_overview(attnviz.make_view(ta))
    points = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert len(points[0].x) == 30 * 9
    assert len(fig.to_json().encode()) < 1_000_000
