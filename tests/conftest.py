"""Shared fixtures: a tiny random BERT written to disk, the bundled all-MiniLM-L6-v2, and a random
CNN-attention image model saved the way training saves it.

Nothing here needs a network: the tiny model is built from a config and a hand-written
WordPiece vocabulary, and the bundled model comes from the installed package.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import configuration as hypothesis_configuration  # noqa: E402

from tests.helpers import VOCAB, tiny_bert_config  # noqa: E402

# Hypothesis keeps its example database under the working directory; keep the checkout clean.
hypothesis_configuration.set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "attnviz-hypothesis"))


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A folder written by ``save_pretrained``: a random 2-layer, 4-head BERT and a fast tokenizer."""
    import torch
    from transformers import BertModel, BertTokenizer

    root = tmp_path_factory.mktemp("tiny_bert")
    vocab_dir = root / "vocab"
    vocab_dir.mkdir()
    (vocab_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(str(vocab_dir))
    assert tokenizer.is_fast
    model_dir = root / "model"
    config = tiny_bert_config()
    torch.manual_seed(0)
    BertModel(config).save_pretrained(str(model_dir))
    tokenizer.save_pretrained(str(model_dir))
    return model_dir


@pytest.fixture(scope="session")
def tiny_model(tiny_bert_dir):
    import attnviz

    return attnviz.load_text_model(str(tiny_bert_dir), device="cpu")


@pytest.fixture(scope="session")
def bundled_model():
    import attnviz

    return attnviz.load_text_model()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory):
    """A randomly initialised CnnAttention saved the way attnviz.image.train saves it."""
    import torch

    from attnviz.image import generated_shapes
    from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
    from attnviz.image.train import save

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
    import attnviz

    return attnviz.load_image_model(str(random_model_dir), device="cpu")
