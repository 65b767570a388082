"""Swin's windowed attention as maps over the image: where one cell attends, per block and head.

How a Swin (and Swin V2) block attends, as transformers' ``modeling_swin.py`` runs it
(``SwinLayer.forward``, ``window_partition``, ``get_attn_mask``):

* Each stage works on its own grid of cells. Stage 0's grid is the patch grid; patch merging
  halves it between stages (rounding up: an odd side is padded by one), and cell (r, c) of stage
  s + 1 merges cells 2r..2r+1 x 2c..2c+1 of stage s, so it covers patches ``r * 2**(s+1)`` onwards.
* A block pads its grid on the bottom and right to a multiple of its window side ``w`` (the
  config's ``window_size``, cut to the grid's smaller side when the grid is no larger than a
  window; such a block is never shifted).
* Every other block (the odd ones of a stage) is shifted by ``s = w // 2``: the padded grid is rolled
  up and left (``torch.roll(shifts=(-s, -s))``), so that position (i, j) of the rolled grid holds
  cell ((i + s) mod H, (j + s) mod W) of the padded H x W grid.
* The (rolled) grid is cut into w x w windows, numbered row by row, and each window's cells are
  its tokens, row by row. Attention runs inside each window only: transformers hands back one
  block's weights as ``(windows, heads, w*w, w*w)`` (per image). A shifted block's mask adds -100
  between cells that the roll brought together from opposite edges, so those pairs get almost no
  weight; the padding cells are zeros and are not masked, so a row's weight on them is lost from
  the image's map.

:func:`window_layout` says which cell each window's token is; :meth:`WindowBlock.cell_map` takes the
row of the window that holds a cell and scatters it back to the cells' own (unshifted) places, zero
outside the window. Each row sums to 1 over its window; over the image it sums to 1 less the weight
on padding.

transformers' ``output_attentions`` gives only the last block of each stage (it records the stage's
output), so :func:`window_blocks` hooks every block instead.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

#: A block's module name inside the model: ``...encoder.layers.<stage>.blocks.<block>``.
BLOCK_NAME = re.compile(r"(?:^|\.)encoder\.layers\.(\d+)\.blocks\.(\d+)$")


def window_layout(grid: tuple[int, int], window: int, shift: int) -> np.ndarray:
    """Which cell each window's token is: ``(windows, window * window)`` int, the index ``r * cols + c``
    of cell (r, c) of the ``grid`` = (rows, cols), or -1 for a padding cell.

    Windows are numbered row by row over the padded, rolled grid, and tokens row by row inside a
    window (transformers' ``window_partition`` after ``torch.roll(shifts=(-shift, -shift))``).
    """
    rows, cols = grid
    if window < 1 or not 0 <= shift < window:
        raise ValueError(f"window {window} with shift {shift}: the shift must be at least 0 and less than the window")
    h, w = math.ceil(rows / window) * window, math.ceil(cols / window) * window  # padded
    r, c = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    r, c = (r + shift) % h, (c + shift) % w  # the rolled grid's position (i, j) holds cell (i + s, j + s)
    index = np.where((r < rows) & (c < cols), r * cols + c, -1)
    tiles = index.reshape(h // window, window, w // window, window).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(tiles.reshape(-1, window * window))


@dataclass(frozen=True)
class WindowBlock:
    """One Swin block's attention, per window: where each cell of its stage's grid attends."""

    stage: int
    block: int  # within its stage
    grid: tuple[int, int]  # the stage's grid of cells (rows, cols), before padding
    window: int  # the window's side in cells, as the block ran it
    shift: int  # the cyclic shift in cells (0: an unshifted block)
    weights: np.ndarray  # float32 (windows, heads, window * window, window * window); rows sum to 1

    def __post_init__(self) -> None:
        n = math.ceil(self.grid[0] / self.window) * math.ceil(self.grid[1] / self.window)
        tokens = self.window * self.window
        if self.weights.ndim != 4 or self.weights.shape[0] != n or self.weights.shape[2:] != (tokens, tokens):
            raise ValueError(
                f"stage {self.stage} block {self.block}: attention of shape {tuple(self.weights.shape)}, but a "
                f"{self.grid[0]} x {self.grid[1]} grid in windows of {self.window} x {self.window} cells makes "
                f"({n}, heads, {tokens}, {tokens})"
            )

    @property
    def heads(self) -> int:
        return int(self.weights.shape[1])

    @property
    def scale(self) -> int:
        """Patches per cell side: each patch merging doubles it."""
        return 2**self.stage

    @property
    def layout(self) -> np.ndarray:
        """:func:`window_layout` of this block."""
        return window_layout(self.grid, self.window, self.shift)

    def locate(self, row: int, col: int) -> tuple[int, int]:
        """(window, token within it) of the stage's cell (row, col)."""
        rows, cols = self.grid
        if not (0 <= row < rows and 0 <= col < cols):
            raise IndexError(f"cell ({row}, {col}) is outside the {rows} x {cols} grid of stage {self.stage}")
        h, w = math.ceil(rows / self.window) * self.window, math.ceil(cols / self.window) * self.window
        i, j = (row - self.shift) % h, (col - self.shift) % w  # where the roll put it
        n = self.window
        return (i // n) * (w // n) + j // n, (i % n) * n + j % n

    def _row(self, head: int | None, row: int, col: int) -> tuple[np.ndarray, np.ndarray]:
        """(the weights of cell (row, col)'s row in its window, ``(window * window,)``, averaged over heads when
        ``head`` is None; which cell each of its tokens is, -1 for padding)."""
        window, token = self.locate(row, col)
        weights = self.weights[window, :, token] if head is None else self.weights[window, head, token][None]
        return weights.mean(axis=0), self.layout[window]

    def cell_map(self, head: int | None, row: int, col: int) -> np.ndarray:
        """Where the stage's cell (row, col) attends, over the stage's grid: ``(rows, cols)`` float32, zero
        outside its window. ``head=None`` averages the heads."""
        row_weights, cells = self._row(head, row, col)
        out = np.zeros(self.grid[0] * self.grid[1], dtype=np.float32)
        kept = cells >= 0
        out[cells[kept]] = row_weights[kept]
        return out.reshape(self.grid)

    def padding_share(self, head: int | None, row: int, col: int) -> float:
        """The weight the cell (row, col) puts on padding cells (lost from :meth:`cell_map`)."""
        row_weights, cells = self._row(head, row, col)
        return float(row_weights[cells < 0].sum())

    def on_patches(self, stage_map: np.ndarray, patches: tuple[int, int]) -> np.ndarray:
        """A map over the stage's grid drawn over the ``patches`` grid (stage 0's): each patch takes the value
        of the cell that holds it."""
        k = self.scale
        return np.repeat(np.repeat(stage_map, k, axis=0), k, axis=1)[: patches[0], : patches[1]]

    def cell_of_patch(self, row: int, col: int) -> tuple[int, int]:
        """The stage's cell that holds patch (row, col) of stage 0's grid."""
        return row // self.scale, col // self.scale


def _blocks(model: torch.nn.Module) -> list[tuple[int, int, torch.nn.Module]]:
    """(stage, block, module) of every Swin block, in the order the model runs them."""
    found = []
    for name, module in model.named_modules():
        match = BLOCK_NAME.search(name)
        if match and hasattr(module, "window_size") and hasattr(module, "shift_size"):
            found.append((int(match[1]), int(match[2]), module))
    return sorted(found, key=lambda t: t[:2])


def window_blocks(model: torch.nn.Module, pixel_values: torch.Tensor) -> tuple[torch.Tensor, list[WindowBlock]]:
    """One forward pass of a Hugging Face Swin or Swin V2 classifier on one image ``(1, 3, H, W)``: its
    logits ``(1, K)`` and every block's window attention (the model must run eager attention).

    Each block's grid comes from its input, its window and shift from the block as it ran (a
    block whose grid is no larger than a window cuts its window and drops its shift).

    Raises:
        ValueError: the model has no Swin blocks, or a block returned no attention or one of another shape.
    """
    if pixel_values.shape[0] != 1:
        raise ValueError(f"one image at a time, not {pixel_values.shape[0]}")
    blocks = _blocks(model)
    if not blocks:
        raise ValueError("the model has no Swin blocks (encoder.layers.<stage>.blocks.<block>)")
    seen: dict[tuple[int, int], dict] = {}
    hooks = []
    for stage, block, module in blocks:

        def before(_mod, args, kwargs, key=(stage, block)):
            dims = args[1] if len(args) > 1 else kwargs.get("input_dimensions")
            seen[key] = {"grid": (int(dims[0]), int(dims[1]))}

        def after(mod, _args, _kwargs, out, key=(stage, block)):
            attention = out[1] if isinstance(out, tuple) and len(out) > 1 else None
            seen[key].update(window=int(mod.window_size), shift=int(mod.shift_size), attention=attention)

        hooks.append(module.register_forward_pre_hook(before, with_kwargs=True))
        hooks.append(module.register_forward_hook(after, with_kwargs=True))
    try:
        logits = model(pixel_values=pixel_values, output_attentions=True).logits
    finally:
        for h in hooks:
            h.remove()
    out = []
    for stage, block, _ in blocks:
        got = seen.get((stage, block))
        if got is None or not isinstance(got.get("attention"), torch.Tensor):
            raise ValueError(f"stage {stage} block {block} returned no attention weights")
        out.append(
            WindowBlock(
                stage=stage,
                block=block,
                grid=got["grid"],
                window=got["window"],
                shift=got["shift"],
                weights=np.ascontiguousarray(got["attention"].detach().float().cpu().numpy(), dtype=np.float32),
            )
        )
    return logits, out
