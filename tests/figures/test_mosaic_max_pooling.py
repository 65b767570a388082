"""Thumbnails pool by max: one strong cell among hundreds of tokens stays as bright as it is."""

from __future__ import annotations

import numpy as np

from attnviz.figures.mosaic import pooling_note, tile


def _one_hot_rows(n: int, hot: tuple[int, int], weight: float = 0.9) -> np.ndarray:
    m = np.full((n, n), (1 - weight) / (n - 1), dtype=np.float32)  # the rest spread evenly
    m[hot] = weight
    return m


def test_a_single_hot_cell_keeps_its_full_colour():
    """346 tokens in 48 px: averaging made the one strong cell ~1/52 of its colour (a blank tile)."""
    m = _one_hot_rows(346, (200, 17))
    t = tile(m, 48, zmax=float(m.max()))
    assert t.shape == (48, 48)
    assert t.max() == 1.0  # the pixel that holds the hot cell is at the top of the scale
    hot = np.argwhere(t == 1.0)
    assert len(hot) == 1
    r, c = hot[0]
    assert r * 346 // 48 <= 200 <= (r + 1) * 346 // 48 and c * 346 // 48 <= 17 <= (c + 1) * 346 // 48
    assert np.all(t[t < 1.0] < 0.01)  # and the rest stays faint: nothing is invented


def test_small_matrices_are_enlarged_not_pooled():
    m = np.arange(16, dtype=np.float32).reshape(4, 4) / 15
    t = tile(m, 32, zmax=1.0)
    np.testing.assert_array_equal(t[::8, ::8], m)
    assert pooling_note((4, 4), 32) == ""


def test_a_decoders_pixel_is_grey_only_when_it_sees_no_key():
    n = 100
    visible = np.tri(n, dtype=bool)  # causal: query i sees keys 0..i
    m = np.where(visible, 1.0 / np.arange(1, n + 1)[:, None], 0.0).astype(np.float32)
    t = tile(m, 10, zmax=1.0, visible=visible)
    assert not np.isnan(np.diag(t)).any()  # diagonal blocks hold visible keys: coloured, never grey
    assert np.isnan(t[0, 9]) and not np.isnan(t[9, 0])


def test_the_title_says_how_it_pools():
    assert "max" in pooling_note((346, 346), 48) and "8 × 8 cells" in pooling_note((346, 346), 48)
