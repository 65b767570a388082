"""Attention sinks: how much of each head's attention rests on the first token, and on special tokens.

A decoder's heads put most of their attention on the first token from the middle layers on
(SmolLM2: 0.5-0.9 of every row in most of layers 12-29), whatever that token is: it works as a
resting place for attention a head does not need (Xiao et al. 2023, "Efficient Streaming Language
Models with Attention Sinks"). An encoder does the same with [CLS] and [SEP] (Clark et al. 2019).
:func:`attention_sinks` measures both per head, so a view can say how much a weight was washed out
by the sink, and what "hide the first token" (:func:`attnviz.maths.decoder_heads.hide_first_token`)
takes away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnviz.maths.decoder_heads import first_token_mass, special_token_mass
from attnviz.text.extraction import TextAttention


@dataclass(frozen=True)
class AttentionSinks:
    """Per-head sink masses of one input.

    Attributes:
        first: float ``[layers, heads]``, the mean over rows i ≥ 1 of the attention on token 0.
        special: float ``[layers, heads]``, the same for the special tokens after the first
            ([SEP], ``</s>``, a typed ``<|im_end|>`` is not one), or None when there are none.
        first_token: the first token's text.
        model_name: the model that produced the attention.
    """

    first: np.ndarray
    special: np.ndarray | None
    first_token: str
    model_name: str = ""

    @property
    def n_layers(self) -> int:
        return int(self.first.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.first.shape[1])


def attention_sinks(ta: TextAttention) -> AttentionSinks:
    """The sink masses of every head of ``ta`` (every token counted, none hidden)."""
    later_special = ta.special.copy()
    later_special[0] = False
    special = special_token_mass(ta.weights, later_special) if later_special.any() else None
    return AttentionSinks(
        first=first_token_mass(ta.weights),
        special=special,
        first_token=ta.tokens[0],
        model_name=ta.model_name,
    )
