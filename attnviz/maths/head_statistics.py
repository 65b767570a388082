"""What each head does: per-head statistics and a behaviour label (Clark et al. 2019).

Clark, Khandelwal, Levy & Manning, "What Does BERT Look At? An Analysis of BERT's Attention"
(BlackboxNLP 2019) measured, per head, how much attention goes to [CLS], [SEP], punctuation,
the token itself and its neighbours, and how broad the attention is. :func:`head_stats` does
the same for one :class:`~attnviz.TextAttention`; :mod:`attnviz.text.corpus` adds up the same
sums over many sentences (:class:`HeadTotals` is that running sum).

Every statistic is a mean over query rows i (every token, [CLS] and [SEP] included) of a
quantity of row ``w[i, :]`` (which sums to 1):

============== ==============================================================================
column         per query row i
============== ==============================================================================
entropy        ``-Σ_j w[i,j] ln w[i,j]`` in nats
uniform_entropy ``ln n``: the entropy of attending equally to all n tokens (the upper bound)
cls_mass       ``Σ w[i,j]`` over keys j that are [CLS] (the special token at position 0)
sep_mass       ``Σ w[i,j]`` over the other special tokens ([SEP]; ``</s>`` for RoBERTa-style)
punct_mass     ``Σ w[i,j]`` over punctuation tokens (every character in a Unicode "P*" category)
self_mass      ``w[i,i]``
prev_mass      ``w[i,i-1]``, the previous token (offset -1); rows i ≥ 1 only
next_mass      ``w[i,i+1]``, the next token (offset +1); rows i ≤ n-2 only
mean_distance  ``Σ_j w[i,j] |i-j|`` in tokens
============== ==============================================================================

The label is the first rule that holds, in this order (the thresholds Clark et al. used):

1. ``"previous token"``: prev_mass > 0.5
2. ``"next token"``: next_mass > 0.5
3. ``"[CLS]"``: cls_mass > 0.6
4. ``"[SEP]"``: sep_mass > 0.6
5. ``"punctuation"``: punct_mass > 0.6
6. ``"self"``: self_mass > 0.5 (the offset threshold, for offset 0)
7. ``"broad"``: entropy > 0.8 · uniform_entropy
8. ``"mixed"``: none of the above.

Broad attention: Clark et al. called heads with entropy above 3.8 nats broad, on inputs of
about 128 tokens, where the uniform entropy is ln 128 = 4.85, so 3.8 is 0.78 of the maximum.
A sentence of fewer than 45 tokens can never reach 3.8 nats, so the rule here is relative:
above 0.8 of the uniform entropy of the same rows.

Decoders
--------
A causal result (``result.causal``: query i sees keys 0..i only) gets its own columns and
labels (:data:`DECODER_COLUMNS`, :data:`DECODER_LABELS`; the formulas are in
:mod:`attnviz.maths.decoder_heads`). Every statistic leaves out row 0, which sees only itself;
the uniform entropy of row i is ``ln(i + 1)``, the number of keys it sees, not ``ln n``.
[CLS] and [SEP] do not exist there; a decoder's first token is its attention sink (Xiao et al.,
"Efficient Streaming Language Models with Attention Sinks", ICLR 2024), whatever the token is.
Duplicate and induction scores are means over the rows whose token appeared earlier in the
input only (NaN when no token repeats), so on one sentence they rest on its repeated tokens.
Tokens are the same token when their ids are equal (``result.token_ids`` when the result has
them), else when their texts are equal; a token whose text holds U+FFFD "�" (a piece of a
character's UTF-8 bytes) matches nothing.

The decoder label is the first rule that holds, in this order (content first: a head that
copies the previous token or does induction usually also parks its spare attention on the
sink, and its label should say what it does when it does something):

1. ``"previous token"``: prev_mass > 0.5 (Clark et al.'s offset threshold)
2. ``"induction"``: induction_mass > 0.4
3. ``"duplicate token"``: duplicate_mass > 0.4
4. ``"first-token sink"``: first_mass > 0.6 (the [CLS] threshold)
5. ``"special tokens"``: special_mass > 0.6 (special tokens after the first)
6. ``"self"``: self_mass > 0.5
7. ``"local"``: local_mass > 0.8 (the token and the 3 before it, rows i > 3)
8. ``"broad"``: entropy > 0.8 · uniform_entropy (both over the same rows, causal)
9. ``"mixed"``: none of the above.

Induction threshold, measured on SmolLM2-135M-Instruct: on 50 random tokens repeated twice its
five induction heads (layers 17-18) score 0.65-0.93; on the sentence "The cat sat on the mat,
and the dog sat on the cat." the best two of them score 0.57 and 0.40 and every other head 0.32
or less. Attention spread evenly over the i + 1 visible keys scores (number of targets) / (i + 1),
far below 0.4 past the first few tokens.

Long inputs
-----------
At 8,192 tokens the attention ``[layers, heads, n, n]`` cannot be held (72 GB for the bundled
decoder). :class:`StreamedHeadStatistics` (and :func:`streamed_head_stats`) take one layer's block
of query rows ``[heads, m, n]`` at a time and keep per-head sums and row counts, building only
``(m, n)`` masks; the table equals :func:`head_stats` on the full attention. The full attention
goes through the same code as one block (:func:`block_sums`, ``decoder_heads.row_statistics``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from attnviz.errors import InputError
from attnviz.maths.decoder_heads import LOCAL_WINDOW, query_rows, row_statistics

#: Label thresholds (see the module docstring).
OFFSET_THRESHOLD = 0.5
SPECIAL_THRESHOLD = 0.6
SELF_THRESHOLD = 0.5
BROAD_FRACTION = 0.8
LABELS = ("previous token", "next token", "[CLS]", "[SEP]", "punctuation", "self", "broad", "mixed")

#: Columns of the table, in order, and what each means (shown as help on the page).
COLUMNS: dict[str, str] = {
    "entropy": "mean entropy of a row, in nats",
    "uniform_entropy": "entropy of uniform attention over the same rows (ln n)",
    "cls_mass": "mean attention to [CLS]",
    "sep_mass": "mean attention to [SEP]",
    "punct_mass": "mean attention to punctuation",
    "self_mass": "mean attention to the token itself",
    "prev_mass": "mean attention to the previous token (key i-1)",
    "next_mass": "mean attention to the next token (key i+1)",
    "mean_distance": "mean distance |i-j| in tokens, weighted by attention",
}

#: Decoder label thresholds (see "Decoders" in the module docstring).
INDUCTION_THRESHOLD = 0.4
DUPLICATE_THRESHOLD = 0.4
SINK_THRESHOLD = SPECIAL_THRESHOLD
LOCAL_THRESHOLD = 0.8
DECODER_LABELS = (
    "previous token",
    "induction",
    "duplicate token",
    "first-token sink",
    "special tokens",
    "self",
    "local",
    "broad",
    "mixed",
)

#: Columns of a decoder's table, in order (rows i >= 1 unless said otherwise).
DECODER_COLUMNS: dict[str, str] = {
    "entropy": "mean entropy of a row, in nats",
    "uniform_entropy": "entropy of uniform attention over the keys each row sees (ln(i+1))",
    "first_mass": "mean attention to the first token (the attention sink)",
    "special_mass": "mean attention to special tokens after the first",
    "self_mass": "mean attention to the token itself",
    "prev_mass": "mean attention to the previous token (key i-1)",
    "duplicate_mass": "mean attention to earlier copies of the same token (rows whose token repeats)",
    "induction_mass": "mean attention to the token after an earlier copy of the same token (rows whose token repeats)",
    "local_mass": f"mean attention to the token and the {LOCAL_WINDOW} before it (rows i > {LOCAL_WINDOW})",
    "mean_distance": "mean distance i-j in tokens, weighted by attention",
}

# Word-piece markers to strip before asking whether a token is punctuation: BERT's "##",
# SentencePiece's "▁", byte-level BPE's "Ġ".
_PIECE_MARKERS = ("##", "▁", "Ġ")


def is_punctuation(token: str) -> bool:
    """True when every character of ``token`` (word-piece marker removed) is Unicode punctuation."""
    for marker in _PIECE_MARKERS:
        if token.startswith(marker) and len(token) > len(marker):
            token = token[len(marker) :]
            break
    return bool(token) and all(unicodedata.category(c).startswith("P") for c in token)


def key_masks(tokens: list[str], special: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean ``[n]`` masks of the keys counted as [CLS], [SEP] and punctuation.

    [CLS] is the special token at position 0 (it opens every BERT input); every other special
    token counts as [SEP]. Punctuation never includes special tokens.
    """
    special = np.asarray(special, dtype=bool)
    n = len(tokens)
    if special.shape != (n,):
        raise InputError(f"special must have one flag per token ({n}), got shape {special.shape}.")
    cls = np.zeros(n, dtype=bool)
    cls[0] = n > 0 and bool(special[0])
    sep = special & ~cls
    punct = np.array([not s and is_punctuation(t) for t, s in zip(tokens, special, strict=True)], dtype=bool)
    return cls, sep, punct


def block_sums(block: np.ndarray, start: int, cls: np.ndarray, sep: np.ndarray, punct: np.ndarray) -> dict:
    """An encoder's :data:`COLUMNS` summed over the query rows of one layer's block of rows.

    Args:
        block: ``[heads, m, n]``, the rows ``start .. start+m`` of one layer (every key).
        start: the position of the block's first row.
        cls, sep, punct: bool ``[n]`` key masks (:func:`key_masks`).

    Returns:
        name -> (sum over the block's rows ``[heads]`` float64, how many rows it is over). Sums
        and counts add up across blocks; the full attention is one block (start 0, m = n).
        Temporaries are ``(heads, m, n)`` and ``(m, n)``, never ``(n, n)`` for m < n.
    """
    w = np.asarray(block, dtype=np.float64)  # (H, m, n)
    n_heads, m, n = w.shape
    i = query_rows(n, start, m)  # (m,): the query positions
    r = np.arange(m)
    prev, nxt = i >= 1, i <= n - 2
    distance = np.abs(i[:, None] - np.arange(n)[None, :]).astype(np.float64)  # (m, n)
    # 0·ln 0 = 0: clipping only changes the log of exact zeros, which are then multiplied by 0.
    return {
        "entropy": (-(w * np.log(np.clip(w, 1e-30, None))).sum(axis=(1, 2)), m),
        "uniform_entropy": (np.full(n_heads, m * np.log(n)), m),
        "cls_mass": (w[..., cls].sum(axis=(1, 2)), m),
        "sep_mass": (w[..., sep].sum(axis=(1, 2)), m),
        "punct_mass": (w[..., punct].sum(axis=(1, 2)), m),
        "self_mass": (w[:, r, i].sum(axis=1), m),
        "prev_mass": (w[:, r[prev], i[prev] - 1].sum(axis=1), int(prev.sum())),
        "next_mass": (w[:, r[nxt], i[nxt] + 1].sum(axis=1), int(nxt.sum())),
        "mean_distance": ((w * distance).sum(axis=(1, 2)), m),
    }


def _zeros(shape: tuple[int, int]) -> np.ndarray:
    return np.zeros(shape, dtype=np.float64)


@dataclass
class HeadTotals:
    """Running sums over query rows, per head ``[layers, heads]``; the means make the table.

    Sums (not means) so that sentences of different lengths add up as Clark et al. averaged:
    every token of the corpus counts once.
    """

    n_layers: int
    n_heads: int
    rows: int = 0  # query rows summed (all statistics but prev/next)
    prev_rows: int = 0  # rows that have a previous token
    next_rows: int = 0  # rows that have a next token
    sentences: int = 0
    sums: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in COLUMNS:
            self.sums.setdefault(name, _zeros((self.n_layers, self.n_heads)))

    def add(self, weights: np.ndarray, tokens: list[str], special: np.ndarray) -> None:
        """Add one sentence: ``weights`` ``[layers, heads, n, n]``, its ``tokens`` and ``special`` ``[n]``."""
        w = np.asarray(weights)
        if w.ndim != 4 or w.shape[2] != w.shape[3]:
            raise InputError(f"Head statistics need weights shaped [layers, heads, n, n], got {w.shape}.")
        if w.shape[:2] != (self.n_layers, self.n_heads):
            raise InputError(
                f"This sentence's attention has {w.shape[0]} layers x {w.shape[1]} heads; "
                f"the totals have {self.n_layers} x {self.n_heads} (a different model?)."
            )
        n = w.shape[2]
        if n == 0 or len(tokens) != n:
            raise InputError(f"Head statistics need one token per row: {len(tokens)} tokens, {n} rows.")
        cls, sep, punct = key_masks(tokens, special)
        # One layer at a time: a float64 copy of 12 heads x 512 x 512 is 25 MB, of all layers 300 MB.
        for l in range(self.n_layers):
            sums = block_sums(w[l], 0, cls, sep, punct)
            for name, (total, _) in sums.items():
                self.sums[name][l] += total
        self.rows += sums["entropy"][1]
        self.prev_rows += sums["prev_mass"][1]
        self.next_rows += sums["next_mass"][1]
        self.sentences += 1

    def means(self) -> dict[str, np.ndarray]:
        """Each statistic's mean over rows, ``[layers, heads]``; NaN where no row counted."""

        def mean(total: np.ndarray, count: int) -> np.ndarray:
            return total / count if count else np.full_like(total, np.nan)

        out = {name: mean(total, self.rows) for name, total in self.sums.items()}
        out["prev_mass"] = mean(self.sums["prev_mass"], self.prev_rows)
        out["next_mass"] = mean(self.sums["next_mass"], self.next_rows)
        return out

    def table(self) -> pd.DataFrame:
        """One row per (layer, head): ``layer``, ``head``, the :data:`COLUMNS` and ``label``."""
        means = self.means()
        layer, head = np.meshgrid(np.arange(self.n_layers), np.arange(self.n_heads), indexing="ij")
        frame = pd.DataFrame({"layer": layer.ravel(), "head": head.ravel()})
        for name in COLUMNS:
            frame[name] = means[name].ravel()
        frame["label"] = [label_of(row) for row in frame.to_dict("records")]
        return frame


def label_of(stats: dict) -> str:
    """The behaviour label of one head's statistics (rules in the module docstring)."""
    rules = (
        ("previous token", stats["prev_mass"] > OFFSET_THRESHOLD),
        ("next token", stats["next_mass"] > OFFSET_THRESHOLD),
        ("[CLS]", stats["cls_mass"] > SPECIAL_THRESHOLD),
        ("[SEP]", stats["sep_mass"] > SPECIAL_THRESHOLD),
        ("punctuation", stats["punct_mass"] > SPECIAL_THRESHOLD),
        ("self", stats["self_mass"] > SELF_THRESHOLD),
        ("broad", stats["entropy"] > BROAD_FRACTION * stats["uniform_entropy"]),
    )
    # NaN compares False everywhere, so a head with no rows is "mixed".
    return next((label for label, holds in rules if holds), "mixed")


def is_decoder_table(table: pd.DataFrame) -> bool:
    """True for a table of a decoder's heads (:data:`DECODER_COLUMNS`), False for an encoder's."""
    return "induction_mass" in table.columns


def columns_of(table: pd.DataFrame) -> dict[str, str]:
    """The statistic columns of ``table`` and what each means (an encoder's or a decoder's)."""
    return DECODER_COLUMNS if is_decoder_table(table) else COLUMNS


def labels_of(table: pd.DataFrame) -> tuple[str, ...]:
    """Every label ``table``'s rules can give, in rule order."""
    return DECODER_LABELS if is_decoder_table(table) else LABELS


def token_identities(tokens: list[str]) -> np.ndarray:
    """``[n]`` int: equal texts get equal ids; a text holding U+FFFD gets -1 (matches nothing:
    pieces of different characters' UTF-8 bytes all decode to it)."""
    seen: dict[str, int] = {}
    return np.array([-1 if "\ufffd" in t else seen.setdefault(t, len(seen)) for t in tokens], dtype=np.int64)


def _later_specials(special, n: int) -> np.ndarray:
    """A decoder's special keys ``[n]`` bool: the first token is counted as first_mass, not here."""
    special = np.array(special, dtype=bool)  # a copy
    if special.shape != (n,):
        raise InputError(f"special must have one flag per token ({n}), got shape {special.shape}.")
    special[:1] = False
    return special


def decoder_row_sums(weights: np.ndarray, ids: np.ndarray, special: np.ndarray, start: int = 0) -> dict:
    """A decoder's :data:`DECODER_COLUMNS` summed over the counted rows of a block of rows.

    ``weights`` ``[layers, heads, m, n]`` holds the rows ``start .. start+m`` (all of them when
    start is 0 and m = n); ``ids`` and ``special`` are ``[n]`` (``special`` without the first
    token). Returns name -> (sum ``[layers, heads]`` float64, how many rows it is over); sums
    and counts add up across blocks (:func:`~attnviz.maths.decoder_heads.row_statistics`).
    """
    return {
        name: (values[..., rows].sum(axis=-1), int(rows.sum()))
        for name, (values, rows) in row_statistics(weights, ids, special, start=start).items()
    }


@dataclass
class DecoderHeadTotals:
    """Running sums over query rows of a decoder's statistics, per head ``[layers, heads]``.

    As :class:`HeadTotals`, every token of every input counts once; each statistic keeps its own
    row count, since duplicate, induction and local scores are over some rows only.
    """

    n_layers: int
    n_heads: int
    sentences: int = 0
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in DECODER_COLUMNS:
            self.sums.setdefault(name, _zeros((self.n_layers, self.n_heads)))
            self.counts.setdefault(name, 0)

    def add(self, weights: np.ndarray, tokens: list[str], special: np.ndarray, token_ids=None) -> None:
        """Add one input: causal ``weights`` ``[layers, heads, n, n]``, its ``tokens``, ``special``
        ``[n]`` and, if known, ``token_ids`` ``[n]`` (else tokens are compared by text)."""
        w = np.asarray(weights)
        if w.ndim != 4 or w.shape[2] != w.shape[3]:
            raise InputError(f"Head statistics need weights shaped [layers, heads, n, n], got {w.shape}.")
        if w.shape[:2] != (self.n_layers, self.n_heads):
            raise InputError(
                f"This input's attention has {w.shape[0]} layers x {w.shape[1]} heads; "
                f"the totals have {self.n_layers} x {self.n_heads} (a different model?)."
            )
        n = w.shape[2]
        if n == 0 or len(tokens) != n:
            raise InputError(f"Head statistics need one token per row: {len(tokens)} tokens, {n} rows.")
        ids = token_identities(list(tokens)) if token_ids is None else np.asarray(token_ids, dtype=np.int64)
        special = _later_specials(special, n)
        for name, (total, count) in decoder_row_sums(w, ids, special).items():
            self.sums[name] += total
            self.counts[name] += count
        self.sentences += 1

    def means(self) -> dict[str, np.ndarray]:
        """Each statistic's mean over its rows, ``[layers, heads]``; NaN where no row counted."""
        return {
            name: total / self.counts[name] if self.counts[name] else np.full_like(total, np.nan)
            for name, total in self.sums.items()
        }

    def table(self) -> pd.DataFrame:
        """One row per (layer, head): ``layer``, ``head``, the :data:`DECODER_COLUMNS` and ``label``."""
        means = self.means()
        layer, head = np.meshgrid(np.arange(self.n_layers), np.arange(self.n_heads), indexing="ij")
        frame = pd.DataFrame({"layer": layer.ravel(), "head": head.ravel()})
        for name in DECODER_COLUMNS:
            frame[name] = means[name].ravel()
        frame["label"] = [decoder_label_of(row) for row in frame.to_dict("records")]
        return frame


def decoder_label_of(stats: dict) -> str:
    """The behaviour label of one decoder head's statistics (rules under "Decoders" in the module docstring)."""
    rules = (
        ("previous token", stats["prev_mass"] > OFFSET_THRESHOLD),
        ("induction", stats["induction_mass"] > INDUCTION_THRESHOLD),
        ("duplicate token", stats["duplicate_mass"] > DUPLICATE_THRESHOLD),
        ("first-token sink", stats["first_mass"] > SINK_THRESHOLD),
        ("special tokens", stats["special_mass"] > SPECIAL_THRESHOLD),
        ("self", stats["self_mass"] > SELF_THRESHOLD),
        ("local", stats["local_mass"] > LOCAL_THRESHOLD),
        ("broad", stats["entropy"] > BROAD_FRACTION * stats["uniform_entropy"]),
    )
    # NaN compares False everywhere: no repeated token is no induction, a one-token input is "mixed".
    return next((label for label, holds in rules if holds), "mixed")


def head_stats(result) -> pd.DataFrame:
    """Per-head statistics of one input, one row per (layer, head), with a behaviour label.

    Args:
        result: a :class:`~attnviz.TextAttention` (anything with ``weights``
            ``[layers, heads, n, n]``, ``tokens`` and ``special`` ``[n]``).

    Returns:
        DataFrame with columns ``layer``, ``head``, ``entropy``, ``uniform_entropy``,
        ``cls_mass``, ``sep_mass``, ``punct_mass``, ``self_mass``, ``prev_mass``,
        ``next_mass``, ``mean_distance`` and ``label`` (definitions and label thresholds in
        the :mod:`attnviz.maths.head_statistics` docstring). For a decoder's result
        (``result.causal``) the columns are ``layer``, ``head``, :data:`DECODER_COLUMNS` and
        ``label`` (one of :data:`DECODER_LABELS`); :func:`is_decoder_table` tells them apart.

    Example::

        stats = attnviz.head_stats(attnviz.text_attention(tm, "The cat sat on the mat."))
        stats.query("label == 'previous token'")
    """
    for name in ("weights", "tokens", "special"):
        if not hasattr(result, name):
            raise InputError(f"head_stats needs a TextAttention (from attnviz.text_attention); it has no {name!r}.")
    weights = np.asarray(result.weights)
    if weights.ndim != 4:
        raise InputError(f"head_stats needs weights shaped [layers, heads, n, n], got {weights.shape}.")
    if getattr(result, "causal", False):
        decoder = DecoderHeadTotals(weights.shape[0], weights.shape[1])
        decoder.add(weights, list(result.tokens), result.special, getattr(result, "token_ids", None))
        return decoder.table()
    totals = HeadTotals(weights.shape[0], weights.shape[1])
    totals.add(weights, list(result.tokens), result.special)
    return totals.table()


class StatisticsStopped(Exception):
    """:func:`streamed_head_stats` was cancelled through its ``stop`` event; ``blocks_done``
    blocks had been added."""

    def __init__(self, blocks_done: int):
        super().__init__(f"Head statistics stopped after {blocks_done} blocks.")
        self.blocks_done = blocks_done


class StreamedHeadStatistics:
    """:func:`head_stats` of one input whose attention comes a block of query rows at a time.

    For long inputs (8,192 tokens), where ``[layers, heads, n, n]`` cannot be held: each
    :meth:`add` takes one layer's rows ``start .. start+m`` as ``block`` ``[heads, m, n]`` and
    keeps only per-head sums, so memory per call is O(heads·m·n) and nothing is ``(n, n)``.
    When every row of every layer has been added once, in any order and any block sizes,
    :meth:`table` equals ``head_stats`` of the full attention (up to float64 rounding).

    Args:
        n_layers, n_heads: the model's.
        tokens: the n tokens; ``special`` bool ``[n]``.
        token_ids: int ``[n]`` (a decoder's token identity; else tokens are compared by text).
        causal: a decoder's attention (:data:`DECODER_COLUMNS`), else an encoder's (:data:`COLUMNS`).

    Example::

        stats = StreamedHeadStatistics(30, 9, tokens, special, token_ids, causal=True)
        for layer in range(30):
            for start in range(0, n, 256):
                stats.add(layer, start, rows_of(layer, start, 256))  # [heads, m, n]
        table = stats.table()
    """

    def __init__(self, n_layers: int, n_heads: int, tokens, special, token_ids=None, causal: bool = False):
        self.n_layers, self.n_heads, self.causal = n_layers, n_heads, causal
        self.tokens = list(tokens)
        self.n = n = len(self.tokens)
        if n == 0:
            raise InputError("Head statistics need at least one token.")
        if causal:
            self._ids = token_identities(self.tokens) if token_ids is None else np.asarray(token_ids, dtype=np.int64)
            self._special = _later_specials(special, n)
            names = DECODER_COLUMNS
        else:
            self._masks = key_masks(self.tokens, special)
            names = COLUMNS
        self._sums = {name: _zeros((n_layers, n_heads)) for name in names}
        self._counts = {name: np.zeros(n_layers, dtype=np.int64) for name in names}  # rows counted, per layer
        self._added = np.zeros((n_layers, n), dtype=bool)  # which rows of each layer were added

    def add(self, layer: int, start: int, block: np.ndarray) -> None:
        """Add layer ``layer``'s query rows ``start .. start+m``: ``block`` ``[heads, m, n]``."""
        block = np.asarray(block)
        if block.ndim != 3 or block.shape[0] != self.n_heads or block.shape[2] != self.n:
            raise InputError(
                f"A block of rows must be shaped [heads, m, n] = [{self.n_heads}, m, {self.n}], got {block.shape}."
            )
        if not 0 <= layer < self.n_layers:
            raise InputError(f"Layer {layer} is not one of the model's {self.n_layers} layers.")
        rows = query_rows(self.n, start, block.shape[1])
        if self._added[layer, rows].any():
            raise InputError(f"Rows {start}..{start + len(rows)} of layer {layer} were already added.")
        if self.causal:
            sums = decoder_row_sums(block[None], self._ids, self._special, start=start)
            sums = {name: (total[0], count) for name, (total, count) in sums.items()}
        else:
            sums = block_sums(block, start, *self._masks)
        for name, (total, count) in sums.items():
            self._sums[name][layer] += total
            self._counts[name][layer] += count
        self._added[layer, rows] = True

    def table(self) -> pd.DataFrame:
        """The table of :func:`head_stats` (same columns, order and labels); every row of every
        layer must have been added."""
        missing = int((~self._added).sum())
        if missing:
            raise InputError(f"{missing} rows (over all layers) were never added; the statistics are incomplete.")
        counts = {name: int(count[0]) for name, count in self._counts.items()}  # equal for every layer
        sums = {name: total.copy() for name, total in self._sums.items()}
        if self.causal:
            totals = DecoderHeadTotals(self.n_layers, self.n_heads, sentences=1, sums=sums, counts=counts)
        else:
            totals = HeadTotals(
                self.n_layers,
                self.n_heads,
                rows=counts["entropy"],
                prev_rows=counts["prev_mass"],
                next_rows=counts["next_mass"],
                sentences=1,
                sums=sums,
            )
        return totals.table()


def streamed_head_stats(
    n_layers: int,
    n_heads: int,
    blocks: Iterable[tuple[int, int, np.ndarray]],
    tokens,
    special,
    token_ids=None,
    causal: bool = False,
    progress: Callable[[int], object] | None = None,
    stop=None,
) -> pd.DataFrame:
    """:func:`head_stats` of one input from its attention a block of rows at a time.

    Args:
        blocks: ``(layer, start, block)`` with ``block`` ``[heads, m, n]`` the rows
            ``start .. start+m`` of that layer; together, every row of every layer once.
        n_layers, n_heads, tokens, special, token_ids, causal: as :class:`StreamedHeadStatistics`.
        progress: called with the number of blocks done after each block.
        stop: a ``threading.Event`` (anything with ``is_set()``), checked before each block is
            taken from ``blocks``; when set, :class:`StatisticsStopped` is raised.

    Returns:
        The DataFrame of :func:`head_stats` on the full attention.
    """
    stats = StreamedHeadStatistics(n_layers, n_heads, tokens, special, token_ids, causal)
    blocks, done = iter(blocks), 0
    while not (stop is not None and stop.is_set()):
        item = next(blocks, None)  # each item is a tuple, never None
        if item is None:
            return stats.table()
        stats.add(*item)
        done += 1
        if progress is not None:
            progress(done)
    raise StatisticsStopped(done)
