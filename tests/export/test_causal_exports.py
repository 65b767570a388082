"""PNG exports of a decoder's attention: keys a query cannot see are grey, as on screen, not weight 0."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from attnviz.export import png
from attnviz.export.rollout_files import rollout_png
from attnviz.figures.matrix import NOT_VISIBLE
from attnviz.text.views import AttentionView

GREY = tuple(int(NOT_VISIBLE[i : i + 2], 16) for i in (1, 3, 5))


def view_of(causal: bool, n: int = 10) -> AttentionView:
    rng = np.random.default_rng(0)
    raw = rng.random((2, 2, n, n)).astype(np.float32) * np.tril(np.ones((n, n), dtype=np.float32))
    weights = raw / raw.sum(-1, keepdims=True)
    tokens = [f"t{i}" for i in range(n)]
    return AttentionView(tokens, tokens, weights, np.arange(n), np.arange(n), "x", causal=causal)


def grey_pixels(data: bytes) -> int:
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return int((pixels == GREY).all(axis=-1).sum())


@pytest.mark.parametrize(
    "export",
    [
        lambda v: png.head_matrix_png(v, 1, 0),
        lambda v: png.layer_heads_png(v, 0),
        lambda v: png.overview_png(v),
        lambda v: png.token_heads_png(v, 3),
        lambda v: rollout_png(
            AttentionView(
                v.query_tokens,
                v.key_tokens,
                v.weights[:1, :1],
                v.query_positions,
                v.key_positions,
                "r",
                causal=v.causal,
            )
        ),
    ],
)
def test_invisible_keys_are_grey_only_for_a_decoder(export):
    # A masked cell is hundreds of grey pixels; text antialiasing makes a few of that shade anyway.
    assert grey_pixels(export(view_of(causal=True))) > 500
    assert grey_pixels(export(view_of(causal=False))) < 50
