"""Images unlike the generated shapes, for measuring the domain check (:mod:`attnviz.image.domain_check`).

Each function returns uint8 RGB images ``[N, size, size, 3]``, reproducible from its seed:

* :func:`photographs`: the sample photographs scikit-learn ships (``load_sample_images``: a temple
  in China and a flower), whole and as random square crops; empty when scikit-learn is absent;
* :func:`scan_like`: greyscale "scans", an elliptic body with darker and brighter discs and
  sensor noise (in the spirit of the Shepp–Logan phantom), as a medical-imaging student's slice;
* :func:`uniform_noise`, :func:`gaussian_noise`: every pixel random;
* :func:`flat_colours`: one colour over the whole image (a 1 x 1 upload, scaled up, is one).
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def photographs(size: int = 64, crops: int = 20, seed: int = 0) -> np.ndarray:
    """scikit-learn's sample photographs, whole (squashed to a square) and ``crops`` random square crops each."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        return np.zeros((0, size, size, 3), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    out = []
    for pixels in load_sample_images().images:
        photo = Image.fromarray(pixels)
        out.append(np.asarray(photo.resize((size, size), Image.Resampling.BILINEAR)))
        w, h = photo.size
        for _ in range(crops):
            side = int(rng.integers(size, min(w, h)))
            x0, y0 = int(rng.integers(0, w - side)), int(rng.integers(0, h - side))
            crop = photo.crop((x0, y0, x0 + side, y0 + side))
            out.append(np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR)))
    return np.stack(out)


def scan_like(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` greyscale phantom slices: a body ellipse, four discs of other density, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / (size - 1) * 2 - 1
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        a, b = rng.uniform(0.6, 0.9), rng.uniform(0.7, 0.95)
        grey = ((xx / a) ** 2 + (yy / b) ** 2 < 1) * 0.6
        for _ in range(4):
            cx, cy, r = rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), rng.uniform(0.05, 0.25)
            grey = grey + ((xx - cx) ** 2 + (yy - cy) ** 2 < r * r) * rng.uniform(-0.3, 0.3)
        grey = np.clip(grey + rng.normal(0, 0.03, grey.shape), 0, 1)
        out[i] = (grey * 255).astype(np.uint8)[..., None]
    return out


def uniform_noise(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Every channel of every pixel uniform on 0..255."""
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3)).astype(np.uint8)


def gaussian_noise(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """Every channel of every pixel normal around mid-grey (sd 40), clipped."""
    return np.clip(np.random.default_rng(seed).normal(128, 40, (n, size, size, 3)), 0, 255).astype(np.uint8)


def flat_colours(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    """``n`` images of one random colour each."""
    colours = np.random.default_rng(seed).integers(0, 256, (n, 3)).astype(np.uint8)
    return np.broadcast_to(colours[:, None, None, :], (n, size, size, 3)).copy()
