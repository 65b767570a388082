"""Hugging Face image classifiers of every family, from tiny random configs saved with save_pretrained:
predictions, which maps each supports and why the others are absent, attention rows, and Grad-CAM on a
chosen layer against captum's LayerGradCam run here directly.

Hybrids: transformers 5 has no image classifier that is convolutional and returns one square attention
over a class token and the grid (MobileViT's attention is not returned, PVT's and LeViT's are not square):
the hybrid case is attnviz's own CNN-attention model (``random_model``), checked here too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam
from PIL import Image
from transformers import (
    BeitConfig,
    BeitForImageClassification,
    ConvNextConfig,
    ConvNextForImageClassification,
    ConvNextImageProcessor,
    DeiTConfig,
    DeiTForImageClassification,
    EfficientNetConfig,
    EfficientNetForImageClassification,
    RegNetConfig,
    RegNetForImageClassification,
    ResNetConfig,
    ResNetForImageClassification,
    SwinConfig,
    SwinForImageClassification,
    ViTConfig,
    ViTForImageClassification,
)

import attnviz
from attnviz.errors import InputError
from attnviz.image.attribution import gradcam, integrated_gradients
from attnviz.image.explanation_scores import score_image_explanations
from attnviz.image.model_families import (
    ALL_MAPS,
    ATTENTION_MAPS,
    CLASS_TOKEN_MAP,
    FROM_PATCH_MAP,
    GRADCAM_MAP,
    IG_MAP,
    NO_ATTENTION_CNN,
    NO_CLASS_TOKEN,
    PATCH_EMBEDDING_ONLY,
    ROLLOUT_MAP,
    WINDOWED_ROLLOUT,
)

LABELS = dict(num_labels=3, id2label={0: "cat", 1: "dog", 2: "fox"}, label2id={"cat": 0, "dog": 1, "fox": 2})
VIT_SIZES = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4)

#: family -> (model class, config, kind, special tokens)
FAMILIES = {
    "resnet": (
        ResNetForImageClassification,
        lambda: ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", **LABELS),
        "cnn",
        (),
    ),
    "convnext": (
        ConvNextForImageClassification,
        lambda: ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, **LABELS),
        "cnn",
        (),
    ),
    "efficientnet": (
        EfficientNetForImageClassification,
        lambda: EfficientNetConfig(
            image_size=32, width_coefficient=0.1, depth_coefficient=0.1, hidden_dim=128, **LABELS
        ),
        "cnn",
        (),
    ),
    "regnet": (
        RegNetForImageClassification,
        lambda: RegNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], groups_width=8, **LABELS),
        "cnn",
        (),
    ),
    "vit": (
        ViTForImageClassification,
        lambda: ViTConfig(intermediate_size=37, **VIT_SIZES, **LABELS),
        "vit",
        ("[CLS]",),
    ),
    "deit": (
        DeiTForImageClassification,
        lambda: DeiTConfig(intermediate_size=37, **VIT_SIZES, **LABELS),
        "vit",
        ("[CLS]", "[DIST]"),
    ),
    "beit": (
        BeitForImageClassification,
        lambda: BeitConfig(intermediate_size=37, **VIT_SIZES, **LABELS),
        "vit",
        ("[CLS]",),
    ),
    "swin": (
        SwinForImageClassification,
        lambda: SwinConfig(
            image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4, **LABELS
        ),
        "swin",
        (),
    ),
}
CNNS = ("resnet", "convnext", "efficientnet", "regnet")


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory):
    """Each family saved once: weights (safetensors) and config; the CNNs also an image processor at 32 px
    (they have no image_size in their config, so the loader reads the processor's)."""
    dirs = {}
    for name, (cls, config, _, _) in FAMILIES.items():
        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp(name)
        cls(config()).save_pretrained(str(folder))
        if name in ("resnet", "convnext", "regnet"):
            ConvNextImageProcessor(size={"shortest_edge": 32}).save_pretrained(str(folder))
        dirs[name] = folder
    return dirs


@pytest.fixture(scope="module")
def models(family_dirs):
    return {name: attnviz.load_image_model(str(folder), device="cpu") for name, folder in family_dirs.items()}


def _image() -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_each_family_loads_predicts_and_says_which_maps_it_supports(models, name):
    model = models[name]
    _, _, kind, specials = FAMILIES[name]
    family = model.family
    assert model.kind == family.kind == kind and family.architecture == name
    assert model.input_size == (32, 32)
    ia = attnviz.image_attention(model, _image())
    probs = [p for _, p in ia.predictions]
    assert sorted(label for label, _ in ia.predictions) == ["cat", "dog", "fox"]
    assert sum(probs) == pytest.approx(1.0, abs=1e-5) and probs == sorted(probs, reverse=True)
    # Every map is either supported or absent with a reason, never both.
    absent = dict(family.absent_maps)
    assert set(family.supported_maps) | set(absent) == set(ALL_MAPS)
    assert not set(family.supported_maps) & set(absent) and all(absent.values())
    assert IG_MAP in family.supported_maps
    note = family.note()
    words = {"cnn": "convolutional", "vit": "ViT-style attention", "swin": "Swin (windowed attention)"}[kind]
    assert note.startswith(f"This {words} model ({name}) supports ")
    for map_name, why in absent.items():
        assert map_name in note and why in note
    if kind == "cnn":
        assert set(absent) == set(ATTENTION_MAPS) and absent[CLASS_TOKEN_MAP] == NO_ATTENTION_CNN
        assert family.has_gradcam and len(family.conv_layers) >= 3 and model.has_conv
        assert model.grid == family.conv_grids[-1] and ia.weights.shape == (0, 0, 0, 0)
        assert not ia.has_attention and ia.special_tokens == () and model.n_layers == 0
    elif kind == "vit":
        assert set(absent) == {GRADCAM_MAP} and absent[GRADCAM_MAP] == PATCH_EMBEDDING_ONLY
        assert family.conv_layers == () and not model.has_conv
        assert ia.special_tokens == specials and model.grid == (4, 4)
        t = len(specials) + 16
        assert ia.weights.shape == (2, 4, t, t)
        np.testing.assert_allclose(ia.weights.sum(-1), 1.0, atol=1e-5)
        assert ia.row_labels[: len(specials)] == list(specials) and ia.row_labels[len(specials)] == "cell (0, 0)"
        # The class token's map reads the columns after every special token.
        np.testing.assert_allclose(ia.cls_attention(1, 2).ravel(), ia.weights[1, 2, 0, len(specials) :], rtol=1e-6)
        np.testing.assert_allclose(
            ia.cell_attention(0, 1, 1, 2).ravel(), ia.weights[0, 1, len(specials) + 6, len(specials) :], rtol=1e-6
        )
    else:  # swin: a clicked patch's map over its window (tests/image/test_swin_window_attention.py)
        assert set(absent) == {CLASS_TOKEN_MAP, ROLLOUT_MAP, GRADCAM_MAP} and absent[CLASS_TOKEN_MAP] == NO_CLASS_TOKEN
        assert absent[ROLLOUT_MAP] == WINDOWED_ROLLOUT and FROM_PATCH_MAP in family.supported_maps
        assert ia.weights.shape == (0, 0, 0, 0) and not model.has_conv
        assert [b.grid for b in ia.windows] == [(8, 8), (4, 4)] and model.grid == (8, 8)
        np.testing.assert_allclose(ia.cell_attention(1, 1, 7, 7).sum(), 4.0, rtol=1e-5)  # 2 x 2 patches a cell


def test_deit_rollout_and_class_token_skip_the_distillation_token(models):
    """DeiT: 2 special tokens read from the model type; the class token's map is row 0, columns 2 onwards."""
    from attnviz.maths.attention_rollout import rollout
    from attnviz.ui.image_maps import rollout_map

    ia = attnviz.image_attention(models["deit"], _image())
    np.testing.assert_allclose(rollout_map(ia).ravel(), rollout(ia.weights)[0, 2:], rtol=1e-6)
    with torch.no_grad():
        out = models["deit"].model(pixel_values=models["deit"].pixels(_image()), output_attentions=True)
    np.testing.assert_allclose(ia.weights[-1, 0], out.attentions[-1][0, 0].numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", CNNS)
def test_gradcam_on_a_chosen_middle_layer_equals_captum_directly(models, name):
    model = models[name]
    layers = model.family.conv_layers
    middle = layers[len(layers) // 2]
    cam = gradcam(model, _image(), "dog", layer=middle)
    x = model.pixels(_image())
    direct = LayerGradCam(lambda t: model.model(pixel_values=t).logits, model.model.get_submodule(middle))
    expected = direct.attribute(x, target=1, relu_attributions=True)[0, 0].detach().numpy()
    assert cam.layer == middle and cam.layer_map.shape == model.family.layer_grid(middle) == expected.shape
    np.testing.assert_allclose(cam.layer_map, expected, rtol=1e-5, atol=1e-7)
    assert cam.grid.shape == model.grid and cam.pixels.shape == (32, 32) and (cam.pixels >= 0).all()
    # The default is the last layer, and another layer gives another map.
    last = gradcam(model, _image(), "dog")
    assert last.layer == model.family.default_layer and "shortcut" not in last.layer
    assert last.layer == [n for n in layers if "shortcut" not in n][-1]
    assert last.layer_map.shape != cam.layer_map.shape or not np.allclose(last.layer_map, cam.layer_map)


def test_gradcam_refuses_a_layer_the_model_lacks_and_a_model_without_convolutions(models):
    with pytest.raises(InputError, match="not a convolution layer"):
        gradcam(models["resnet"], _image(), "cat", layer="classifier.1")
    with pytest.raises(InputError, match="patch embedding"):
        gradcam(models["vit"], _image(), "cat")


def test_bundled_family_is_a_hybrid_with_every_map(random_model):
    family = random_model.family
    assert family.kind == "hybrid" and set(family.supported_maps) == set(ALL_MAPS) and not family.absent_maps
    last = family.conv_layers[-1]
    assert last == f"stem.{len(random_model.model.stem) - 1}"
    assert random_model.model.get_submodule(last) is random_model.model.last_conv
    assert family.layer_grid(last) == random_model.grid


def test_integrated_gradients_and_the_scoreboard_work_without_attention(models):
    """A CNN: IG pools onto the last conv grid; the scoreboard leaves attention out and says why."""
    model = models["resnet"]
    ig = integrated_gradients(model, _image(), "fox", n_steps=16)
    assert ig.grid.shape == model.grid
    np.testing.assert_allclose(ig.grid.sum(), ig.pixels.sum(), rtol=1e-4)
    scores = score_image_explanations(model, _image(), steps=4, random_orders=2)
    assert NO_ATTENTION_CNN in " ".join(scores.notes)
    methods = scores.table["method"].tolist()
    assert "Grad-CAM" in methods and "rollout" not in methods and "class-token attention (last layer)" not in methods
