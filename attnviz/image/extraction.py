"""One forward pass of an image model: predictions and every layer's and head's attention.

Tokens: 0 is the class token, then the grid cells row by row (cell (r, c) is token
``1 + r * cols + c``), for both the bundled CNN-attention model and ViTs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from attnviz.device import falls_back_to_cpu
from attnviz.image.loading import ImageModel
from attnviz.results import AttentionResult


@dataclass(frozen=True)
class ImageAttention(AttentionResult):
    predictions: list[tuple[str, float]]  # (label, probability), best first, every class
    weights: np.ndarray  # float32 (layers, heads, T, T), T = 1 + rows * cols; rows sum to 1
    grid: tuple[int, int]  # (rows, cols)
    image: Image.Image  # the RGB image as the model saw it (its input size)
    model_name: str

    @property
    def row_labels(self) -> list[str]:
        """The class token, then the grid cells row by row, as "cell (row, col)"."""
        rows, cols = self.grid
        return ["[CLS]", *(f"cell ({r}, {c})" for r in range(rows) for c in range(cols))]

    @property
    def column_labels(self) -> list[str]:
        return self.row_labels

    def cls_attention(self, layer: int, head: int | None = None) -> np.ndarray:
        """The class token's attention to each grid cell: (rows, cols); ``head=None`` averages heads."""
        rows = self.weights[layer, :, 0, 1:] if head is None else self.weights[layer, head, 0, 1:][None]
        return rows.mean(axis=0).reshape(self.grid)

    def cell_attention(self, layer: int, head: int | None, row: int, col: int) -> np.ndarray:
        """Where grid cell (row, col) attends: (rows, cols); ``head=None`` averages heads."""
        query = 1 + row * self.grid[1] + col
        rows = self.weights[layer, :, query, 1:] if head is None else self.weights[layer, head, query, 1:][None]
        return rows.mean(axis=0).reshape(self.grid)


@falls_back_to_cpu("computing image attention")
def image_attention(model: ImageModel, image: Image.Image) -> ImageAttention:
    """Classify ``image`` and return the attention of every layer and head."""
    x = model.pixels(image)  # (1, 3, H, W)
    with model.lock, torch.inference_mode():
        logits, attention = model.forward(x)  # (1, K), (1, L, heads, T, T)
    probs = torch.softmax(logits[0].float(), dim=-1).cpu().numpy()
    weights = attention[0].float().cpu().numpy()
    rows, cols = model.grid
    if weights.shape[-1] != 1 + rows * cols:
        raise RuntimeError(f"{model.name}: {weights.shape[-1]} tokens, expected class token + {rows}x{cols} grid")
    order = np.argsort(-probs, kind="stable")
    h, w = model.input_size
    return ImageAttention(
        predictions=[(model.classes[i], float(probs[i])) for i in order],
        weights=np.ascontiguousarray(weights, dtype=np.float32),
        grid=(rows, cols),
        image=image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR),
        model_name=model.name,
    )
