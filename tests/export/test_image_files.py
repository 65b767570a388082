"""The overlay and the maps .npz downloads of the image page."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from attnviz.export.image_files import blend_overlay, maps_npz


def test_the_overlay_has_the_image_size_and_shows_the_map():
    image = Image.new("RGB", (120, 80), (0, 0, 0))
    grid = np.zeros((8, 8))
    grid[0, 7] = 1.0  # top-right cell hot
    blended = blend_overlay(image, grid, opacity=0.8, colormap="inferno")
    assert blended.size == (120, 80)  # the overlay PNG draws it beside a colour bar (test_figure_formats)
    arr = np.asarray(blended, dtype=float)
    assert arr[:10, -15:].mean() > arr[-10:, :15].mean() + 50  # hot corner brighter than the cold one


def test_the_overlay_of_a_flat_zero_map():
    blended = blend_overlay(Image.new("RGB", (10, 10)), np.zeros((2, 2)), opacity=0.0)
    assert np.asarray(blended).max() == 0  # opacity 0 leaves the image as it was


def test_maps_npz_round_trip():
    maps = {"rollout": np.random.default_rng(0).random((8, 8)), "attention": np.ones((2, 4, 65, 65))}
    data = np.load(io.BytesIO(maps_npz(maps, model="m", target="star")))
    np.testing.assert_allclose(data["rollout"], maps["rollout"].astype(np.float32))
    assert data["attention"].shape == (2, 4, 65, 65) and data["attention"].dtype == np.float32
    assert str(data["target"]) == "star" and str(data["model"]) == "m"
