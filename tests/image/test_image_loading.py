"""The CNN-attention model, its loader, and image_attention on it and on a tiny ViT."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import attnviz
from attnviz.errors import ModelLoadError
from attnviz.image import generated_shapes
from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
from attnviz.image.model_files import CARD_FILE, WEIGHTS_FILE


def test_forward_shapes_and_softmax_rows():
    config = CnnAttentionConfig(blocks=3, heads=4)
    model = CnnAttention(config).eval()
    x = torch.rand(2, 3, 64, 64)
    logits, attn = model(x, return_attention=True)
    assert logits.shape == (2, 8)
    assert attn.shape == (2, 3, 4, 65, 65)  # (B, L, H, T, T), T = 1 + 8*8
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3, 4, 65))
    assert torch.equal(model(x), logits)


def test_attention_weights_are_the_softmax_of_scaled_scores():
    """The weights returned are exactly softmax(q kᵀ / √d) of the first block, computed independently."""
    torch.manual_seed(1)
    model = CnnAttention(CnnAttentionConfig()).eval()
    x = torch.rand(1, 3, 64, 64)
    _, attn = model(x, return_attention=True)
    with torch.no_grad():
        t = model.stem((x - model.mean) / model.std).flatten(2).transpose(1, 2)
        t = torch.cat([model.cls_token, t], dim=1) + model.positions
        h = model.blocks[0].norm1(t)
        w = model.blocks[0].attn.qkv.weight
        b = model.blocks[0].attn.qkv.bias
        q, k = h @ w[:64].T + b[:64], h @ w[64:128].T + b[64:128]
        q, k = q.view(1, 65, 4, 16).transpose(1, 2), k.view(1, 65, 4, 16).transpose(1, 2)
        expected = torch.softmax(q @ k.transpose(-1, -2) / 4.0, dim=-1)
    torch.testing.assert_close(attn[0, 0], expected[0], atol=1e-6, rtol=1e-5)


def test_config_is_checked():
    with pytest.raises(ValueError):
        CnnAttentionConfig(dim=30, heads=4)
    with pytest.raises(ValueError):
        CnnAttentionConfig(image_size=96, grid=8)


def test_loaded_model_matches_the_saved_one(random_model, random_model_dir):
    card = json.loads((random_model_dir / CARD_FILE).read_text())
    assert random_model.kind == "cnn-attention"
    assert random_model.classes == generated_shapes.CLASSES
    assert random_model.grid == (8, 8) and random_model.input_size == (64, 64)
    assert (random_model.n_layers, random_model.n_heads) == (2, 4)
    assert len(card["weights_sha256"]) == 64


def test_image_attention_container(random_model):
    sample = generated_shapes.shape_sample(0, 0)
    ia = attnviz.image_attention(random_model, sample.image)
    assert ia.weights.dtype == np.float32 and ia.weights.shape == (2, 4, 65, 65)
    np.testing.assert_allclose(ia.weights.sum(-1), 1.0, atol=1e-5)
    assert ia.grid == (8, 8) and ia.image.size == (64, 64)
    probs = [p for _, p in ia.predictions]
    assert sorted(probs, reverse=True) == probs and sum(probs) == pytest.approx(1, abs=1e-5)
    assert {label for label, _ in ia.predictions} == set(generated_shapes.CLASSES)
    # Accessors: class-token row and a cell's row, reshaped to the grid.
    np.testing.assert_array_equal(ia.cls_attention(1, 2), ia.weights[1, 2, 0, 1:].reshape(8, 8))
    np.testing.assert_allclose(ia.cls_attention(0), ia.weights[0, :, 0, 1:].mean(0).reshape(8, 8), rtol=1e-6)
    np.testing.assert_array_equal(ia.cell_attention(1, 3, 2, 5), ia.weights[1, 3, 1 + 2 * 8 + 5, 1:].reshape(8, 8))


def test_any_image_size_is_resized_to_the_input(random_model):
    from PIL import Image

    ia = attnviz.image_attention(random_model, Image.new("RGB", (640, 200), (10, 200, 30)))
    assert ia.image.size == (64, 64) and ia.weights.shape[-1] == 65


def test_damaged_weights_are_refused(random_model_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(random_model_dir, copy)
    data = bytearray((copy / WEIGHTS_FILE).read_bytes())
    data[-10] ^= 0xFF
    (copy / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="SHA-256"):
        attnviz.load_image_model(str(copy), device="cpu")


def test_missing_files_and_unknown_names_are_refused(tmp_path):
    (tmp_path / CARD_FILE).write_text("{}")
    with pytest.raises(ModelLoadError, match="missing"):
        attnviz.load_image_model(str(tmp_path), device="cpu")
    with pytest.raises(ModelLoadError):
        attnviz.load_image_model("no-such-org/no-such-image-model", device="cpu")


@pytest.fixture(scope="module")
def tiny_vit_dir(tmp_path_factory):
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        num_labels=3,
        id2label={0: "cat", 1: "dog", 2: "fox"},
        label2id={"cat": 0, "dog": 1, "fox": 2},
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("vit")
    ViTForImageClassification(config).save_pretrained(str(folder))
    return folder


def test_a_hugging_face_vit_folder_loads_with_attention(tiny_vit_dir):
    from PIL import Image

    from attnviz.maths.attention_rollout import rollout

    vm = attnviz.load_image_model(str(tiny_vit_dir), device="cpu")
    assert vm.kind == "vit" and vm.grid == (4, 4) and vm.classes == ("cat", "dog", "fox")
    ia = attnviz.image_attention(vm, Image.new("RGB", (50, 40), (200, 10, 10)))
    assert ia.weights.shape == (2, 4, 17, 17)  # class token + 4x4 patches
    np.testing.assert_allclose(ia.weights.sum(-1), 1.0, atol=1e-5)
    roll = rollout(ia.weights)
    np.testing.assert_allclose(roll.sum(-1), 1.0, atol=1e-5)
    assert ia.cls_attention(1).shape == (4, 4)


def test_a_text_model_folder_is_not_an_image_model(tiny_bert_dir):
    with pytest.raises(ModelLoadError, match="ViT"):
        attnviz.load_image_model(str(tiny_bert_dir), device="cpu")


def _vit_with_labels(folder, id2label, num_labels=3):
    """A tiny ViT with ``num_labels`` outputs whose config.json is then given ``id2label`` as written."""
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=4,
        intermediate_size=37,
        num_labels=num_labels,
    )
    ViTForImageClassification(config).save_pretrained(str(folder))
    data = json.loads((folder / "config.json").read_text())
    data["id2label"] = id2label
    data.pop("label2id", None)
    (folder / "config.json").write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize(
    "id2label,expected",
    [
        ({"0": "cat", "1": "dog", "5": "fox"}, ("cat", "dog", "LABEL_2")),  # a gap: no name for output 2
        ({"1": "a", "2": "b", "3": "c"}, ("LABEL_0", "a", "b")),  # counted from 1
        ({"0": "", "1": None, "2": 3}, ("LABEL_0", "LABEL_1", "3")),  # empty, null, a number
        ({"0": "cat", "1": "cat", "2": "dog"}, ("cat", "cat (1)", "dog")),  # the same name twice
    ],
)
def test_a_vit_with_gaps_in_id2label_gets_a_name_for_every_output(id2label, expected, tmp_path):
    """A KeyError here showed the page's generic error box; every output now has one distinct name."""
    from PIL import Image

    vm = attnviz.load_image_model(str(_vit_with_labels(tmp_path / "vit", id2label)), device="cpu")
    assert vm.classes == expected
    ia = attnviz.image_attention(vm, Image.new("RGB", (32, 32), (10, 200, 10)))
    assert sorted(label for label, _ in ia.predictions) == sorted(expected)


def test_a_vit_whose_id2label_disagrees_with_its_classifier_gets_a_message(tmp_path):
    """id2label names 2 classes (so transformers builds 2 outputs) but the weights hold 3."""
    folder = _vit_with_labels(tmp_path / "vit", {"0": "cat", "2": "fox"})
    with pytest.raises(ModelLoadError) as info:
        attnviz.load_image_model(str(folder), device="cpu")
    message = str(info.value)
    assert "id2label" in message and "2 classes" in message and "3" in message
    assert "config.json" in message
