"""Attention against attribution, token by token, for one sentence.

Three scores per token, each read as "how much does the sentence's representation depend on
this token":

* integrated gradients (:func:`attnviz.token_attributions`), its magnitude ``|score|``: a
  token that pushes the output down matters as much as one that pushes it up;
* attention rollout (:func:`attnviz.rollout`), the [CLS] row: how much [CLS]'s last-layer
  state draws on each input token through every layer;
* last-layer [CLS] attention, mean over heads: where [CLS] looks in the last layer only.

A decoder (``ta.causal``) has no [CLS]: what it computes is read off its **last** token, whose
state predicts the next token that the attribution explains
(:mod:`attnviz.text.next_token_attribution`). So the rollout row is the last token's, with the
causal correction (``rollout(..., causal=True)``), and the last-layer attention is the last
token's, mean over heads.

Special tokens are left out of the comparison: their attribution is 0 by construction (the
baseline keeps them), while attention piles onto [CLS]/[SEP] as a no-op (Clark et al. 2019),
so they would only add ties and outliers. A decoder's first token is left out for the same two
reasons: its baseline keeps it, and it is the attention sink that most heads park on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnviz.errors import InputError
from attnviz.maths.agreement import describe, permutation_p_value, relation, spearman
from attnviz.maths.attention_rollout import rollout
from attnviz.text.attribution import TokenAttributions
from attnviz.text.extraction import TextAttention

IG, ROLLOUT, LAST = "integrated gradients", "attention rollout", "last-layer [CLS] attention"
METHODS = (IG, ROLLOUT, LAST)
#: A decoder's third method: its last token's attention in the last layer.
LAST_TOKEN = "last-layer attention of the last token"


@dataclass(frozen=True)
class TokenComparison:
    """Per-token scores of the three methods and their pairwise rank correlations.

    Attributes:
        tokens: the m compared tokens (special tokens, and a decoder's first token, left out),
            ``positions`` ``[m]`` their indices.
        attribution: the signed attribution ``[m]`` (the bars); the correlations use ``|.|``.
        scores: method -> ``[m]`` importance used for ranking, for each name in ``methods``.
        correlations: one row per pair of methods: ``first``, ``second``, ``spearman``,
            ``p_value`` (permutation test), ``strength`` and ``meaning`` (a sentence).
        methods: the three names: the attribution's method, then rollout and last-layer attention
            (:data:`METHODS` for an encoder; ``LAST_TOKEN`` is the third for a decoder).
        query: whose attention is compared: ``"[CLS]"``, or ``"the last token"`` for a decoder.
        causal: a decoder's comparison.
    """

    tokens: list[str]
    positions: np.ndarray
    attribution: np.ndarray
    scores: dict[str, np.ndarray]
    correlations: pd.DataFrame
    head_fusion: str
    discard_ratio: float
    methods: tuple[str, str, str] = METHODS
    query: str = "[CLS]"
    causal: bool = False


def compare_attention_attribution(
    ta: TextAttention, attributions: TokenAttributions, *, head_fusion: str = "mean", discard_ratio: float = 0.0
) -> TokenComparison:
    """Scores of the attribution, rollout and last-layer attention for the non-special tokens of
    one input, and their agreement.

    ``ta`` and ``attributions`` must come from the same model and text (same tokens). For an
    encoder the attention compared is [CLS]'s; for a decoder (``ta.causal``) the last token's,
    with causal rollout, and the first token is left out too (module docstring).
    """
    if list(ta.tokens) != list(attributions.tokens):
        raise InputError("The attention and the attributions are of different inputs (their tokens differ).")
    causal = bool(ta.causal)
    left_out = np.asarray(ta.special, dtype=bool).copy()  # (n,)
    if causal:
        left_out[0] = True
    keep = np.flatnonzero(~left_out)  # (m,)
    if keep.size < 2:
        besides = "after the first one" if causal else "besides [CLS] and [SEP]"
        raise InputError(f"Comparing rankings needs at least two tokens {besides}: type a longer text.")
    row = -1 if causal else 0  # the query whose attention is compared: the last token, or [CLS]
    flow = rollout(ta.weights, head_fusion=head_fusion, discard_ratio=discard_ratio, causal=causal)[row]  # (n,)
    last = ta.weights[-1, :, row, :].mean(axis=0)  # (n,): last layer, that query, mean over heads
    methods = (attributions.method, ROLLOUT, LAST_TOKEN if causal else LAST)
    signed = np.asarray(attributions.scores, dtype=np.float64)[keep]
    ranked = (np.abs(signed), flow[keep].astype(np.float64), last[keep].astype(np.float64))
    scores = dict(zip(methods, ranked, strict=True))
    rows = []
    for i, first in enumerate(methods):
        for second in methods[i + 1 :]:
            rho = spearman(scores[first], scores[second])
            p = permutation_p_value(scores[first], scores[second])
            rows.append(
                {
                    "first": first,
                    "second": second,
                    "spearman": rho,
                    "p_value": p,
                    "strength": relation(rho),  # strength and direction, the app's one wording rule
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
        methods=methods,
        query="the last token" if causal else "[CLS]",
        causal=causal,
    )
