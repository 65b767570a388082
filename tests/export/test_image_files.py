"""Overlay PNG and maps .npz downloads of the image page."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from attnviz.export.image_files import maps_npz, overlay_png


def test_overlay_png_has_the_image_size_and_shows_the_map():
    image = Image.new("RGB", (120, 80), (0, 0, 0))
    grid = np.zeros((8, 8))
    grid[0, 7] = 1.0  # top-right cell hot
    png = Image.open(io.BytesIO(overlay_png(image, grid, opacity=0.8, colormap="inferno")))
    assert png.format == "PNG" and png.size == (120, 80)
    arr = np.asarray(png.convert("RGB"), dtype=float)
    assert arr[:10, -15:].mean() > arr[-10:, :15].mean() + 50  # hot corner brighter than the cold one


def test_overlay_png_with_a_flat_zero_map():
    png = overlay_png(Image.new("RGB", (10, 10)), np.zeros((2, 2)), opacity=0.0)
    assert np.asarray(Image.open(io.BytesIO(png))).max() == 0  # opacity 0 leaves the image as it was


def test_maps_npz_round_trip():
    maps = {"rollout": np.random.default_rng(0).random((8, 8)), "attention": np.ones((2, 4, 65, 65))}
    data = np.load(io.BytesIO(maps_npz(maps, model="m", target="star")))
    np.testing.assert_allclose(data["rollout"], maps["rollout"].astype(np.float32))
    assert data["attention"].shape == (2, 4, 65, 65) and data["attention"].dtype == np.float32
    assert str(data["target"]) == "star" and str(data["model"]) == "m"
