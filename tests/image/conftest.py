"""Fixtures of the image tests: a randomly initialised CNN-attention model, saved and loaded once per module."""

from __future__ import annotations

import pytest
import torch

import attnviz
from attnviz.image import generated_shapes
from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
from attnviz.image.train import save


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A randomly initialised CnnAttention saved the way attnviz.image.train saves it."""
    torch.manual_seed(0)
    config = CnnAttentionConfig()
    model = CnnAttention(config).eval()
    card = {
        "classes": list(generated_shapes.CLASSES),
        "input_size": [64, 64],
        "grid": [8, 8],
        "config": config.to_dict(),
    }
    folder = tmp_path_factory.mktemp("cnn") / "model"
    save(model, card, folder)
    return folder


@pytest.fixture(scope="session")
def random_model(random_model_dir):
    return attnviz.load_image_model(str(random_model_dir), device="cpu")
