"""A tiny random BERT whose tokenizer splits on whitespace only (no fixtures: a builder).

XLM-R, ALBERT and DeBERTa-v3 split text on spaces (SentencePiece), so a typed
``=HYPERLINK("http://evil.example","Click")`` stays one word, punctuation and all; BERT's
WordPiece would cut it at every symbol. This builder gives the tests such a tokenizer
without a network: a word-level vocabulary where anything unknown becomes ``[UNK]``, but
word offsets, and so :attr:`attnviz.TextAttention.words`, still come from the typed text.
"""

from __future__ import annotations

from pathlib import Path

from tests.helpers import WORDS, tiny_bert_config

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_space_split_model(folder: Path) -> Path:
    """Write a random 2-layer BERT and a whitespace-splitting fast tokenizer to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertModel, PreTrainedTokenizerFast

    # Fewer tokens than the tiny BERT's embedding table (tests.helpers.VOCAB), so every id fits.
    vocab = {token: i for i, token in enumerate(dict.fromkeys(SPECIAL + WORDS))}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )
    torch.manual_seed(0)
    BertModel(tiny_bert_config()).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
