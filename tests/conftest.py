"""Shared fixtures: a tiny random BERT and tiny random decoders (GPT-2, Llama, Qwen2) written to
disk, the bundled all-MiniLM-L6-v2 and SmolLM2-135M-Instruct, and a random CNN-attention image
model saved the way training saves it.

Nothing here needs a network: the tiny model is built from a config and a hand-written
WordPiece vocabulary, and the bundled model comes from the installed package.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# No background thread loading the bundled models behind a test's monkeypatches, in AppTest or in an app
# the browser tests start (they inherit this); tests/ui/test_warm_start.py switches it on where it tests it.
os.environ["ATTNVIZ_WARM_START"] = "0"

import tempfile  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import configuration as hypothesis_configuration  # noqa: E402

from tests.helpers import (  # noqa: E402
    DECODER_FAMILIES,
    VOCAB,
    tiny_bert_config,
    tiny_byte_bpe_tokenizer,
    tiny_decoder_config,
)

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


@pytest.fixture(scope="session")
def bundled_decoder():
    """SmolLM2-135M-Instruct, loaded once per test session (converted from its GGUF on the first
    load on a machine, then read from the conversion cache)."""
    import attnviz

    return attnviz.load_text_model("SmolLM2-135M-Instruct", device="cpu")


@pytest.fixture(scope="session")
def tiny_decoder_dirs(tmp_path_factory):
    """family -> a folder written by ``save_pretrained``: a random 2-layer causal LM and a fast
    byte-level BPE tokenizer without a pad token."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = tiny_byte_bpe_tokenizer()
    folders = {}
    for family in DECODER_FAMILIES:
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(tiny_decoder_config(family, len(tokenizer)), trust_remote_code=False)
        folder = tmp_path_factory.mktemp(f"tiny_{family}")
        model.save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        folders[family] = folder
    return folders


@pytest.fixture(scope="session", params=DECODER_FAMILIES)
def tiny_decoder(request, tiny_decoder_dirs):
    """Each tiny decoder in turn, loaded through ``attnviz.load_text_model``."""
    import attnviz

    return attnviz.load_text_model(str(tiny_decoder_dirs[request.param]), device="cpu")


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
