"""Pointing game and mass inside the mask, on constructed maps and masks with known answers, and the
evaluation against a recomputation of every figure from its definition."""

from __future__ import annotations

import math

import numpy as np
import pytest

import attnviz
from attnviz.image import generated_shapes
from attnviz.image.attribution import gradcam
from attnviz.image.faithfulness import evaluate, table
from attnviz.maths.map_scores import mass_inside, point_hits, pointing_hit

# ------------------------------------------------------------------ the definitions, written out slowly


def upsampled(grid_map: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each cell's value spread evenly over its pixels: a (h, w) map whose sum is the grid's sum."""
    rows, cols = grid_map.shape
    h, w = shape
    return np.kron(grid_map, np.ones((h // rows, w // cols))) / (h // rows * w // cols)


def slow_mass_inside(grid_map: np.ndarray, mask: np.ndarray) -> float:
    pixels = upsampled(np.asarray(grid_map, float), mask.shape)
    return float(pixels[mask].sum() / pixels.sum()) if pixels.sum() > 0 else 0.0


def slow_point_hits(point: tuple[float, float], mask: np.ndarray, tolerance: float) -> bool:
    """Any mask pixel whose centre (x + 0.5, y + 0.5) lies within ``tolerance`` of ``point``."""
    x0, y0 = point
    return any(math.hypot(x + 0.5 - x0, y + 0.5 - y0) <= tolerance for y, x in zip(*np.nonzero(mask), strict=True))


def slow_pointing_hit(grid_map: np.ndarray, mask: np.ndarray) -> bool:
    """The first highest cell (row by row), at its centre, within half a cell width of a mask pixel."""
    rows, cols = grid_map.shape
    h, w = mask.shape
    if not np.isfinite(grid_map).all() or grid_map.max() == grid_map.min():
        return False
    top = max(((r, c) for r in range(rows) for c in range(cols)), key=lambda rc: (grid_map[rc], -rc[0], -rc[1]))
    centre = ((top[1] + 0.5) * w / cols, (top[0] + 0.5) * h / rows)
    return slow_point_hits(centre, mask, tolerance=0.5 * w / cols)


def _mask(rows: slice, cols: slice) -> np.ndarray:
    m = np.zeros((64, 64), dtype=bool)
    m[rows, cols] = True
    return m


def test_peak_on_the_object_hits_and_elsewhere_misses():
    mask = _mask(slice(8, 16), slice(40, 48))  # exactly grid cell (1, 5)
    grid = np.zeros((8, 8))
    grid[1, 5] = 1.0
    assert pointing_hit(grid, mask)
    grid = np.zeros((8, 8))
    grid[6, 1] = 1.0
    assert not pointing_hit(grid, mask)


def test_tolerance_is_half_a_cell():
    mask = _mask(slice(8, 16), slice(48, 49))  # a 1-px wide line at x = 48
    # Cell (1, 5) has its centre at x = 44: the mask pixel centre 48.5 is 4.5 px away, > 4 px.
    assert not point_hits((44.0, 12.5), mask, tolerance=4.0)
    assert point_hits((44.5, 12.5), mask, tolerance=4.0)


def test_flat_map_never_hits():
    assert not pointing_hit(np.zeros((8, 8)), np.ones((64, 64), bool))
    assert not pointing_hit(np.ones((8, 8)), np.ones((64, 64), bool))


def test_mass_inside():
    mask = _mask(slice(0, 32), slice(0, 64))  # the top half
    assert mass_inside(np.ones((8, 8)), mask) == pytest.approx(0.5)
    top = np.zeros((8, 8))
    top[:4] = 1
    assert mass_inside(top, mask) == pytest.approx(1.0)
    half_cell = _mask(slice(0, 4), slice(0, 8))  # half of cell (0, 0)
    one = np.zeros((8, 8))
    one[0, 0] = 2.0
    assert mass_inside(one, half_cell) == pytest.approx(0.5)
    assert mass_inside(np.zeros((8, 8)), mask) == 0.0


def test_a_peak_next_to_the_shape_hits_within_half_a_cell_and_one_cell_further_misses():
    mask = _mask(slice(8, 16), slice(16, 24))  # exactly cell (1, 2); its pixel centres x = 16.5 .. 23.5
    grid = np.zeros((8, 8))
    grid[1, 1] = 1.0  # centre x = 12: the nearest mask pixel centre is 4.5 px away, tolerance 4 px
    assert not pointing_hit(grid, mask)
    mask[12, 15] = True  # one more mask pixel, centre (15.5, 12.5): 3.5 px from the cell centre (12, 12)
    assert pointing_hit(grid, mask)
    grid = np.zeros((8, 8))
    grid[1, 0] = 1.0  # centre x = 4: 11.5 px away
    assert not pointing_hit(grid, mask)


def test_the_top_cell_decides_not_the_mass():
    """A single high cell off the shape outweighs a broad plateau on it: the pointing game takes the maximum."""
    mask = _mask(slice(0, 32), slice(0, 64))  # the top half
    grid = np.zeros((8, 8))
    grid[:4] = 0.5
    grid[7, 7] = 0.6
    assert not pointing_hit(grid, mask)
    assert mass_inside(grid, mask) == pytest.approx(16 / (16 + 0.6))  # 32 cells of 0.5 inside, 0.6 outside
    grid[7, 7] = 0.4
    assert pointing_hit(grid, mask)


def test_no_hit_without_a_shape_or_with_a_broken_map():
    grid = np.zeros((8, 8))
    grid[3, 3] = 1.0
    assert not pointing_hit(grid, np.zeros((64, 64), bool))
    assert not point_hits((32.0, 32.0), np.zeros((64, 64), bool), tolerance=100.0)
    grid[0, 0] = np.nan
    assert not pointing_hit(grid, np.ones((64, 64), bool))
    assert mass_inside(np.full((8, 8), np.nan), np.ones((64, 64), bool)) == 0.0


@pytest.mark.parametrize("grid_shape", [(8, 8), (4, 8), (16, 2)])
def test_metrics_equal_their_definitions_on_random_maps_and_masks(grid_shape):
    rng = np.random.default_rng(7)
    for _ in range(40):
        grid = rng.random(grid_shape) ** 4  # peaked, positive
        mask = np.zeros((64, 64), bool)
        y, x = rng.integers(0, 60, 2)
        mask[y : y + rng.integers(1, 20), x : x + rng.integers(1, 20)] = True
        assert mass_inside(grid, mask) == pytest.approx(slow_mass_inside(grid, mask), abs=1e-12)
        assert pointing_hit(grid, mask) == slow_pointing_hit(grid, mask)
        point, tolerance = tuple(rng.uniform(0, 64, 2)), float(rng.uniform(0, 10))
        assert point_hits(point, mask, tolerance) == slow_point_hits(point, mask, tolerance)


def slow_rollout_cls(weights: np.ndarray) -> np.ndarray:
    """Abnar & Zuidema's rollout, class token's row: (mean over heads + I), rows renormalised, layers multiplied."""
    t = weights.shape[-1]
    flow = np.eye(t)
    for layer in weights.astype(np.float64):
        a = layer.mean(axis=0) + np.eye(t)
        flow = (a / a.sum(axis=1, keepdims=True)) @ flow
    return flow[0, 1:]


def test_evaluate_equals_a_recomputation_of_every_figure(random_model):
    n, seed = 6, 5
    hits = dict.fromkeys(("last-layer attention", "rollout", "Grad-CAM", "centre baseline"), 0)
    mass = dict.fromkeys(("last-layer attention", "rollout", "Grad-CAM"), 0.0)
    area, correct = 0.0, 0
    for i in range(n):
        sample = generated_shapes.shape_sample(seed, i)
        ia = attnviz.image_attention(random_model, sample.image)
        correct += ia.predictions[0][0] == sample.label
        maps = {
            "last-layer attention": ia.weights[-1, :, 0, 1:].mean(axis=0).reshape(8, 8),
            "rollout": slow_rollout_cls(ia.weights).reshape(8, 8),
            "Grad-CAM": gradcam(random_model, sample.image, sample.label).grid,
        }
        for method, grid_map in maps.items():
            hits[method] += slow_pointing_hit(grid_map, sample.mask)
            mass[method] += slow_mass_inside(grid_map, sample.mask)
        hits["centre baseline"] += slow_point_hits((32.0, 32.0), sample.mask, tolerance=4.0)
        area += sample.mask.sum() / sample.mask.size
    result = evaluate(random_model, n_images=n, seed=seed)
    assert (result.n_images, result.seed) == (n, seed)
    assert result.pointing == pytest.approx({k: v / n for k, v in hits.items()})
    assert result.mass == pytest.approx({**{k: v / n for k, v in mass.items()}, "uniform baseline": area / n}, abs=1e-6)
    assert result.accuracy == pytest.approx(correct / n)
    assert f"| rollout | {hits['rollout'] / n:.1%} | {mass['rollout'] / n:.1%} |" in table(result)


def test_evaluate_runs_and_reports_each_method(random_model):  # noqa: F811
    result = evaluate(random_model, n_images=12, seed=5)
    assert set(result.pointing) == {"last-layer attention", "rollout", "Grad-CAM", "centre baseline"}
    assert all(0 <= v <= 1 for v in (*result.pointing.values(), *result.mass.values()))
    assert 0 < result.mass["uniform baseline"] < 0.5
    assert "rollout" in table(result)
