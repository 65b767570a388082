"""What a figure shows: a choice of rows and columns out of a :class:`TextAttention`.

Three options, applied in this order:

* **word level**: subword pieces are merged into words. Attention *to* a word is the sum over
  its pieces (so each row still sums to 1); attention *from* a word is the mean over its
  pieces (so a long word counts once, not once per piece).
* **pair block**: in pair mode, only queries from one sentence and keys from one sentence
  (``"A→B"``: queries in A, keys in B). [CLS] and the first [SEP] belong to A.
* **hide special tokens**: [CLS]/[SEP] rows and columns are dropped. Their weight is *not*
  redistributed, so rows then sum to less than 1 (how much less is itself informative).

A decoder's view can also **hide the first token and renormalise** (``hide_first``): most of a
decoder's late-layer attention rests on its first token (the attention sink), which washes out
every other weight. The first token's row and column are dropped and each row is divided by what
it had left (:func:`attnviz.maths.decoder_heads.hide_first_token`), so the rest is seen in
proportion; the sinks view shows how much was hidden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from attnviz.maths.attention_rollout import rollout
from attnviz.maths.decoder_heads import hide_first_token
from attnviz.results import AttentionResult
from attnviz.text.extraction import TextAttention

#: Pair-mode blocks: label -> (segment of the queries, segment of the keys); None = all.
BLOCKS: dict[str, tuple[int | None, int | None]] = {
    "All": (None, None),
    "A→A": (0, 0),
    "A→B": (0, 1),
    "B→A": (1, 0),
    "B→B": (1, 1),
}


@dataclass(frozen=True)
class AttentionView(AttentionResult):
    """Rows (queries) and columns (keys) chosen for display.

    Attributes:
        query_tokens, key_tokens: labels of the q rows and k columns.
        weights: float32 ``[layers, heads, q, k]``.
        query_positions, key_positions: index of each row/column in the unit it came from
            (token index, or word index at word level), for export and linking.
        description: a short phrase saying what was chosen ("words, A→B, no [CLS]/[SEP]").
        model_name: the model that produced the weights.
        causal: a decoder's attention, where row i sees only columns at or before its own
            position (:attr:`visible`); the others are 0 because they cannot be seen, and
            figures draw them as "not visible", not as weight 0.
    """

    query_tokens: list[str]
    key_tokens: list[str]
    weights: np.ndarray
    query_positions: np.ndarray
    key_positions: np.ndarray
    description: str
    model_name: str = ""
    causal: bool = False

    @property
    def row_labels(self) -> list[str]:
        return self.query_tokens

    @property
    def visible(self) -> np.ndarray | None:
        """bool ``(q, k)``: which keys each query can see; None when every key is (an encoder).

        A decoder's token sees itself and the tokens before it; at word level, word i sees
        words 0..i (its own pieces see one another left to right, so the mean over them does too).
        """
        if not self.causal:
            return None
        return self.key_positions[None, :] <= self.query_positions[:, None]

    @property
    def column_labels(self) -> list[str]:
        return self.key_tokens


def merge_words(ta: TextAttention) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Word-level attention: returns (words, weights [L, H, W, W], segment [W], special [W]).

    A word's pieces are adjacent tokens, so sums over them are ``np.add.reduceat`` over
    contiguous runs: O(L·H·n²), fast even at 512 tokens.
    """
    index = ta.word_index
    if np.any(np.diff(index) != np.clip(np.diff(index), 0, 1)):
        raise ValueError("word pieces must be contiguous and numbered left to right")
    starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])  # (W,) first token of each word
    counts = np.diff(np.r_[starts, len(index)])  # (W,) pieces per word
    to_words = np.add.reduceat(ta.weights, starts, axis=3)  # (L, H, n, W): sum over key pieces
    weights = np.add.reduceat(to_words, starts, axis=2)  # (L, H, W, W): sum over query pieces...
    weights /= counts[:, None].astype(np.float32)  # ...divided by their count: the mean
    return list(ta.words), weights, ta.segment[starts], ta.special[starts]


def _select(weights: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``weights[:, :, rows][:, :, :, cols]`` for boolean masks, without copying when all are kept."""
    if rows.all() and cols.all():
        return weights  # views are never mutated, so sharing is safe (and saves 75 MB at 512 tokens)
    return weights[:, :, np.flatnonzero(rows)[:, None], np.flatnonzero(cols)[None, :]]


def make_view(
    ta: TextAttention,
    *,
    words: bool = False,
    block: str = "All",
    hide_special: bool = False,
    hide_first: bool = False,
) -> AttentionView:
    """Choose rows and columns of ``ta`` to display (see the module docstring).

    ``hide_first`` applies to a decoder's attention only (an encoder's rows are not causal).
    """
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {list(BLOCKS)}, not {block!r}")
    if words:
        labels, weights, segment, special = merge_words(ta)
    else:
        labels, weights, segment, special = list(ta.tokens), ta.weights, ta.segment, ta.special
    hide_first = hide_first and ta.causal and len(labels) > 1
    first = 1 if hide_first else 0  # positions below count from the original first token
    if hide_first:  # the first token (or word) out, rows renormalised over the keys left
        labels, weights, segment, special = labels[1:], hide_first_token(weights), segment[1:], special[1:]
    query_seg, key_seg = BLOCKS[block] if ta.is_pair else (None, None)
    rows = np.ones(len(labels), dtype=bool) if query_seg is None else segment == query_seg
    cols = np.ones(len(labels), dtype=bool) if key_seg is None else segment == key_seg
    if hide_special:
        rows &= ~special
        cols &= ~special
    rows_idx, cols_idx = np.flatnonzero(rows), np.flatnonzero(cols)
    parts = ["words" if words else "subword tokens"]
    if hide_first:
        parts.append("first token hidden, rows renormalised")
    if ta.is_pair and block != "All":
        parts.append(block)
    if hide_special:
        parts.append("special tokens hidden" if ta.causal else "[CLS]/[SEP] hidden")
    return AttentionView(
        query_tokens=[labels[i] for i in rows_idx],
        key_tokens=[labels[j] for j in cols_idx],
        weights=_select(weights, rows, cols),
        query_positions=rows_idx + first,
        key_positions=cols_idx + first,
        description=", ".join(parts),
        model_name=ta.model_name,
        causal=ta.causal,
    )


def rollout_view(
    ta: TextAttention,
    *,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    words: bool = False,
    block: str = "All",
    hide_special: bool = False,
    causal_normalised: bool = False,
    hide_first: bool = False,
) -> AttentionView:
    """An :class:`AttentionView` with one layer and one head, ``weights`` ``[1, 1, q, k]``: the rollout.

    ``causal_normalised`` (decoders only): divided by the rollout of uniform causal attention
    (:mod:`attnviz.maths.attention_rollout`), so the first tokens do not win by position alone.

    Rollout is computed on every token (hiding tokens first would change the maths); the display
    options (words, pair block, hidden [CLS]/[SEP]) are then applied to the result, exactly as
    they are to a head.
    """
    normalise = causal_normalised and ta.causal
    matrix = rollout(ta.weights, head_fusion=head_fusion, discard_ratio=discard_ratio, causal=normalise)  # (n, n)
    as_head = dataclasses.replace(ta, weights=matrix[None, None].astype(np.float32))  # (1, 1, n, n)
    view = make_view(as_head, words=words, block=block, hide_special=hide_special, hide_first=hide_first)
    what = f"{head_fusion} over heads" + (f", lowest {discard_ratio:.0%} discarded" if discard_ratio else "")
    what += ", relative to uniform causal attention" if normalise else ""
    return dataclasses.replace(view, description=f"{what}; {view.description}")
