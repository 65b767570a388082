"""Small multiples in the PNG/SVG/PDF downloads pool a long input by max, as the screen's mosaics do."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from attnviz.export.png import CMAP, grid_png, max_pooled


def test_one_strong_cell_survives_pooling():
    m = np.full((346, 346), 0.1 / 345, dtype=np.float32)
    m[200, 17] = 0.9
    pooled = max_pooled(m, 120)
    assert pooled.shape == (120, 120)
    assert pooled.max() == np.float32(0.9) and (pooled == np.float32(0.9)).sum() == 1
    assert max_pooled(m[:50, :50], 120) is not None and max_pooled(m[:50, :50], 120).shape == (50, 50)


def test_a_masked_cell_stays_masked_only_when_it_sees_nothing():
    n = 300
    visible = np.tri(n, dtype=bool)
    m = np.ma.masked_array(np.where(visible, 0.5, 0.0), mask=~visible)
    pooled = max_pooled(m, 100)
    assert not pooled.mask[np.arange(100), np.arange(100)].any()  # the diagonal blocks hold visible cells
    assert pooled.mask[0, 99] and not pooled.mask[99, 0]


def test_the_png_shows_one_strong_cell_of_a_long_input():
    """Sampled instead of pooled, a single strong cell of a 346-token matrix vanished from most PNGs."""
    top = (np.array(CMAP(1.0)[:3]) * 255).astype(int)
    n = 346
    for cell in [(200, 17), (5, 340), (123, 124), (345, 0)]:
        m = np.zeros((1, n, n), dtype=np.float32)
        m[(0, *cell)] = 1.0
        png = grid_png(m, ["head 0"], 1, "one strong cell", scale="fixed")
        rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        assert (np.abs(rgb - top).sum(axis=2) < 40).sum() >= 1, cell
