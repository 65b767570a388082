"""Shared fixtures: a tiny random BERT written to disk, and the bundled all-MiniLM-L6-v2.

Nothing here needs a network: the tiny model is built from a config and a hand-written
WordPiece vocabulary, and the bundled model comes from the installed package.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PUNCTUATION = list(".,!?;:'\"-()$<>/=")
WORDS = """
the a an and or but of to in on at by for with from is was are were be been it its this that
these those he she they we you i his her their our my your cat cats dog dogs animal mat street
road house tree car bird fish man woman child people sat sit sits sitting ran run runs jump
cross crossed did didn t not because too tired happy sad big small red blue green old new long
short quick brown fox lazy over under where what who why how when one two three four five
word words piece pieces token long very much many some all no yes play plays playing guitar
instrument someone
""".split()
PIECES = ["##s", "##ed", "##ing", "##ly", "##er", "##est", "##ness"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# Every letter as a word start and as a piece, so any unknown lowercase word splits into pieces.
VOCAB = list(dict.fromkeys(SPECIAL + PUNCTUATION + WORDS + PIECES + list(LETTERS) + [f"##{c}" for c in LETTERS]))

TINY_LAYERS, TINY_HEADS, TINY_MAX = 2, 4, 64


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory):
    """A folder written by ``save_pretrained``: a random 2-layer, 4-head BERT and a fast tokenizer."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    root = tmp_path_factory.mktemp("tiny_bert")
    vocab_dir = root / "vocab"
    vocab_dir.mkdir()
    (vocab_dir / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer.from_pretrained(str(vocab_dir))
    assert tokenizer.is_fast
    model_dir = root / "model"
    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=TINY_HEADS,
        intermediate_size=37,
        vocab_size=len(VOCAB),
        max_position_embeddings=TINY_MAX,
    )
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
