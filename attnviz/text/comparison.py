"""Attention against attribution, token by token, for one sentence.

Three scores per token, each read as "how much does the sentence's representation depend on
this token":

* integrated gradients (:func:`attnviz.token_attributions`), its magnitude ``|score|``: a
  token that pushes the output down matters as much as one that pushes it up;
* attention rollout (:func:`attnviz.rollout`), the [CLS] row: how much [CLS]'s last-layer
  state draws on each input token through every layer;
* last-layer [CLS] attention, mean over heads: where [CLS] looks in the last layer only.

Special tokens are left out of the comparison: their attribution is 0 by construction (the
baseline keeps them), while attention piles onto [CLS]/[SEP] as a no-op (Clark et al. 2019),
so they would only add ties and outliers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnviz.errors import InputError
from attnviz.maths.agreement import describe, permutation_p_value, spearman, strength
from attnviz.maths.attention_rollout import rollout
from attnviz.text.attribution import TokenAttributions
from attnviz.text.extraction import TextAttention

IG, ROLLOUT, LAST = "integrated gradients", "attention rollout", "last-layer [CLS] attention"
METHODS = (IG, ROLLOUT, LAST)


@dataclass(frozen=True)
class TokenComparison:
    """Per-token scores of the three methods and their pairwise rank correlations.

    Attributes:
        tokens: the m compared tokens (special tokens left out), ``positions`` ``[m]`` their indices.
        attribution: signed integrated gradients ``[m]`` (the bars); the correlations use ``|.|``.
        scores: method -> ``[m]`` importance used for ranking (:data:`METHODS`).
        correlations: one row per pair of methods: ``first``, ``second``, ``spearman``,
            ``p_value`` (permutation test), ``strength`` and ``meaning`` (a sentence).
    """

    tokens: list[str]
    positions: np.ndarray
    attribution: np.ndarray
    scores: dict[str, np.ndarray]
    correlations: pd.DataFrame
    head_fusion: str
    discard_ratio: float


def compare_attention_attribution(
    ta: TextAttention, attributions: TokenAttributions, *, head_fusion: str = "mean", discard_ratio: float = 0.0
) -> TokenComparison:
    """Scores of :data:`METHODS` for the non-special tokens of one input, and their agreement.

    ``ta`` and ``attributions`` must come from the same model and text (same tokens).
    """
    if list(ta.tokens) != list(attributions.tokens):
        raise InputError("The attention and the attributions are of different inputs (their tokens differ).")
    keep = np.flatnonzero(~np.asarray(ta.special, dtype=bool))  # (m,)
    if keep.size < 2:
        raise InputError("Comparing rankings needs at least two tokens besides [CLS] and [SEP]: type a longer text.")
    flow = rollout(ta.weights, head_fusion=head_fusion, discard_ratio=discard_ratio)[0]  # (n,): [CLS]'s row
    last = ta.weights[-1, :, 0, :].mean(axis=0)  # (n,): last layer, query [CLS], mean over heads
    signed = np.asarray(attributions.scores, dtype=np.float64)[keep]
    scores = {IG: np.abs(signed), ROLLOUT: flow[keep].astype(np.float64), LAST: last[keep].astype(np.float64)}
    rows = []
    for i, first in enumerate(METHODS):
        for second in METHODS[i + 1 :]:
            rho = spearman(scores[first], scores[second])
            p = permutation_p_value(scores[first], scores[second])
            rows.append(
                {
                    "first": first,
                    "second": second,
                    "spearman": rho,
                    "p_value": p,
                    "strength": strength(rho),
                    "meaning": describe(rho, int(keep.size), p, (first, second)),
                }
            )
    return TokenComparison(
        tokens=[ta.tokens[i] for i in keep],
        positions=keep,
        attribution=signed,
        scores=scores,
        correlations=pd.DataFrame(rows),
        head_fusion=head_fusion,
        discard_ratio=float(discard_ratio),
    )
