"""The text attribution chart's words are true (issue 18, item 4): its bars are in token order (the
title no longer says "ranked by size"), and the title says what orange and blue mean, which matches
each bar's sign."""

from __future__ import annotations

import numpy as np

import attnviz
from attnviz.figures.compare import NEGATIVE, POSITIVE, attention_vs_attribution
from attnviz.figures.labels import unique_labels
from attnviz.text.comparison import compare_attention_attribution


def test_bars_in_token_order_and_colours_explained(tiny_model):
    text = "the quick brown fox jumps over the lazy dog"
    ta = attnviz.text_attention(tiny_model, text)
    cmp = compare_attention_attribution(ta, attnviz.token_attributions(tiny_model, text, n_steps=4))
    fig = attention_vs_attribution(cmp)
    bars = [t for t in fig.data if t.type == "bar"]
    assert list(bars[0].x) == unique_labels(cmp.tokens)  # the sentence's order, not sorted
    assert not np.all(np.diff(np.abs(cmp.attribution)) <= 0)  # the sizes are not in falling order
    expected = np.where(np.asarray(cmp.attribution) >= 0, POSITIVE, NEGATIVE)
    assert list(bars[0].marker.color) == list(expected)
    title = fig.layout.annotations[0].text
    assert "orange raises</span> the output" in title and "blue lowers</span> it" in title
    assert POSITIVE in title and NEGATIVE in title
    assert "ranked by size" not in " ".join(a.text for a in fig.layout.annotations)
