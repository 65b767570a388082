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
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from attnviz.errors import InputError

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
        idx = np.arange(n)
        distance = np.abs(idx[:, None] - idx[None, :]).astype(np.float64)  # (n, n)
        s = self.sums
        # One layer at a time: a float64 copy of 12 heads x 512 x 512 is 25 MB, of all layers 300 MB.
        for l in range(self.n_layers):
            wl = np.asarray(w[l], dtype=np.float64)  # (H, n, n)
            # 0·ln 0 = 0: clipping only changes the log of exact zeros, which are then multiplied by 0.
            s["entropy"][l] -= (wl * np.log(np.clip(wl, 1e-30, None))).sum(axis=(1, 2))
            s["cls_mass"][l] += wl[..., cls].sum(axis=(1, 2))
            s["sep_mass"][l] += wl[..., sep].sum(axis=(1, 2))
            s["punct_mass"][l] += wl[..., punct].sum(axis=(1, 2))
            s["self_mass"][l] += wl[:, idx, idx].sum(axis=1)
            s["prev_mass"][l] += wl[:, idx[1:], idx[:-1]].sum(axis=1)
            s["next_mass"][l] += wl[:, idx[:-1], idx[1:]].sum(axis=1)
            s["mean_distance"][l] += (wl * distance).sum(axis=(1, 2))
        s["uniform_entropy"] += n * np.log(n)
        self.rows += n
        self.prev_rows += n - 1
        self.next_rows += n - 1
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


def head_stats(result) -> pd.DataFrame:
    """Per-head statistics of one input, one row per (layer, head), with a behaviour label.

    Args:
        result: a :class:`~attnviz.TextAttention` (anything with ``weights``
            ``[layers, heads, n, n]``, ``tokens`` and ``special`` ``[n]``).

    Returns:
        DataFrame with columns ``layer``, ``head``, ``entropy``, ``uniform_entropy``,
        ``cls_mass``, ``sep_mass``, ``punct_mass``, ``self_mass``, ``prev_mass``,
        ``next_mass``, ``mean_distance`` and ``label`` (definitions and label thresholds in
        the :mod:`attnviz.maths.head_statistics` docstring).

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
    totals = HeadTotals(weights.shape[0], weights.shape[1])
    totals.add(weights, list(result.tokens), result.special)
    return totals.table()
