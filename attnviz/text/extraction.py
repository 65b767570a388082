"""Run a text model once and keep every layer's and head's attention.

Everything downstream (figures, statistics, rollout, export) takes the returned
:class:`TextAttention`, so no view ever runs the model again.
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass

import numpy as np
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError, WeightsNotHeld
from attnviz.results import TokenSelfAttention
from attnviz.text import forward_cost
from attnviz.text.loading import TextModel
from attnviz.text.recorded_attention import RecordedAttention, recorder, recording_attention

#: Largest every-head array ``[layers, heads, n, n]`` a result holds (128 MB): the bundled encoder's
#: 512 tokens (75 MB) fit, the bundled decoder's fit up to 344 tokens. Past it, one head at a time
#: is computed on demand (:meth:`TextAttention.head`) from the recorded queries and keys.
HELD_BYTES = 128 * 2**20


class _HeldWeights:
    """The ``weights`` field of a :class:`TextAttention`: the array when it was kept, else an error
    that names :meth:`TextAttention.head` (a long input's array would not fit in memory)."""

    def __set_name__(self, owner, name: str) -> None:
        self._slot = f"_held_{name}"

    def __get__(self, obj, owner=None):
        if obj is None:  # asked by @dataclass for a default: there is none
            raise AttributeError("weights")
        value = obj.__dict__[self._slot]
        if value is None:
            n, layers, heads = obj.n_tokens, obj.n_layers, obj.n_heads
            raise WeightsNotHeld(
                f"This input has {n:,} tokens: every head's weights together ({layers} x {heads} x {n:,}² floats, "
                f"{layers * heads * n * n * 4 / 2**30:.1f} GiB) are not kept. Read one head with "
                "ta.head(layer, head), or some rows with ta.head(layer, head, queries=slice(a, b))."
            )
        return value

    def __set__(self, obj, value) -> None:
        obj.__dict__[self._slot] = value


@dataclass(frozen=True, repr=False)
class TextAttention(TokenSelfAttention):
    """Attention of every layer and head for one input (special tokens included).

    Attributes:
        tokens: the n tokens the model saw, e.g. ``["[CLS]", "the", "cat", "[SEP]"]``.
        weights: float32 ``[layers, heads, n, n]``; ``weights[l, h, i, j]`` is how much query
            token i attends to key token j in layer l, head h. Each row sums to 1. Held only
            when it fits in :data:`HELD_BYTES` (:attr:`holds_weights`); past that, reading it
            raises :class:`~attnviz.errors.WeightsNotHeld`, and :meth:`head` gives any head.
        truncated: the input was longer than the model's limit and was cut.
        n_cut: how many tokens were cut (0 when not truncated).
        special: bool ``[n]``, True for [CLS], [SEP] and other special tokens.
        segment: int ``[n]``, 0 for the first sentence (and [CLS]), 1 for the second.
        word_index: int ``[n]``, index of the word each token belongs to (special tokens are
            words of their own); words are numbered left to right across both sentences.
        words: the text of each word, taken from the input (original case and accents).
        text, text_pair: the input as given.
        model_name: the model that produced the weights.
        token_ids: int ``[n]``, the tokenizer's id of each token (two tokens are the same token
            when their ids are equal: duplicate-token and induction scores use them).
        causal: a decoder's attention: query i sees keys 0..i only, so ``weights[..., i, j]``
            is exactly 0 for every j > i ("not visible", not "ignored"). A decoder's tokens are
            the text each token stands for (``" cat"``, with its space), not ``"Ġcat"``.
        recorded: every layer's queries and keys (:class:`RecordedAttention`), from which
            :meth:`head` computes a head's weights when ``weights`` is not held.
    """

    tokens: list[str]
    weights: np.ndarray = _HeldWeights()  # noqa: RUF009 (a descriptor: the array, or WeightsNotHeld)
    truncated: bool
    n_cut: int
    special: np.ndarray
    segment: np.ndarray
    word_index: np.ndarray
    words: list[str]
    text: str
    text_pair: str | None = None
    model_name: str = ""
    causal: bool = False
    token_ids: np.ndarray | None = None
    recorded: RecordedAttention | None = None

    @property
    def holds_weights(self) -> bool:
        """Every head's ``[n, n]`` weights are kept in ``weights`` (a short input)."""
        return self.__dict__["_held_weights"] is not None

    @property
    def n_layers(self) -> int:
        return self.weights.shape[0] if self.holds_weights else self.recorded.n_layers

    @property
    def n_heads(self) -> int:
        return self.weights.shape[1] if self.holds_weights else self.recorded.n_heads

    def head(self, layer: int, head: int, queries: slice | None = None) -> np.ndarray:
        """One head's weights, float32 ``[rows, n]``: every query, or the rows of ``queries``.

        Works at any length: a short input's rows are read from ``weights``; a long input's are
        computed from the recorded queries and keys, one block of rows at a time, so that memory
        stays O(rows x n).
        """
        if self.recorded is not None:  # the same IndexError, held or not (numpy's would take -1)
            self.recorded.check(layer, head)
        if self.holds_weights:
            return super().head(layer, head, queries)
        return self.recorded.head(layer, head, queries)

    def __repr__(self) -> str:
        kind = "decoder" if self.causal else "encoder"
        held = "held" if self.holds_weights else "computed per head"
        return (
            f"TextAttention({self.model_name!r}, {self.n_tokens} tokens, {self.n_layers} layers x {self.n_heads} "
            f"heads, {kind}, weights {held})"
        )


#: Unicode categories drawn as nothing: controls (Cc) and format characters (Cf: zero-width
#: spaces and joiners, BOMs, direction marks). Whitespace is tested with ``str.isspace``.
_INVISIBLE = frozenset({"Cc", "Cf"})


def is_blank(text: str) -> bool:
    """True when ``text`` has no visible character: only whitespace, controls and zero-width marks.

    The one rule for "no sentence here", for the first sentence and the second alike: a second
    sentence of "\u200b" is no pair, and a first sentence of it is empty. A lone combining
    accent is visible (drawn on a dotted circle), so it is a sentence, even when a tokenizer
    keeps nothing of it (which :func:`text_attention` then says).
    """
    return all(c.isspace() or unicodedata.category(c) in _INVISIBLE for c in text)


def _clean(text: str | None) -> str | None:
    """``text`` as given, or None when there is none (None or :func:`is_blank`)."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InputError(f"Text must be a string, not {type(text).__name__}.")
    return None if is_blank(text) else text


def _words(encoding, sources: list[str]) -> tuple[np.ndarray, list[str]]:
    """Number the words left to right and take each word's text from the input.

    A fast tokenizer reports, for each token, its sequence (0 or 1), its word within that
    sequence and its character offsets; a word's text is the span from its first piece's
    start to its last piece's end.
    """
    seq_ids = encoding.sequence_ids
    word_ids = encoding.word_ids
    offsets = encoding.offsets
    tokens = encoding.tokens
    index = np.zeros(len(tokens), dtype=np.int64)
    words: list[str] = []
    spans: list[list[int]] = []
    key_of_word: dict[tuple[int, int], int] = {}
    for i, (seq, word) in enumerate(zip(seq_ids, word_ids, strict=True)):
        if seq is None or word is None:  # a special token is a word of its own
            index[i] = len(words)
            words.append(tokens[i])
            spans.append([])
            continue
        key = (seq, word)
        if key not in key_of_word:
            key_of_word[key] = len(words)
            words.append("")
            spans.append([seq, offsets[i][0], offsets[i][1]])
        w = key_of_word[key]
        index[i] = w
        spans[w][1] = min(spans[w][1], offsets[i][0])
        spans[w][2] = max(spans[w][2], offsets[i][1])
    for w, span in enumerate(spans):
        if span:
            seq, start, end = span
            source = sources[seq]
            # Tokenizers that strip accents end a word's offsets before a combining mark.
            while end < len(source) and unicodedata.combining(source[end]):
                end += 1
            words[w] = source[start:end] or tokens[int(np.argmax(index == w))]
    return index, words


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def check_characters(text: str, what: str) -> None:
    """Raise :class:`InputError` if ``text`` holds half of a UTF-16 surrogate pair (U+D800–U+DFFF).

    Python strings may hold such a half on its own (text cut in the middle of an emoji, bytes
    decoded with ``surrogateescape``), but it is not a character: tokenizers refuse it with a
    ``TypeError`` and UTF-8 cannot encode it. It is refused, not replaced, so that the tokens
    shown are always the text as given; the message says where it is so a person can delete it.
    """
    found = _LONE_SURROGATE.search(text)
    if found is None:
        return
    at = found.start()
    before = text[max(0, at - 20) : at]
    after = f" (after “{before}”)" if before.strip() else ""
    raise InputError(
        f"{what} has a broken character, U+{ord(found.group()):04X} at character {at + 1}{after}: it is half of "
        "a UTF-16 surrogate pair, not a character, so no tokenizer can read it (text cut in the middle of an "
        "emoji leaves one). Delete it, or copy the text again from its source."
    )


def encode(
    tm: TextModel, text: str, text_pair: str | None = None, *, limit: int | None = None
) -> tuple[dict, object, int]:
    """Tokenize for ``tm``, cut to ``limit`` tokens (default ``tm.max_tokens``); returns (model
    inputs, encoding, tokens cut).

    Every library entry point that runs a text model tokenizes here, so the checks of the
    characters themselves live here too. A feature that takes every head's full weights from
    eager attention passes ``limit=tm.max_eager_tokens``.

    Raises:
        InputError: a text holds a lone surrogate (see :func:`check_characters`).
    """
    check_characters(text, "The text" if text_pair is None else "The first sentence")
    if text_pair is not None:
        check_characters(text_pair, "The second sentence")
    tok = tm.tokenizer
    enc = tok(text, text_pair, truncation=False, return_tensors="pt", verbose=False)
    n_full = enc["input_ids"].shape[1]
    limit = tm.max_tokens if limit is None else limit
    if n_full > limit:  # only over-long input is tokenized a second time, cut
        enc = tok(text, text_pair, truncation="longest_first", max_length=limit, return_tensors="pt")
    n_cut = n_full - enc["input_ids"].shape[1]
    inputs = {k: v.to(tm.device) for k, v in enc.items() if k in ("input_ids", "token_type_ids", "attention_mask")}
    return inputs, enc, n_cut


@falls_back_to_cpu("computing attention")
def text_attention(
    tm: TextModel, text: str, text_pair: str | None = None, *, progress=None, stop=None
) -> TextAttention:
    """Attention weights of every layer and head of ``tm`` for ``text`` (and ``text_pair``).

    Input longer than the model's limit (``tm.max_tokens``, up to 8,192) is cut
    (``truncated``/``n_cut`` say by how much). The model runs once with its fused attention
    kernel while every layer's queries and keys are recorded
    (:mod:`attnviz.text.recorded_attention`); a short input's weights are all computed and
    kept in ``weights``, a long input's one head at a time by :meth:`TextAttention.head`.

    Args:
        progress: called as ``progress(layers_done, n_layers)`` as the forward pass goes.
        stop: a ``threading.Event``; once set, the forward pass ends with
            :class:`~attnviz.text.recorded_attention.Stopped` at the next layer.

    Raises:
        InputError: the text is empty, holds nothing the tokenizer keeps, or holds a lone
            surrogate (half of a UTF-16 pair, which no tokenizer can read).
    """
    text = _clean(text)
    text_pair = _clean(text_pair)
    if text is None:
        if text_pair is not None:
            raise InputError("The first sentence is empty: type it, or move your text there.")
        raise InputError("The text is empty: type a sentence to see its attention.")
    if tm.causal and text_pair is not None:
        raise InputError(
            "A decoder language model reads one text, left to right: turn pair mode off and put both "
            "sentences in the first box."
        )
    inputs, enc, n_cut = encode(tm, text, text_pair)
    encoding = enc.encodings[0]
    special = np.array(encoding.special_tokens_mask, dtype=bool)
    if special.all():
        raise InputError(
            "The tokenizer kept nothing of this text (it was only spaces, control or zero-width "
            "characters): type some words."
        )
    # A decoder's language-model head is not needed for attention: run the transformer under it
    # (at 8,192 tokens its logits alone would be 1.6 GB), and keep no key/value cache.
    model = tm.model.base_model if tm.causal else tm.model
    extra = {"use_cache": False} if tm.causal else {}
    with tm.lock, torch.inference_mode(), recording_attention(model), recorder(tm.n_layers, progress, stop) as rec:
        started = time.perf_counter()
        model(**inputs, **extra)
        forward_cost.record(tm, int(inputs["input_ids"].shape[1]), time.perf_counter() - started)
    recorded = RecordedAttention(rec)
    if recorded.n_layers != tm.n_layers:
        raise RuntimeError(f"{tm.name} ran {recorded.n_layers} attention layers, its config says {tm.n_layers}.")
    n = recorded.n_tokens
    weights = recorded.all_weights() if recorded.n_layers * recorded.n_heads * n * n * 4 <= HELD_BYTES else None
    sequence = [-1 if s is None else s for s in encoding.sequence_ids]
    segment = np.array(sequence, dtype=np.int64)
    # Specials take the segment of the sentence they close ([CLS] and the first [SEP] -> 0).
    type_ids = encoding.type_ids
    segment = np.where(segment < 0, np.array(type_ids, dtype=np.int64), segment)
    word_index, words = _words(encoding, [text, text_pair or ""])
    return TextAttention(
        tokens=token_texts(tm, encoding),
        weights=weights,
        truncated=n_cut > 0,
        n_cut=n_cut,
        special=special,
        segment=segment,
        word_index=word_index,
        words=words,
        text=text,
        text_pair=text_pair,
        model_name=tm.name,
        causal=tm.causal,
        token_ids=np.array(encoding.ids, dtype=np.int64),
        recorded=recorded,
    )


def token_texts(tm: TextModel, encoding) -> list[str]:
    """What each token shows: the tokenizer's own token for an encoder (``"##ing"``, ``"[CLS]"``);
    for a decoder, the text the token decodes to (``" cat"`` rather than byte-level ``"Ġcat"``; a
    token holding part of a character's UTF-8 bytes shows as ``"�"``)."""
    if not tm.causal:
        return list(encoding.tokens)
    decode = tm.tokenizer.decode
    return [decode([i], clean_up_tokenization_spaces=False) for i in encoding.ids]
