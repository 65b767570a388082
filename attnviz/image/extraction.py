"""One forward pass of an image model: predictions and every layer's and head's attention.

Tokens: the special tokens first (``ImageAttention.special_tokens``: the class token; a DeiT's
distillation token after it; a DINOv2's registers), then the grid cells row by row (cell (r, c) is
token ``s + r * cols + c`` with ``s`` special tokens), for both the bundled CNN-attention model and
ViTs. A model without attention maps (a CNN: :mod:`attnviz.image.model_families`) gets
predictions and an empty ``weights`` of shape ``(0, 0, 0, 0)``.

A Swin's attention is per local window, each stage on its own grid, so it is no ``weights`` matrix
(that stays empty): ``windows`` holds every block's window attention
(:class:`~attnviz.image.window_attention.WindowBlock`), its "layers" are the blocks over all stages,
and :meth:`ImageAttention.cell_attention` draws a patch's row of its window over the patch grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from attnviz.device import falls_back_to_cpu
from attnviz.image.domain_check import domain_verdict, png_bits_per_pixel
from attnviz.image.loading import ImageModel
from attnviz.image.model_families import ModelFamily
from attnviz.image.window_attention import WindowBlock, window_blocks
from attnviz.maths.domain_scores import BITS
from attnviz.results import AttentionResult


@dataclass(frozen=True)
class ImageAttention(AttentionResult):
    predictions: list[tuple[str, float]]  # (label, probability), best first, every class
    weights: np.ndarray  # float32 (layers, heads, T, T), T = specials + rows * cols; rows sum to 1
    grid: tuple[int, int]  # (rows, cols)
    image: Image.Image  # the RGB image as the model saw it (its input size)
    model_name: str
    #: True when the model's domain check (attnviz.image.domain_check) finds the image unlike its
    #: training images; ``domain_note`` says so in words (also when it is like them, or not checked).
    out_of_domain: bool = False
    domain_note: str = ""
    #: Labels of the tokens before the grid cells; () when the model has no attention maps.
    special_tokens: tuple[str, ...] = ("[CLS]",)
    #: Which maps the model supports and why the others are absent (None: not known).
    family: ModelFamily | None = None
    #: A Swin's attention: every block's, per window, in the order the model runs them; () for other models.
    windows: tuple[WindowBlock, ...] = ()

    @property
    def has_attention(self) -> bool:
        """One square matrix over the special tokens and the grid per layer (``weights``)."""
        return self.weights.shape[0] > 0

    @property
    def has_window_attention(self) -> bool:
        """A Swin's per-window attention (``windows``)."""
        return bool(self.windows)

    @property
    def map_layers(self) -> int:
        """Layers whose maps can be drawn: ``n_layers``, or a Swin's blocks."""
        return len(self.windows) if self.windows else (self.n_layers if self.has_attention else 0)

    def heads_in(self, layer: int) -> int:
        """Heads of ``layer`` (a Swin's stages have different numbers of heads)."""
        return self.windows[layer].heads if self.windows else self.n_heads

    @property
    def row_labels(self) -> list[str]:
        """The special tokens, then the grid cells row by row, as "cell (row, col)"."""
        if not self.has_attention:
            return []
        rows, cols = self.grid
        return [*self.special_tokens, *(f"cell ({r}, {c})" for r in range(rows) for c in range(cols))]

    @property
    def column_labels(self) -> list[str]:
        return self.row_labels

    def cls_attention(self, layer: int, head: int | None = None) -> np.ndarray:
        """The class token's attention to each grid cell: (rows, cols); ``head=None`` averages heads."""
        s = len(self.special_tokens)
        rows = self.weights[layer, :, 0, s:] if head is None else self.weights[layer, head, 0, s:][None]
        return rows.mean(axis=0).reshape(self.grid)

    def cell_attention(self, layer: int, head: int | None, row: int, col: int) -> np.ndarray:
        """Where grid cell (row, col) attends: (rows, cols); ``head=None`` averages heads.

        A Swin: the query is the cell of block ``layer``'s stage that holds patch (row, col), and the map is
        that cell's row of its window's attention over the patch grid, each patch taking the weight of
        the stage's cell that holds it (0 outside the window). Over the stage's own grid (the row sums
        to 1): ``windows[layer].cell_map``.
        """
        if self.windows:
            block = self.windows[layer]
            return block.on_patches(block.cell_map(head, *block.cell_of_patch(row, col)), self.grid)
        s = len(self.special_tokens)
        query = s + row * self.grid[1] + col
        rows = self.weights[layer, :, query, s:] if head is None else self.weights[layer, head, query, s:][None]
        return rows.mean(axis=0).reshape(self.grid)


@falls_back_to_cpu("computing image attention")
def image_attention(model: ImageModel, image: Image.Image) -> ImageAttention:
    """Classify ``image`` and return the attention of every layer and head (none for a model without
    attention maps: ``weights`` is then empty, ``family`` says why)."""
    x = model.pixels(image)  # (1, 3, H, W)
    windows: tuple[WindowBlock, ...] = ()
    with model.lock, torch.inference_mode():
        if model.has_window_attention:  # a Swin: every block's window attention (no domain check)
            logits, blocks = window_blocks(model.model, x)
            attention, features, windows = None, None, tuple(blocks)
        else:
            logits, attention, features = model.forward_with_features(x)  # (1, K), (1, L, heads, T, T), dict | None
    h, w = model.input_size
    seen = image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)  # as model.pixels resizes it
    if features is None:
        out_of_domain, note = domain_verdict(None, model.card, {}, None)
    else:
        features = {k: v.double().cpu().numpy() for k, v in features.items()}
        features[BITS] = png_bits_per_pixel(np.asarray(seen)[None])
        out_of_domain, note = domain_verdict(model.domain, model.card, features, logits.double().cpu().numpy())
    probs = torch.softmax(logits[0].float(), dim=-1).cpu().numpy()
    rows, cols = model.grid
    specials = model.special_tokens
    if attention is None:
        weights, specials = np.zeros((0, 0, 0, 0), dtype=np.float32), ()
    else:
        weights = attention[0].float().cpu().numpy()
        if weights.shape[-1] != len(specials) + rows * cols:
            raise RuntimeError(
                f"{model.name}: {weights.shape[-1]} tokens, expected {len(specials)} special token(s) + "
                f"{rows}x{cols} grid"
            )
    order = np.argsort(-probs, kind="stable")
    return ImageAttention(
        predictions=[(model.classes[i], float(probs[i])) for i in order],
        weights=np.ascontiguousarray(weights, dtype=np.float32),
        grid=(rows, cols),
        image=seen,
        model_name=model.name,
        out_of_domain=out_of_domain,
        domain_note=note,
        special_tokens=tuple(specials),
        family=model.family,
        windows=windows,
    )
