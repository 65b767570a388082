"""The image page with a Hugging Face CNN, a DeiT and a Swin folder: the maps offered, the Grad-CAM layer
picker, and the note saying which maps are absent and why (a Swin's maps in detail: test_swin_image_page.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import (
    ConvNextImageProcessor,
    DeiTConfig,
    DeiTForImageClassification,
    ResNetConfig,
    ResNetForImageClassification,
    SwinConfig,
    SwinForImageClassification,
)

import attnviz
from attnviz.image import generated_shapes
from attnviz.image.attribution import gradcam
from attnviz.image.model_families import NO_ATTENTION_CNN, NO_CLASS_TOKEN, WINDOWED_ROLLOUT
from attnviz.ui import image_page as page
from attnviz.ui.image_families import CAM_LAYER
from attnviz.ui.image_page import OVERLAY_CHART
from tests.pages.apptest_helpers import assert_clean, chart, decode, figure, start_clean

LABELS = dict(num_labels=3, id2label={0: "cat", 1: "dog", 2: "fox"}, label2id={"cat": 0, "dog": 1, "fox": 2})


@pytest.fixture(scope="module")
def resnet_dir(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("resnet")
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **LABELS)
    ResNetForImageClassification(config).save_pretrained(str(folder))
    ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(str(folder))
    return folder


def _load(at, folder):
    at.text_input(key=page.MODEL_INPUT).set_value(str(folder))
    at.form_submit_button[0].click().run()  # the form's Load button
    assert_clean(at)


def _overlay_z(at) -> np.ndarray:
    (trace,) = [t for t in figure(chart(at, OVERLAY_CHART))["data"] if t.get("type") == "heatmap"]
    z = trace["z"]
    return decode(z).reshape(tuple(int(v) for v in str(z["shape"]).split(","))) if isinstance(z, dict) else np.array(z)


def _captions(at) -> str:
    """Every caption, with md_escape's backslashes and zero-width spaces taken out."""
    return " ".join(c.value for c in at.caption).replace("\\", "").replace("\u200b", "")


def test_a_cnn_offers_grad_cam_on_a_chosen_layer_and_says_why_attention_is_absent(resnet_dir):
    at = start_clean("pages/image.py")
    _load(at, resnet_dir)
    model = attnviz.load_image_model(str(resnet_dir), device="cpu")
    layers = list(model.family.conv_layers)
    assert at.radio(key=page.MAP).options == ["Grad-CAM"]  # Integrated Gradients is drawn below
    picker = at.selectbox(key=CAM_LAYER)
    assert picker.options == [
        f"{name} ({r} x {c})" for name, (r, c) in zip(layers, model.family.conv_grids, strict=True)
    ]
    assert picker.value == model.family.default_layer  # the main path's last, not the shortcut's projection
    assert "absent because" in _captions(at) and NO_ATTENTION_CNN in _captions(at)
    assert not [s for s in at.subheader if s.value.startswith("All heads")]
    image = generated_shapes.demo_samples()[0].image
    target = at.selectbox(key=page.TARGET).value
    np.testing.assert_allclose(_overlay_z(at), gradcam(model, image, target).layer_map, rtol=1e-4, atol=1e-6)
    # Another layer: the overlay is Grad-CAM on it, at its own grid.
    middle = layers[len(layers) // 2]
    at.selectbox(key=CAM_LAYER).set_value(middle).run()
    assert_clean(at)
    expected = gradcam(model, image, target, layer=middle).layer_map
    assert _overlay_z(at).shape == expected.shape
    np.testing.assert_allclose(_overlay_z(at), expected, rtol=1e-4, atol=1e-6)
    assert f"on {middle}" in _captions(at)


def test_deit_and_swin_pages_draw_what_they_support(tmp_path):
    torch.manual_seed(0)
    vit = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    DeiTForImageClassification(DeiTConfig(intermediate_size=37, **vit, **LABELS)).save_pretrained(str(tmp_path / "d"))
    swin = SwinConfig(
        image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4, **LABELS
    )
    SwinForImageClassification(swin).save_pretrained(str(tmp_path / "s"))
    at = start_clean("pages/image.py")
    _load(at, tmp_path / "d")
    assert at.radio(key=page.MAP).options == ["Class token", "Rollout", "From a clicked patch"]
    assert _overlay_z(at).shape == (4, 4)  # the class token's map over the patches, distillation token left out
    assert "No Grad-CAM for this model: its only convolution is the patch embedding" in _captions(at)
    at.radio(key=page.MAP).set_value("Rollout").run()  # reruns the map views alone (attnviz.ui.image_page.RERUNS)
    assert_clean(at)
    at.run()  # AppTest's tree then holds those views only; a full run brings back the sidebar's model picker
    _load(at, tmp_path / "s")  # a clicked patch's window (tests/pages/test_swin_image_page.py)
    assert at.radio(key=page.MAP).options == ["From a clicked patch"]
    assert NO_CLASS_TOKEN in _captions(at) and WINDOWED_ROLLOUT in _captions(at)
    assert _overlay_z(at).shape == (8, 8)
    assert [s for s in at.subheader if s.value.startswith("All heads")]


def test_home_page_describes_the_loaded_image_models_grid_by_its_family(resnet_dir, tmp_path):
    """The home table's image row follows the model: a CNN has no attention tokens, a DeiT two special tokens,
    a Swin attends within windows."""
    torch.manual_seed(0)
    vit = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)
    DeiTForImageClassification(DeiTConfig(intermediate_size=37, **vit, **LABELS)).save_pretrained(str(tmp_path / "d"))
    swin = SwinConfig(
        image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4, **LABELS
    )
    SwinForImageClassification(swin).save_pretrained(str(tmp_path / "s"))
    at = start_clean("pages/image.py")
    rows = {}
    for name, folder in (("resnet", resnet_dir), ("deit", tmp_path / "d"), ("swin", tmp_path / "s")):
        _load(at, folder)
        at.switch_page("pages/home.py").run()
        assert_clean(at)
        rows[name] = at.dataframe[0].value.iloc[1]
        at.switch_page("pages/image.py").run()
    resnet = attnviz.load_image_model(str(resnet_dir), device="cpu")
    rows_, cols_ = resnet.grid
    assert rows["resnet"]["status"].endswith(f"({rows_}x{cols_} output of the last convolution, no attention maps)")
    assert rows["resnet"]["max tokens"] is None or np.isnan(rows["resnet"]["max tokens"])
    assert rows["deit"]["status"].endswith("(4x4 grid + class and distillation tokens)")
    assert rows["deit"]["max tokens"] == 2 + 16
    assert rows["swin"]["status"].endswith("(8x8 patches, attention within 4x4 windows)")
    assert rows["swin"]["max tokens"] == 16
