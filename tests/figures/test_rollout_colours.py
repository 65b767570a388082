"""Rollout over a long input is not blank: its colours run over its own shares, and the title says how."""

from __future__ import annotations

import dataclasses

import numpy as np

from attnviz.figures.rollout import rollout_matrix, rollout_scale
from attnviz.text.views import make_view
from tests.helpers import constructed_pair


def test_long_rollout_colours_end_at_a_percentile(rng):
    ta = constructed_pair(rng)
    n = 300
    shares = rng.uniform(0.5, 1.5, (n, n)) / n  # ~1/n each, like rollout over 300 tokens
    shares[:, 0] = 0.3  # [CLS] takes a large share of every row
    shares /= shares.sum(axis=1, keepdims=True)
    tokens = [f"t{i}" for i in range(n)]
    long = dataclasses.replace(
        ta,
        weights=shares[None, None].astype(np.float32),
        tokens=tokens,
        special=np.zeros(n, dtype=bool),
        segment=np.zeros(n, dtype=np.int64),
        word_index=np.arange(n),
        words=tokens,
        truncated=False,
    )
    view = make_view(long)
    top, words = rollout_scale(view)
    assert top < 0.25 * float(shares.max())  # not washed out by the [CLS] column
    assert np.mean(shares >= 0.5 * top) > 0.1  # most of the matrix shows up in colour
    fig = rollout_matrix(view, scale="fixed")
    assert fig.data[0].zmax == top and fig.data[0].zmin == 0.0
    assert "99th percentile" in fig.layout.title.text
