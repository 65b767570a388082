"""Generated shape images: the data the bundled image model learns from and is measured on.

Each image holds one shape of a random colour, size (15–45% of the image side) and rotation,
placed uniformly at random, on a varied background (noise, gradients, stripes, checks, blotches)
with clutter (thin lines and small blobs that are not shapes). A sample carries the shape's
pixel mask, used only to *measure* where a map points, never to supervise attention.

Everything is a pure function of ``(seed, index)``: image ``i`` of a dataset with seed ``s``
is drawn from ``numpy.random.default_rng([s, i])``, so any image can be regenerated alone.
Shapes are drawn as polygons at 4x resolution and box-filtered down, which gives anti-aliased
edges; the mask is the set of pixels the shape covers at least half of.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

#: The eight classes, in the model's output order.
CLASSES = ("circle", "square", "triangle", "diamond", "pentagon", "star", "cross", "ring")
DEFAULT_SIZE = 64
_SUPERSAMPLE = 4
#: A diamond is a rhombus with diagonals 0.6 : 1, so it is never a rotated square.
DIAMOND_RATIO = 0.6
#: The shape's extent (its bounding circle's diameter) as a share of the image side.
SIZE_RANGE = (0.15, 0.45)


@dataclass(frozen=True)
class ShapeSample:
    image: Image.Image  # RGB, size x size
    label: str
    label_index: int
    mask: np.ndarray  # bool (size, size): pixels the shape covers
    centre: tuple[float, float]  # (x, y) in pixels
    radius: float  # bounding-circle radius in pixels


# ------------------------------------------------------------------------ shape outlines
# Each outline is a list of polygons in unit coordinates (bounding circle of radius 1), drawn
# filled; a ring also has a hole, drawn with fill 0 afterwards.


def _regular(n: int, start: float = -np.pi / 2) -> np.ndarray:
    t = start + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], axis=1)  # (n, 2)


def _outline(label: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(filled polygons, holes) of a shape, unit bounding circle, before rotation."""
    if label == "circle":
        return [_regular(64)], []
    if label == "ring":
        return [_regular(64)], [0.55 * _regular(64)]
    if label == "square":
        return [_regular(4, np.pi / 4)], []
    if label == "triangle":
        return [_regular(3)], []
    if label == "pentagon":
        return [_regular(5)], []
    if label == "diamond":
        return [np.array([[0, -1], [DIAMOND_RATIO, 0], [0, 1], [-DIAMOND_RATIO, 0]], dtype=float)], []
    if label == "star":
        outer, inner = _regular(5), 0.42 * _regular(5, -np.pi / 2 + np.pi / 5)
        return [np.stack([outer, inner], axis=1).reshape(10, 2)], []
    if label == "cross":
        # A plus sign whose arms are a third as wide as they are long; arm corners touch the circle.
        a = 1 / np.sqrt(1 + (1 / 3) ** 2)
        w = a / 3
        quarter = np.array([[w, -a], [w, -w], [a, -w]])  # one arm's corner, then the inner corner
        turns = [
            np.array([[1, 0], [0, 1]]),
            np.array([[0, -1], [1, 0]]),
            np.array([[-1, 0], [0, -1]]),
            np.array([[0, 1], [-1, 0]]),
        ]
        return [np.concatenate([quarter @ r.T for r in turns])], []
    raise ValueError(f"unknown shape {label!r}")


def _coverage(label: str, centre: np.ndarray, radius: float, angle: float, size: int) -> np.ndarray:
    """Share of each pixel the shape covers, float32 (size, size) in [0, 1]."""
    big = size * _SUPERSAMPLE
    canvas = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(canvas)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    filled, holes = _outline(label)
    for fill, polys in ((255, filled), (0, holes)):
        for poly in polys:
            pts = (poly @ rot.T * radius + centre) * _SUPERSAMPLE
            draw.polygon([tuple(p) for p in pts], fill=fill)
    small = canvas.resize((size, size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


# ------------------------------------------------------------------------ backgrounds


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, size=3)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """float32 (size, size, 3) in [0, 255]: one of five kinds, always with some noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    kind = rng.integers(5)
    c1, c2 = _random_colour(rng), _random_colour(rng)
    if kind == 0:  # coloured noise around one colour
        img = c1 + rng.normal(0, rng.uniform(15, 45), size=(size, size, 3))
    elif kind == 1:  # linear gradient at a random angle
        t = np.cos(rng.uniform(0, 2 * np.pi)) * xx + np.sin(rng.uniform(0, 2 * np.pi)) * yy
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    elif kind == 2:  # stripes
        angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 10)
        t = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy))
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    elif kind == 3:  # checks
        n = rng.integers(3, 9)
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2).astype(np.float32)
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    else:  # blotches: low-frequency noise, upsampled
        coarse = rng.uniform(0, 1, size=(4, 4)).astype(np.float32)
        t = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC))
        t = np.clip(t, 0, 1)
        img = c1 * (1 - t[..., None]) + c2 * t[..., None]
    img = img + rng.normal(0, rng.uniform(2, 12), size=(size, size, 3))
    return img.astype(np.float32)


def _clutter(rng: np.random.Generator, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(coverage, colour) layers: thin lines across the image and small blobs."""
    big = size * _SUPERSAMPLE
    layers = []
    for _ in range(rng.integers(1, 5)):  # lines
        canvas = Image.new("L", (big, big), 0)
        p = rng.uniform(-0.1, 1.1, size=4) * big
        ImageDraw.Draw(canvas).line(list(p), fill=255, width=int(rng.integers(2, 6)))
        layers.append(canvas)
    for _ in range(rng.integers(2, 7)):  # blobs: small ellipses, a few pixels across
        canvas = Image.new("L", (big, big), 0)
        cx, cy = rng.uniform(0, big, size=2)
        rx, ry = rng.uniform(0.01, 0.045, size=2) * big
        ImageDraw.Draw(canvas).ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
        layers.append(canvas)
    out = []
    for canvas in layers:
        cov = np.asarray(canvas.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0
        out.append((cov, _random_colour(rng)))
    return out


def _shape_colour(rng: np.random.Generator, behind: np.ndarray) -> np.ndarray:
    """A random colour that stands out from the background under the shape."""
    for _ in range(20):
        colour = _random_colour(rng)
        if np.linalg.norm(colour - behind) > 110:
            return colour
    return np.where(behind > 127, 0.0, 255.0)  # the opposite corner of the colour cube


# ------------------------------------------------------------------------ samples


def shape_sample(seed: int, index: int = 0, size: int = DEFAULT_SIZE, label: str | None = None) -> ShapeSample:
    """Image ``index`` of the dataset with ``seed``; ``label`` forces the class."""
    rng = np.random.default_rng([seed, index])
    label_index = int(rng.integers(len(CLASSES))) if label is None else CLASSES.index(label)
    radius = rng.uniform(*SIZE_RANGE) * size / 2
    centre = rng.uniform(radius, size - radius, size=2)  # uniform over every place it fits
    angle = rng.uniform(0, 2 * np.pi)
    img = _background(rng, size)
    clutter = _clutter(rng, size)
    # Clutter sometimes crosses the shape: a few layers go on top, never enough to hide it.
    n_over = int(rng.integers(0, 2)) * max(1, len(clutter) // 3)
    under, over = clutter[n_over:], clutter[:n_over]
    for cov, c in under:
        img = img * (1 - cov[..., None]) + c * cov[..., None]
    cover = _coverage(CLASSES[label_index], centre, radius, angle, size)
    inside = cover > 0.5
    behind = img[inside].mean(axis=0) if inside.any() else img.mean(axis=(0, 1))
    colour = _shape_colour(rng, behind)
    shade = rng.normal(0, 6, size=(size, size, 3))  # the shape is not a flat colour either
    img = img * (1 - cover[..., None]) + (colour + shade) * cover[..., None]
    for cov, c in over:
        img = img * (1 - cov[..., None]) + c * cov[..., None]
    pixels = np.clip(img, 0, 255).round().astype(np.uint8)
    return ShapeSample(
        image=Image.fromarray(pixels, "RGB"),
        label=CLASSES[label_index],
        label_index=label_index,
        mask=cover >= 0.5,
        centre=(float(centre[0]), float(centre[1])),
        radius=float(radius),
    )


def shape_dataset(n: int, seed: int, size: int = DEFAULT_SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` samples as arrays: images uint8 (n, size, size, 3), labels int64 (n,), masks bool (n, size, size)."""
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    masks = np.empty((n, size, size), dtype=bool)
    for i in range(n):
        s = shape_sample(seed, i, size)
        images[i], labels[i], masks[i] = np.asarray(s.image), s.label_index, s.mask
    return images, labels, masks


#: Seed of the demo images the image page offers (one per class); not a training seed.
DEMO_SEED = 4242


def demo_samples(size: int = DEFAULT_SIZE) -> list[ShapeSample]:
    """One generated image per class, the same on every machine."""
    return [shape_sample(DEMO_SEED, i, size, label=label) for i, label in enumerate(CLASSES)]
