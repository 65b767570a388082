"""Gradient maps for an image model, computed by captum: Grad-CAM and Integrated Gradients.

Both run under ``model.lock``: captum installs hooks on the (shared, cached) model, and a hook
must never meet another thread's forward pass. captum removes its hooks itself, in ``finally``.
Out of GPU memory, the model moves to the CPU and the map is computed again there
(:func:`attnviz.device.falls_back_to_cpu`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam
from PIL import Image

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.image.loading import ImageModel


@dataclass(frozen=True)
class PixelMap:
    """An attribution map at two resolutions. Both are non-negative."""

    method: str
    target: str  # the class explained
    grid: np.ndarray  # float32 (rows, cols): summed over each cell, comparable with attention
    pixels: np.ndarray  # float32 (H, W) at the model's input size
    delta: float | None = None  # captum's convergence delta (Integrated Gradients only)
    change: float | None = None  # f(image) - f(baseline), the score IG splits among the pixels
    n_steps: int | None = None  # the integral's steps (Integrated Gradients only)
    layer: str | None = None  # the convolution layer explained (Grad-CAM only)
    #: Grad-CAM at the layer's own resolution (its output grid), as captum's LayerGradCam returns it.
    layer_map: np.ndarray | None = None


def _target_index(model: ImageModel, target: int | str) -> int:
    if isinstance(target, str):
        if target not in model.classes:
            raise InputError(f"{target!r} is not a class of {model.name}; choose one of {', '.join(model.classes)}.")
        return model.classes.index(target)
    if not 0 <= int(target) < len(model.classes):
        raise InputError(f"Class index {target} is outside 0..{len(model.classes) - 1}.")
    return int(target)


def _pool(pixels: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W) -> (rows, cols) by summing each cell's pixels; pixel (y, x) lies in cell
    (y * rows // H, x * cols // W) when H, W are not multiples of the grid."""
    rows, cols = grid
    h, w = pixels.shape
    if h % rows == 0 and w % cols == 0:
        return pixels.reshape(rows, h // rows, cols, w // cols).sum(axis=(1, 3))
    cell = (np.arange(h)[:, None] * rows // h) * cols + np.arange(w)[None, :] * cols // w
    sums = np.bincount(cell.ravel(), weights=pixels.ravel().astype(np.float64), minlength=rows * cols)
    return sums.reshape(rows, cols).astype(pixels.dtype)


def conv_layer(model: ImageModel, layer: str | None) -> str:
    """The convolution layer Grad-CAM explains: ``layer`` (one of ``model.family.conv_layers``), or the
    family's default (the last one of the main path: ``ModelFamily.default_layer``)."""
    if not model.has_conv:
        family = model.family
        why = family.absent_reason("Grad-CAM") if family is not None else None
        because = f": {why}" if why else ""
        raise InputError(f"{model.name} offers no Grad-CAM{because}. Use the attention maps or Integrated Gradients.")
    layers = model.family.conv_layers
    if layer is None:
        return model.family.default_layer
    if layer not in layers:
        shown = ", ".join(layers[:8]) + (f" and {len(layers) - 8} more" if len(layers) > 8 else "")
        raise InputError(f"{layer!r} is not a convolution layer of {model.name}; choose one of {shown}.")
    return layer


@falls_back_to_cpu("computing Grad-CAM")
def gradcam(model: ImageModel, image: Image.Image, target: int | str, layer: str | None = None) -> PixelMap:
    """Grad-CAM of ``target``'s logit on a convolution layer, ReLU applied.

    ``layer``: a module name of ``model.family.conv_layers`` (for ``model.model.get_submodule``);
    None: the last one of the main path (the bundled model's ``last_conv``). ``layer_map`` is captum's map at the
    layer's own grid; ``grid`` is that map when the layer's grid is the model's, else the map
    upsampled to the input and summed over the model's grid cells (comparable with attention).
    """
    name = conv_layer(model, layer)
    index = _target_index(model, target)
    x = model.pixels(image)  # (1, 3, H, W)
    with model.lock, torch.enable_grad():
        cam = LayerGradCam(model.logits, model.model.get_submodule(name))
        attr = cam.attribute(x, target=index, relu_attributions=True)  # (1, 1, rows, cols)
        up = LayerAttribution.interpolate(attr, model.input_size, interpolate_mode="bilinear")  # (1, 1, H, W)
    layer_map = attr[0, 0].detach().float().cpu().numpy().clip(min=0)
    pixels = up[0, 0].detach().float().cpu().numpy().clip(min=0)
    return PixelMap(
        method="Grad-CAM",
        target=model.classes[index],
        grid=layer_map if layer_map.shape == tuple(model.grid) else _pool(pixels, model.grid),
        pixels=pixels,
        layer=name,
        layer_map=layer_map,
    )


@falls_back_to_cpu("computing Integrated Gradients")
def integrated_gradients(model: ImageModel, image: Image.Image, target: int | str, n_steps: int = 128) -> PixelMap:
    """|Integrated Gradients| summed over colour channels, from a black image to ``image``.

    128 steps: on the bundled model 32 steps left convergence deltas up to half the explained
    score change on some images; 128 keep them near 2 % (0.18 s on 2 CPU cores).
    """
    index = _target_index(model, target)
    x = model.pixels(image)  # (1, 3, H, W)
    baseline = model.pixels(Image.new("RGB", image.size, (0, 0, 0)))
    with model.lock, torch.enable_grad():
        ig = IntegratedGradients(model.logits)
        attr, delta = ig.attribute(x, baselines=baseline, target=index, n_steps=n_steps, return_convergence_delta=True)
    pixels = attr[0].detach().abs().sum(dim=0).float().cpu().numpy()  # (H, W)
    delta_value = float(delta.item())  # sum(attributions) - (f(x) - f(baseline))
    return PixelMap(
        method="Integrated Gradients",
        target=model.classes[index],
        grid=_pool(pixels, model.grid),
        pixels=pixels,
        delta=abs(delta_value),
        change=float(attr.detach().sum()) - delta_value,
        n_steps=n_steps,
    )
