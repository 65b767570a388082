"""The generated shapes: deterministic, every class, masks that match the pixels."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.image import generated_shapes
from attnviz.image.generated_shapes import CLASSES, shape_dataset, shape_sample


def test_label_set_is_exactly_the_eight_classes():
    assert CLASSES == ("circle", "square", "triangle", "diamond", "pentagon", "star", "cross", "ring")


def test_same_seed_same_image_other_seed_other_image():
    a, b = shape_sample(3, 17), shape_sample(3, 17)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert np.array_equal(a.mask, b.mask) and a.label == b.label
    c = shape_sample(4, 17)
    assert not np.array_equal(np.asarray(a.image), np.asarray(c.image))


def test_dataset_rows_equal_single_samples():
    images, labels, masks = shape_dataset(5, seed=9)
    for i in range(5):
        s = shape_sample(9, i)
        assert np.array_equal(images[i], np.asarray(s.image))
        assert labels[i] == CLASSES.index(s.label) and np.array_equal(masks[i], s.mask)


def test_every_class_appears_in_a_few_hundred_samples():
    _, labels, _ = shape_dataset(400, seed=1)
    counts = np.bincount(labels, minlength=8)
    assert (counts > 25).all(), counts


@pytest.mark.parametrize("label", CLASSES)
def test_mask_matches_size_and_lies_inside_the_image(label):
    for i in range(10):
        s = shape_sample(5, i, label=label)
        assert s.image.size == (64, 64) and s.image.mode == "RGB"
        assert s.mask.shape == (64, 64) and s.mask.dtype == bool
        area = s.mask.sum()
        assert area > 0
        # The mask never extends past the shape's bounding circle (plus a pixel of anti-aliasing).
        ys, xs = np.nonzero(s.mask)
        dist = np.hypot(xs + 0.5 - s.centre[0], ys + 0.5 - s.centre[1])
        assert dist.max() <= s.radius + 1.0
        # Size: 15-45% of the side, as a bounding-circle diameter.
        assert 0.15 * 64 - 1e-6 <= 2 * s.radius <= 0.45 * 64 + 1e-6


def test_ring_has_a_hole_and_circle_has_none():
    ring = shape_sample(2, 0, label="ring")
    circle = shape_sample(2, 0, label="circle")  # same geometry draws (same rng stream)
    cx, cy = (int(v) for v in ring.centre)
    assert not ring.mask[cy, cx] and circle.mask[cy, cx]
    assert ring.mask.sum() < 0.8 * circle.mask.sum()


def test_diamond_is_not_a_square():
    """The diamond's mask is thinner than a square's with the same bounding circle."""
    d = shape_sample(6, 0, label="diamond")
    s = shape_sample(6, 0, label="square")
    # A rhombus with diagonals 2r and 1.2r has area 1.2 r^2; the square inscribed has 2 r^2.
    assert d.mask.sum() / s.mask.sum() == pytest.approx(0.6, abs=0.1)


def test_shapes_are_placed_all_over_the_image_not_only_the_centre():
    centres = np.array([shape_sample(8, i).centre for i in range(300)])
    # Uniform placement reaches every quadrant and the edges.
    assert centres[:, 0].min() < 16 and centres[:, 0].max() > 48
    assert centres[:, 1].min() < 16 and centres[:, 1].max() > 48
    quadrant = (centres[:, 0] > 32).astype(int) * 2 + (centres[:, 1] > 32)
    assert (np.bincount(quadrant, minlength=4) > 50).all()


def test_the_shape_differs_from_its_surroundings():
    """The shape's colour stands out: its mean differs from the pixels around it."""
    for i in range(20):
        s = shape_sample(11, i)
        px = np.asarray(s.image, dtype=float)
        inside = px[s.mask].mean(axis=0)
        ring = np.zeros_like(s.mask)
        ys, xs = np.nonzero(s.mask)
        ring[max(0, ys.min() - 3) : ys.max() + 4, max(0, xs.min() - 3) : xs.max() + 4] = True
        around = px[ring & ~s.mask].mean(axis=0)
        assert np.linalg.norm(inside - around) > 20


def test_demo_samples_one_per_class():
    demos = generated_shapes.demo_samples()
    assert [d.label for d in demos] == list(CLASSES)
