"""Grad-CAM and Integrated Gradients on the image model, checked against plain autograd."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

import attnviz
from attnviz.errors import InputError
from attnviz.image import generated_shapes
from attnviz.image.attribution import gradcam, integrated_gradients


def test_gradcam_equals_its_definition(random_model):  # noqa: F811
    """ReLU(sum_c mean_ij(dy/dA_c) * A_c) on the last conv stage, computed with autograd."""
    sample = generated_shapes.shape_sample(1, 3)
    cam = gradcam(random_model, sample.image, "star")
    net = random_model.model
    x = random_model.pixels(sample.image)
    acts = {}
    handle = net.last_conv.register_forward_hook(lambda m, i, o: acts.setdefault("a", o))
    try:
        logits = net(x)
    finally:
        handle.remove()
    a = acts["a"]  # (1, C, 8, 8)
    (grad,) = torch.autograd.grad(logits[0, generated_shapes.CLASSES.index("star")], a)
    expected = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * a).sum(1))[0].detach().numpy()
    np.testing.assert_allclose(cam.grid, expected, rtol=1e-4, atol=1e-6)
    assert cam.pixels.shape == (64, 64) and (cam.pixels >= 0).all()
    assert cam.target == "star" and cam.method == "Grad-CAM"


def test_integrated_gradients_completeness(random_model):  # noqa: F811
    """IG sums to f(x) - f(baseline) up to the convergence delta it reports."""
    sample = generated_shapes.shape_sample(1, 4)
    ig = integrated_gradients(random_model, sample.image, 2, n_steps=64)
    assert ig.pixels.shape == (64, 64) and ig.grid.shape == (8, 8)
    assert np.isfinite(ig.pixels).all() and ig.delta is not None and np.isfinite(ig.delta)
    np.testing.assert_allclose(ig.grid.sum(), ig.pixels.sum(), rtol=1e-4)
    assert ig.delta < 0.05
    x, black = random_model.pixels(sample.image), random_model.pixels(Image.new("RGB", (64, 64)))
    with torch.no_grad():
        expected = (random_model.logits(x) - random_model.logits(black))[0, 2].item()
    assert ig.change == pytest.approx(expected, abs=1e-4)


def test_bad_targets_are_input_errors(random_model):  # noqa: F811
    sample = generated_shapes.shape_sample(1, 5)
    with pytest.raises(InputError, match="not a class"):
        gradcam(random_model, sample.image, "hexagon")
    with pytest.raises(InputError):
        integrated_gradients(random_model, sample.image, 99)


def test_hooks_are_removed_and_concurrent_extraction_is_unchanged(random_model):  # noqa: F811
    """Attribution in one thread never changes another thread's forward pass."""
    net = random_model.model
    images = [generated_shapes.shape_sample(2, i).image for i in range(6)]
    serial = [attnviz.image_attention(random_model, im).weights for im in images]
    errors: list[str] = []

    def attribute():
        for im in images:
            gradcam(random_model, im, 0)
            integrated_gradients(random_model, im, 1, n_steps=8)

    def extract():
        for _ in range(3):
            for im, expected in zip(images, serial, strict=True):
                got = attnviz.image_attention(random_model, im).weights
                if not np.array_equal(got, expected):
                    errors.append("extraction changed while attributions ran")

    threads = [threading.Thread(target=attribute), threading.Thread(target=extract), threading.Thread(target=extract)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    hooks = [m for m in net.modules() if m._forward_hooks or m._backward_hooks or m._forward_pre_hooks]
    assert not hooks
