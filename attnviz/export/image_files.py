"""Image maps as files: the overlay with its colour bar as a PNG, SVG or PDF, every map as ``.npz``."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image

from attnviz.export.figure_formats import PNG_DPI, save_figure


def blend_overlay(
    image: Image.Image, grid_map: np.ndarray, *, opacity: float = 0.5, colormap: str = "inferno", from_min: bool = False
) -> Image.Image:
    """``grid_map`` (rows, cols), coloured with matplotlib's ``colormap`` from 0 (or its minimum, ``from_min``)
    to its maximum, blended over ``image`` at the image's own size."""
    base = image.convert("RGB")
    bottom, top = _range(grid_map, from_min)
    scaled = (np.asarray(grid_map, dtype=np.float32) - bottom) / (top - bottom)
    rgba = (colormaps[colormap](np.clip(scaled, 0, 1)) * 255).astype(np.uint8)  # (rows, cols, 4)
    heat = Image.fromarray(rgba[..., :3], "RGB").resize(base.size, Image.Resampling.BICUBIC)
    return Image.blend(base, heat, float(np.clip(opacity, 0, 1)))


def _range(grid_map: np.ndarray, from_min: bool) -> tuple[float, float]:
    """The colour scale's ends: 0 (or the minimum) to the maximum, never an empty range."""
    top = float(np.max(grid_map))
    bottom = float(np.min(grid_map)) if from_min and float(np.min(grid_map)) < top else 0.0
    return bottom, (top if top > bottom else bottom + 1.0)


def overlay_png(
    image: Image.Image,
    grid_map: np.ndarray,
    *,
    opacity: float = 0.5,
    colormap: str = "inferno",
    from_min: bool = False,
    title: str = "",
    value_label: str = "attention",
    fmt: str = "png",
    paper: bool = False,
) -> bytes:
    """The overlay of :func:`blend_overlay` beside a colour bar of the map's scale, as a PNG (or ``fmt``:
    svg, pdf; ``paper``: paper-ready, :mod:`attnviz.export.figure_formats`).

    The picture keeps the image's pixels up to 1,200 across (a vector file embeds it as one image).
    """
    blended = blend_overlay(image, grid_map, opacity=opacity, colormap=colormap, from_min=from_min)
    w, h = blended.size
    width = float(np.clip(w / PNG_DPI, 3.0, 8.0))  # inches
    fig = Figure(figsize=(width + 1.2, width * h / w + (0.5 if title else 0.2)))
    ax = fig.subplots()
    ax.imshow(np.asarray(blended), interpolation="nearest" if w >= width * PNG_DPI else "bilinear")
    ax.set_axis_off()
    if title:
        ax.set_title(title.replace("$", r"\$"), fontsize=9)
    bottom, top = _range(grid_map, from_min)
    bar = ScalarMappable(norm=Normalize(bottom, top), cmap=colormaps[colormap])
    fig.colorbar(bar, ax=ax, fraction=0.046, pad=0.03, label=value_label)
    return save_figure(fig, fmt, paper=paper)


def overlays_png(
    image: Image.Image,
    maps: list[tuple[str, np.ndarray]],
    *,
    opacity: float = 0.5,
    colormap: str = "inferno",
    n_cols: int | None = None,
    title: str = "",
    fmt: str = "png",
    paper: bool = False,
) -> bytes:
    """Small multiples: one overlay per (title, map), ``n_cols`` to a row (default: one row of up to 6), each
    map scaled to its own maximum as on the image page; one shared colour bar (0 to each map's largest)
    beside them. The image is reduced to 256 pixels a side first, so that a vector file stays small."""
    thumb = image.convert("RGB")
    thumb.thumbnail((256, 256))
    n = len(maps)
    n_cols = max(1, min(n_cols or 6, n))
    n_rows = -(-n // n_cols)
    aspect = thumb.height / thumb.width
    fig = Figure(figsize=(2.0 * n_cols + 1.0, (2.0 * aspect + 0.35) * n_rows + (0.4 if title else 0)))
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, (name, grid_map) in zip(axes, maps, strict=False):
        ax.imshow(np.asarray(blend_overlay(thumb, grid_map, opacity=opacity, colormap=colormap)))
        ax.set_title(name.replace("$", r"\$")[:40], fontsize=8)
    if title:
        fig.suptitle(title.replace("$", r"\$"), fontsize=10)
    bar = ScalarMappable(norm=Normalize(0, 1), cmap=colormaps[colormap])
    fig.colorbar(bar, ax=list(axes), fraction=0.03, label="share of each map's largest value")
    return save_figure(fig, fmt, paper=paper)


def maps_npz(maps: dict[str, np.ndarray], **metadata: str) -> bytes:
    """Named float32 maps (e.g. attention ``[layers, heads, t, t]``, rollout, Grad-CAM) and string metadata."""
    buf = io.BytesIO()
    arrays = {name: np.asarray(m, dtype=np.float32) for name, m in maps.items()}
    np.savez_compressed(buf, **arrays, **{k: np.array(v) for k, v in metadata.items()})
    return buf.getvalue()
