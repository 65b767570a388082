"""Swin's window attention as maps over the image (attnviz.image.window_attention), on tiny random Swin and
Swin V2 classifiers saved with save_pretrained and loaded as any folder is.

Independent checks:
- the window layout against torch.roll and transformers' own window_partition, padding included;
- every block's map of every cell and head against the block's attention recomputed here by hand over the
  whole (padded) grid, from its layer norm and query/key weights, its relative position bias table and
  the shifted windows' mask, with no window partition: a cell attends to the cells that fall in its
  window once the grid is rolled by the shift, and a softmax runs over those;
- the blocks the hooks catch against the attention transformers itself returns (the last block of
  each stage).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import SwinConfig, SwinForImageClassification, Swinv2Config, Swinv2ForImageClassification
from transformers.models.swin.modeling_swin import window_partition

import attnviz
from attnviz.image.model_families import (
    CLASS_TOKEN_MAP,
    FROM_PATCH_MAP,
    GRADCAM_MAP,
    IG_MAP,
    NO_CLASS_TOKEN,
    ROLLOUT_MAP,
    WINDOWED_ROLLOUT,
)
from attnviz.image.window_attention import WindowBlock, window_layout

LABELS = dict(num_labels=3, id2label={0: "cat", 1: "dog", 2: "fox"}, label2id={"cat": 0, "dog": 1, "fox": 2})
#: A 16 x 16 patch grid, then 8 x 8: windows of 4 x 4 cells with no padding.
EVEN = dict(image_size=32, patch_size=2, embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=4)
#: A 14 x 14 grid, then 7 x 7: both padded to a multiple of the window (16, 8).
PADDED = dict(image_size=28, patch_size=2, embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=4)


def _save(folder, cls, config_cls, sizes) -> str:
    torch.manual_seed(0)
    model = cls(config_cls(**sizes, **LABELS))
    with torch.no_grad():  # a relative position bias far from zero, so that the check below sees it
        for name, p in model.named_parameters():
            if "relative_position_bias_table" in name:
                p.normal_(0.0, 1.0)
    model.save_pretrained(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def swin_dirs(tmp_path_factory):
    return {
        "even": _save(tmp_path_factory.mktemp("swin-even"), SwinForImageClassification, SwinConfig, EVEN),
        "padded": _save(tmp_path_factory.mktemp("swin-padded"), SwinForImageClassification, SwinConfig, PADDED),
        "v2": _save(tmp_path_factory.mktemp("swinv2"), Swinv2ForImageClassification, Swinv2Config, EVEN),
    }


def _image(side: int = 37) -> Image.Image:
    rng = np.random.default_rng(5)
    return Image.fromarray(rng.integers(0, 256, (side, side + 6, 3), dtype=np.uint8))


@pytest.mark.parametrize(("grid", "window", "shift"), [((8, 8), 4, 0), ((8, 8), 4, 2), ((7, 10), 4, 2), ((6, 5), 3, 1)])
def test_window_layout_is_torch_roll_then_transformers_window_partition(grid, window, shift):
    rows, cols = grid
    h, w = math.ceil(rows / window) * window, math.ceil(cols / window) * window
    index = torch.arange(rows * cols, dtype=torch.float32).view(1, rows, cols, 1)
    padded = torch.nn.functional.pad(index, (0, 0, 0, w - cols, 0, h - rows), value=-1.0)
    rolled = torch.roll(padded, shifts=(-shift, -shift), dims=(1, 2))
    expected = window_partition(rolled, window).view(-1, window * window).long().numpy()
    np.testing.assert_array_equal(window_layout(grid, window, shift), expected)
    # locate() finds each cell where the layout put it.
    block = WindowBlock(0, 1, grid, window, shift, np.zeros((expected.shape[0], 1, window**2, window**2), np.float32))
    for cell in range(rows * cols):
        win, token = block.locate(*divmod(cell, cols))
        assert expected[win, token] == cell


def _hand_attention(layer, hidden: torch.Tensor, grid, window: int, shift: int) -> np.ndarray:
    """One Swin block's attention over the whole padded grid, (heads, cells, cells) of the unpadded grid,
    from its weights: no window partition, no roll of the features."""
    rows, cols = grid
    h, w = math.ceil(rows / window) * window, math.ceil(cols / window) * window
    attn = layer.attention
    heads = attn.num_attention_heads
    x = layer.layernorm_before(hidden[0]).view(rows, cols, -1)
    x = torch.nn.functional.pad(x, (0, 0, 0, w - cols, 0, h - rows)).reshape(h * w, -1)  # zeros after the norm
    q = attn.q_proj(x).view(h * w, heads, -1).transpose(0, 1)
    k = attn.k_proj(x).view(h * w, heads, -1).transpose(0, 1)
    scores = (q @ k.transpose(1, 2)) * q.shape[-1] ** -0.5  # (heads, cells, cells)
    r, c = np.divmod(np.arange(h * w), w)
    i, j = (r - shift) % h, (c - shift) % w  # where the roll moves each cell
    same = (i[:, None] // window == i[None] // window) & (j[:, None] // window == j[None] // window)
    di = np.clip(i[:, None] % window - i[None] % window + window - 1, 0, 2 * window - 2)
    dj = np.clip(j[:, None] % window - j[None] % window + window - 1, 0, 2 * window - 2)
    table = attn.relative_position_bias.relative_position_bias_table  # ((2w-1)^2, heads)
    bias = table[torch.as_tensor(di * (2 * window - 1) + dj)].permute(2, 0, 1)
    if shift:

        def region(v, n):
            return (v >= n - window).astype(int) + (v >= n - shift).astype(int)

        area = region(i, h) * 3 + region(j, w)
        scores = scores + torch.as_tensor(np.where(area[:, None] != area[None], -100.0, 0.0), dtype=scores.dtype)
    scores = (scores + bias).masked_fill(~torch.as_tensor(same), float("-inf"))
    weights = torch.softmax(scores, dim=-1).detach().numpy()
    inside = ((r < rows) & (c < cols)).nonzero()[0]
    return weights[:, inside][:, :, inside], weights[:, inside][:, :, ~np.isin(np.arange(h * w), inside)].sum(-1)


@pytest.mark.parametrize("which", ["even", "padded"])
def test_every_blocks_maps_equal_the_attention_recomputed_by_hand(swin_dirs, which):
    model = attnviz.load_image_model(swin_dirs[which], device="cpu")
    inputs = {}
    layers = [blk for stage in model.model.swin.encoder.layers for blk in stage.blocks]
    hooks = [
        layer.register_forward_pre_hook(lambda mod, args, n=n: inputs.__setitem__(n, args[0].detach()))
        for n, layer in enumerate(layers)
    ]
    try:
        ia = attnviz.image_attention(model, _image())
    finally:
        for hook in hooks:
            hook.remove()
    sizes = PADDED if which == "padded" else EVEN
    side = sizes["image_size"] // sizes["patch_size"]
    assert ia.grid == (side, side) and model.grid == (side, side)
    assert [(b.stage, b.block, b.shift) for b in ia.windows] == [(0, 0, 0), (0, 1, 2), (1, 0, 0), (1, 1, 2)]
    assert [b.grid for b in ia.windows] == [(side, side)] * 2 + [(math.ceil(side / 2),) * 2] * 2
    assert ia.map_layers == model.n_layers == 4 and [ia.heads_in(n) for n in range(4)] == list(model.window_heads)
    for n, block in enumerate(ia.windows):
        with torch.no_grad():
            hand, lost = _hand_attention(layers[n], inputs[n], block.grid, block.window, block.shift)
        rows, cols = block.grid
        for head in range(block.heads):
            for cell in range(rows * cols):
                got = block.cell_map(head, *divmod(cell, cols))
                np.testing.assert_allclose(got.ravel(), hand[head, cell], atol=2e-6, err_msg=f"block {n} cell {cell}")
                assert block.padding_share(head, *divmod(cell, cols)) == pytest.approx(lost[head, cell], abs=2e-6)
                assert got.sum() + lost[head, cell] == pytest.approx(1.0, abs=1e-5)
        if which == "even":  # no padding: every map sums to 1 over the image
            assert lost.max() == 0.0
        elif block.shift == 0:  # the padding cells are zeros after the norm and not masked: they take weight
            assert lost.max() > 1e-3


@pytest.mark.parametrize("which", ["even", "padded", "v2"])
def test_rows_sum_to_one_over_the_window_and_maps_stay_inside_it(swin_dirs, which):
    model = attnviz.load_image_model(swin_dirs[which], device="cpu")
    ia = attnviz.image_attention(model, _image())
    for block in ia.windows:
        np.testing.assert_allclose(block.weights.sum(-1), 1.0, atol=1e-5)
        layout = block.layout
        rows, cols = block.grid
        for cell in range(0, rows * cols, 5):
            r, c = divmod(cell, cols)
            window, _ = block.locate(r, c)
            mean = block.cell_map(None, r, c)
            outside = np.ones(rows * cols, bool)
            outside[layout[window][layout[window] >= 0]] = False
            assert (mean.ravel()[outside] == 0).all() and outside.sum() >= rows * cols - block.window**2
            assert mean.sum() + block.padding_share(None, r, c) == pytest.approx(1.0, abs=1e-5)
            np.testing.assert_allclose(
                mean, np.mean([block.cell_map(h, r, c) for h in range(block.heads)], axis=0), atol=1e-7
            )


@pytest.mark.parametrize("which", ["even", "v2"])
def test_hooks_catch_what_transformers_returns_for_each_stages_last_block(swin_dirs, which):
    model = attnviz.load_image_model(swin_dirs[which], device="cpu")
    ia = attnviz.image_attention(model, _image())
    with torch.no_grad():
        out = model.model(pixel_values=model.pixels(_image()), output_attentions=True)
    last = [b for b in ia.windows if b.block == 1]
    assert len(out.attentions) == len(last) == 2
    for block, returned in zip(last, out.attentions, strict=True):
        np.testing.assert_allclose(block.weights, returned.numpy(), rtol=1e-5, atol=1e-7)


def test_a_patch_map_is_its_stage_cells_map_over_the_patches(swin_dirs):
    """The page's map: the query is the stage's cell holding the patch, each patch shows its cell's weight."""
    model = attnviz.load_image_model(swin_dirs["padded"], device="cpu")
    ia = attnviz.image_attention(model, _image())
    rows, cols = ia.grid  # 14 x 14 patches; stage 1 is 7 x 7 cells of 2 x 2 patches
    for layer in range(ia.map_layers):
        block = ia.windows[layer]
        k = 2**block.stage
        for head in (None, 1):
            for patch in ((0, 0), (13, 13), (5, 9)):
                got = ia.cell_attention(layer, head, *patch)
                cell = block.cell_map(head, patch[0] // k, patch[1] // k)
                assert got.shape == (rows, cols)
                np.testing.assert_array_equal(got, np.kron(cell, np.ones((k, k), np.float32))[:rows, :cols])


@pytest.mark.parametrize("which", ["even", "v2"])
def test_swin_family_offers_a_clicked_patch_and_says_why_class_token_and_rollout_are_absent(swin_dirs, which):
    model = attnviz.load_image_model(swin_dirs[which], device="cpu")
    family = model.family
    assert family.kind == "swin" and family.has_window_attention and not family.has_attention
    assert set(family.supported_maps) == {FROM_PATCH_MAP, IG_MAP}
    absent = dict(family.absent_maps)
    assert absent[CLASS_TOKEN_MAP] == NO_CLASS_TOKEN and absent[ROLLOUT_MAP] == WINDOWED_ROLLOUT
    assert set(absent) == {CLASS_TOKEN_MAP, ROLLOUT_MAP, GRADCAM_MAP}
    assert family.special_tokens == () and not model.has_attention and model.has_window_attention
    ia = attnviz.image_attention(model, _image())
    assert ia.weights.shape == (0, 0, 0, 0) and ia.row_labels == [] and ia.has_window_attention


def test_a_block_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="makes"):
        WindowBlock(0, 0, (8, 8), 4, 2, np.zeros((3, 2, 16, 16), np.float32))
    with pytest.raises(IndexError):
        WindowBlock(0, 0, (8, 8), 4, 2, np.zeros((4, 2, 16, 16), np.float32)).locate(8, 0)
