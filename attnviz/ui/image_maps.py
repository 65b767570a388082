"""The image page's attention maps as a table: one :class:`ImageMap` entry per map kind. The
page's "Map" choice is a name of :data:`IMAGE_MAPS`; the overlay and "All heads of layer" draw
whichever entry is chosen. Adding a map is one entry here (and, if it needs new numbers, one
method on ImageAttention or one formula in attnviz.maths).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from attnviz.image.extraction import ImageAttention
from attnviz.maths.attention_rollout import rollout


@dataclass(frozen=True)
class MapChoice:
    """What the map controls chose (attnviz.ui.image_page.map_controls)."""

    kind: str
    layer: int
    head: int | None  # None: mean of heads
    fusion: str
    discard: float
    opacity: float
    colormap: str
    from_min: bool = False
    patch: tuple[int, int] | None = None  # the clicked cell (row, col); None: none clicked yet
    cam_layer: str | None = None  # the convolution layer Grad-CAM explains (None: the model offers no Grad-CAM)
    #: Grad-CAM on ``cam_layer`` at that layer's own grid, when the "Grad-CAM" map is chosen
    #: (attnviz.ui.image_families.with_gradcam fills it in: the map needs the model and the class).
    cam: np.ndarray | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ImageMap:
    name: str
    #: The map over grid cells (rows, cols) for one head (None: mean of heads), and its title.
    grid_map: Callable[[ImageAttention, MapChoice, int | None], np.ndarray]
    title: Callable[[ImageAttention, MapChoice], str]
    #: What the "All heads of layer" row shows, e.g. "where the class token attends".
    heads_what: Callable[[ImageAttention, MapChoice], str]
    #: The map reads every layer and head: "All heads" shows the class token's instead, and the
    #: layer and head pickers are greyed.
    every_head: bool = False
    #: The overlay outlines the clicked patch.
    outlines_patch: bool = False
    #: A click on the overlay picks a patch of the attention grid (not on a map over another grid).
    clickable: bool = True
    #: The map reads the model's attention (absent for a CNN or Swin: attnviz.image.model_families).
    needs_attention: bool = True


def patch_of(ia: ImageAttention, choice: MapChoice) -> tuple[int, int]:
    """The clicked cell, kept inside this image's grid; the centre until one is clicked."""
    row, col = choice.patch or (ia.grid[0] // 2, ia.grid[1] // 2)
    return min(row, ia.grid[0] - 1), min(col, ia.grid[1] - 1)


def rollout_map(ia: ImageAttention, fusion: str = "mean", discard: float = 0.0) -> np.ndarray:
    """The class token's row of the rollout, over grid cells: (rows, cols)."""
    specials = len(ia.special_tokens)  # the class token first; a DeiT's distillation token after it
    return rollout(ia.weights, head_fusion=fusion, discard_ratio=discard)[0, specials:].reshape(ia.grid)


def _heads(choice: MapChoice) -> str:
    return "mean of heads" if choice.head is None else f"head {choice.head}"


def layer_words(ia: ImageAttention, layer: int) -> str:
    """ "layer 3", and for a Swin which block of which stage it is: "layer 3 (stage 1, block 1, shifted)"."""
    if not ia.windows:
        return f"layer {layer}"
    block = ia.windows[layer]
    return f"layer {layer} (stage {block.stage}, block {block.block}{', shifted' if block.shift else ''})"


CLASS_TOKEN = ImageMap(
    "Class token",
    grid_map=lambda ia, c, head: ia.cls_attention(c.layer, head),
    title=lambda ia, c: f"Class token, layer {c.layer}, {_heads(c)}",
    heads_what=lambda ia, c: "where the class token attends",
)
ROLLOUT = ImageMap(
    "Rollout",
    grid_map=lambda ia, c, head: rollout_map(ia, c.fusion, c.discard),
    title=lambda ia, c: f"Rollout ({c.fusion} of heads)",
    heads_what=CLASS_TOKEN.heads_what,
    every_head=True,
)
FROM_PATCH = ImageMap(
    "From a clicked patch",
    grid_map=lambda ia, c, head: ia.cell_attention(c.layer, head, *patch_of(ia, c)),
    title=lambda ia, c: "From patch ({}, {}), {}, {}".format(*patch_of(ia, c), layer_words(ia, c.layer), _heads(c)),
    heads_what=lambda ia, c: "where patch ({}, {}) attends".format(*patch_of(ia, c)),
    outlines_patch=True,
)
GRADCAM = ImageMap(
    "Grad-CAM",
    grid_map=lambda ia, c, head: c.cam,
    title=lambda ia, c: f"Grad-CAM on {c.cam_layer}",
    heads_what=CLASS_TOKEN.heads_what,
    every_head=True,
    clickable=False,
    needs_attention=False,
)
IMAGE_MAPS: dict[str, ImageMap] = {m.name: m for m in (CLASS_TOKEN, ROLLOUT, FROM_PATCH, GRADCAM)}
MAPS = tuple(IMAGE_MAPS)


def heads_entry(entry: ImageMap) -> ImageMap:
    """The entry whose per-head maps "All heads of layer" draws for ``entry``."""
    return CLASS_TOKEN if entry.every_head else entry
