"""Does a map point at the object? Scores of a grid map against a pixel mask, in numpy.

The image page shows them for a demo image, and ``python -m attnviz.image.faithfulness`` averages
them over generated shapes: the **pointing game** (the map's highest cell, taken at its centre,
lies within half a cell of a mask pixel) and the **mass inside** (the share of the map's total,
each cell spread evenly over its pixels, that falls on the mask).
"""

from __future__ import annotations

import numpy as np


def _cell_centre(index: int, grid: tuple[int, int], size: tuple[int, int]) -> tuple[float, float]:
    """(x, y) pixel centre of flat cell ``index``."""
    rows, cols = grid
    h, w = size
    r, c = divmod(index, cols)
    return (c + 0.5) * w / cols, (r + 0.5) * h / rows


def point_hits(point: tuple[float, float], mask: np.ndarray, tolerance: float) -> bool:
    """True when a mask pixel (centre at +0.5) lies within ``tolerance`` pixels of ``point``."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return False
    d2 = (xs + 0.5 - point[0]) ** 2 + (ys + 0.5 - point[1]) ** 2
    return bool(d2.min() <= tolerance**2)


def pointing_hit(grid_map: np.ndarray, mask: np.ndarray) -> bool:
    """The map's top cell hits the mask (tolerance: half a grid cell). A flat map never hits."""
    if not np.isfinite(grid_map).all() or np.ptp(grid_map) <= 0:
        return False  # no peak to point with (e.g. Grad-CAM all zero after its ReLU)
    rows, cols = grid_map.shape
    point = _cell_centre(int(np.argmax(grid_map)), (rows, cols), mask.shape)
    return point_hits(point, mask, tolerance=0.5 * mask.shape[1] / cols)


def mass_inside(grid_map: np.ndarray, mask: np.ndarray) -> float:
    """Share of the map's mass on mask pixels, each cell's value spread over its pixels."""
    rows, cols = grid_map.shape
    h, w = mask.shape
    total = float(grid_map.sum())
    if total <= 0 or not np.isfinite(total):
        return 0.0
    # Pixels of the mask inside each cell, (rows, cols), times that cell's value per pixel.
    covered = mask.reshape(rows, h // rows, cols, w // cols).sum(axis=(1, 3))
    per_pixel = grid_map / (h // rows * w // cols)
    return float((per_pixel * covered).sum() / total)
