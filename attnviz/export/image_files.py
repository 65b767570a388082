"""Image maps as files: the overlay as a PNG, every map as ``.npz``."""

from __future__ import annotations

import io

import numpy as np
from matplotlib import colormaps
from PIL import Image


def overlay_png(image: Image.Image, grid_map: np.ndarray, *, opacity: float = 0.5, colormap: str = "inferno") -> bytes:
    """``grid_map`` (rows, cols), coloured with matplotlib's ``colormap``, blended over ``image``."""
    base = image.convert("RGB")
    top = float(np.max(grid_map))
    scaled = np.asarray(grid_map, dtype=np.float32) / (top if top > 0 else 1.0)
    rgba = (colormaps[colormap](scaled) * 255).astype(np.uint8)  # (rows, cols, 4)
    heat = Image.fromarray(rgba[..., :3], "RGB").resize(base.size, Image.Resampling.BICUBIC)
    blended = Image.blend(base, heat, float(np.clip(opacity, 0, 1)))
    buf = io.BytesIO()
    blended.save(buf, format="PNG")
    return buf.getvalue()


def maps_npz(maps: dict[str, np.ndarray], **metadata: str) -> bytes:
    """Named float32 maps (e.g. attention ``[layers, heads, t, t]``, rollout, Grad-CAM) and string metadata."""
    buf = io.BytesIO()
    arrays = {name: np.asarray(m, dtype=np.float32) for name, m in maps.items()}
    np.savez_compressed(buf, **arrays, **{k: np.array(v) for k, v in metadata.items()})
    return buf.getvalue()
