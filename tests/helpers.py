"""Constants and builders shared by the tests (no fixtures: those live in conftest.py)."""

from __future__ import annotations

import numpy as np

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


def random_attention(rng, n_layers: int, n_heads: int, n_q: int, n_k: int | None = None):
    """Random float32 weights ``[layers, heads, q, k]`` whose rows sum to 1."""
    n_k = n_q if n_k is None else n_k
    logits = rng.normal(scale=2.0, size=(n_layers, n_heads, n_q, n_k))
    w = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (w / w.sum(axis=-1, keepdims=True)).astype(np.float32)


def constructed_pair(rng, n_layers: int = 2, n_heads: int = 3):
    """A hand-built pair-mode TextAttention with multi-piece words in both sentences.

    Tokens:  [CLS] the un ##believ ##able cat [SEP] a do ##g [SEP]
    Words:     0    1   2    2       2     3    4   5  6   6    7
    """
    from attnviz import TextAttention  # imported late: attnviz loads torch

    tokens = ["[CLS]", "the", "un", "##believ", "##able", "cat", "[SEP]", "a", "do", "##g", "[SEP]"]
    word_index = np.array([0, 1, 2, 2, 2, 3, 4, 5, 6, 6, 7])
    words = ["[CLS]", "The", "unbelievable", "cat", "[SEP]", "A", "dog", "[SEP]"]
    segment = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    special = np.array([t in ("[CLS]", "[SEP]") for t in tokens])
    return TextAttention(
        tokens=tokens,
        weights=random_attention(rng, n_layers, n_heads, len(tokens)),
        truncated=False,
        n_cut=0,
        special=special,
        segment=segment,
        word_index=word_index,
        words=words,
        text="The unbelievable cat",
        text_pair="A dog",
        model_name="constructed",
    )


def constructed_view(rng, tokens: list[str], n_layers: int = 2, n_heads: int = 3, description: str = "constructed"):
    """An AttentionView over ``tokens`` (queries = keys) with random rows that sum to 1."""
    from attnviz.text.views import AttentionView

    n = len(tokens)
    return AttentionView(
        query_tokens=list(tokens),
        key_tokens=list(tokens),
        weights=random_attention(rng, n_layers, n_heads, n),
        query_positions=np.arange(n),
        key_positions=np.arange(n),
        description=description,
    )


def tiny_bert_config(**overrides):
    """The tiny random BERT's config (2 layers, 4 heads, hidden 32), with ``overrides``."""
    from transformers import BertConfig

    return BertConfig(
        hidden_size=32,
        num_hidden_layers=TINY_LAYERS,
        num_attention_heads=TINY_HEADS,
        intermediate_size=37,
        vocab_size=len(VOCAB),
        max_position_embeddings=TINY_MAX,
        **overrides,
    )


def headed_model(tiny_bert_dir, head: str):
    """The tiny config with a classification or masked-LM head, saved and loaded like any user folder."""
    import torch
    from transformers import AutoTokenizer, BertForMaskedLM, BertForSequenceClassification

    import attnviz

    folder = tiny_bert_dir.parent / f"headed-{head}"
    if not folder.exists():
        config = tiny_bert_config(num_labels=3)
        torch.manual_seed(1)
        cls = BertForSequenceClassification if head == "classification" else BertForMaskedLM
        cls(config).save_pretrained(str(folder))
        AutoTokenizer.from_pretrained(str(tiny_bert_dir), trust_remote_code=False).save_pretrained(str(folder))
    tm = attnviz.load_text_model(str(folder), device="cpu")
    # load_text_model keeps the head the checkpoint was saved with.
    expected = "BertForSequenceClassification" if head == "classification" else "BertForMaskedLM"
    assert type(tm.model).__name__ == expected
    return tm


def imported_modules(path) -> set[str]:
    """Every module a source file imports, absolute, parsed with ``ast`` (never run): ``import a.b``
    gives ``a.b``; ``from x import y`` gives ``x`` and ``x.y`` (y may be a module or a name)."""
    import ast
    from pathlib import Path

    found = set()
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


#: The decoder families the tests build tiny random models of (config class, model class, extra config).
DECODER_FAMILIES = ("gpt2", "llama", "qwen2")


def tiny_byte_bpe_tokenizer():
    """A fast byte-level BPE tokenizer trained here on a few sentences (no download), no pad token.

    Its 256 byte tokens cover any text; the merges make common words single tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [
        "The cat sat on the mat. The dog sat on the log.",
        "The animal didn't cross the street because it was too tired.",
        "Attention shows where a model looks when it reads a sentence.",
    ] * 20
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>")


def tiny_decoder_config(family: str, vocab_size: int):
    """A random 2-layer decoder of ``family`` (GPT-2, Llama or Qwen2), small enough to build in ms.

    Llama and Qwen2 use grouped-query attention (4 query heads sharing 2 key/value heads) and
    RoPE, like the bundled SmolLM2.
    """
    from transformers import GPT2Config, LlamaConfig, Qwen2Config

    if family == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size, n_positions=128, n_embd=32, n_layer=2, n_head=4, architectures=["GPT2LMHeadModel"]
        )
    common = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    if family == "llama":
        return LlamaConfig(**common, architectures=["LlamaForCausalLM"])
    if family == "qwen2":
        return Qwen2Config(**common, architectures=["Qwen2ForCausalLM"])
    raise ValueError(family)
