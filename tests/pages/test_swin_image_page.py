"""The image page with a tiny Swin folder: a clicked patch's map per block and head, over its window, drawn
like a ViT's; the layer picker names each block's stage; the note says why class token and rollout are
absent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import SwinConfig, SwinForImageClassification

import attnviz
from attnviz.image import generated_shapes
from attnviz.image.model_families import NO_CLASS_TOKEN, WINDOWED_ROLLOUT
from attnviz.ui import image_page as page
from attnviz.ui.image_page import OVERLAY_CHART
from tests.pages.apptest_helpers import assert_clean, chart, charts, decode, figure, start_clean

LABELS = dict(num_labels=3, id2label={0: "cat", 1: "dog", 2: "fox"}, label2id={"cat": 0, "dog": 1, "fox": 2})
#: A 16 x 16 patch grid in windows of 4 x 4, then 8 x 8 cells of 2 x 2 patches.
SWIN = dict(image_size=32, patch_size=2, embed_dim=16, depths=[2, 2], num_heads=[2, 4], window_size=4)


@pytest.fixture(scope="module")
def swin_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("swin-page")
    SwinForImageClassification(SwinConfig(**SWIN, **LABELS)).save_pretrained(str(folder))
    return folder


def _overlay_z(at) -> np.ndarray:
    (trace,) = [t for t in figure(chart(at, OVERLAY_CHART))["data"] if t.get("type") == "heatmap"]
    z = trace["z"]
    return decode(z).reshape(tuple(int(v) for v in str(z["shape"]).split(","))) if isinstance(z, dict) else np.array(z)


def _title(at) -> str:
    return figure(chart(at, OVERLAY_CHART))["layout"]["title"]["text"]


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption).replace("\\", "").replace("\u200b", "")


def test_swin_draws_a_clicked_patchs_window_per_block_and_head(swin_dir):
    at = start_clean("pages/image.py")
    at.text_input(key=page.MODEL_INPUT).set_value(str(swin_dir))
    at.form_submit_button[0].click().run()
    assert_clean(at)
    model = attnviz.load_image_model(str(swin_dir), device="cpu")
    ia = attnviz.image_attention(model, generated_shapes.demo_samples()[0].image)
    assert at.radio(key=page.MAP).options == ["From a clicked patch"]
    layer = at.selectbox(key=page.LAYER)
    assert layer.options == ["0", "1", "2", "3"]  # the blocks of both stages; the title names each one's stage
    captions = _captions(at)  # the note under the model's name (a view's rerun leaves it out of AppTest's tree)
    assert NO_CLASS_TOKEN in captions and WINDOWED_ROLLOUT in captions
    assert "4 windowed attention blocks in 2 stages (2 to 4 heads)" in captions
    # The comparison names only the maps a Swin has: Integrated Gradients, no Grad-CAM, no rollout.
    assert "Integrated Gradients (pixels, from a black image) says which regions" in captions
    assert "Grad-CAM (" not in captions and "Attention says where" not in captions
    layer.set_value(3).run()  # the bundled model's layer was kept: it is one of these too
    assert_clean(at)
    assert at.selectbox(key=page.HEAD).options == ["mean", "0", "1", "2", "3"]
    # The last block, mean of heads, the centre patch until one is clicked.
    z = _overlay_z(at)
    assert z.shape == (16, 16)
    np.testing.assert_allclose(z, ia.cell_attention(3, None, 8, 8), rtol=1e-5, atol=1e-7)
    captions = _captions(at)
    assert "stage 1's 8 x 8 grid (each cell merges 2 x 2 patches)" in captions and "shifted by 2 cells" in captions
    # A clicked patch, a shifted block of the first stage, one head: the overlay is that row of its window.
    at.session_state[page.PATCH] = (2, 13)
    at.selectbox(key=page.LAYER).set_value(1).run()  # reruns the overlay and the heads' row
    assert_clean(at)
    # The heads' row: the layer's 2 heads and their mean, each the same patch's map.
    (heads,) = [_heatmaps(c) for c in charts(at) if c.key != OVERLAY_CHART and len(_heatmaps(c)) > 1]
    assert len(heads) == 3
    for h, got in zip((0, 1, None), heads, strict=True):
        np.testing.assert_allclose(got, ia.cell_attention(1, h, 2, 13), rtol=1e-5, atol=1e-7)
    at.selectbox(key=page.HEAD).set_value(1).run()
    assert_clean(at)
    expected = ia.cell_attention(1, 1, 2, 13)
    np.testing.assert_allclose(_overlay_z(at), expected, rtol=1e-5, atol=1e-7)
    assert (expected > 0).sum() <= 16 and expected.sum() == pytest.approx(1.0, abs=1e-5)
    assert _title(at) == "From patch (2, 13), layer 1 (stage 0, block 1, shifted), head 1"
    # Head 3 exists in the second stage only: back in the first, the head is the mean again.
    at.selectbox(key=page.LAYER).set_value(3).run()
    at.selectbox(key=page.HEAD).set_value(3).run()
    at.selectbox(key=page.LAYER).set_value(0).run()
    assert_clean(at)
    assert at.selectbox(key=page.HEAD).value == "mean"
    np.testing.assert_allclose(_overlay_z(at), ia.cell_attention(0, None, 2, 13), rtol=1e-5, atol=1e-7)
    at.run()  # a full run: the comparison view too
    assert_clean(at)
    assert any(s.value == "Gradient attributions" for s in at.subheader)  # Integrated Gradients, no rollout
    np.testing.assert_allclose(_overlay_z(at), ia.cell_attention(0, None, 2, 13), rtol=1e-5, atol=1e-7)


def _heatmaps(c) -> list[np.ndarray]:
    out = []
    for t in figure(c)["data"]:
        if t.get("type") == "heatmap":
            z = t["z"]
            shape = tuple(int(v) for v in str(z["shape"]).split(",")) if isinstance(z, dict) else None
            out.append(decode(z).reshape(shape) if shape else np.array(z))
    return out
