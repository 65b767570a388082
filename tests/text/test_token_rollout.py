"""Rollout from one token (attnviz.text.token_rollout) equals the same row of the full rollout
(attnviz.maths.attention_rollout.rollout), whether the weights are held or computed head by head."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest

import attnviz
from attnviz.errors import InputError
from attnviz.maths.attention_rollout import rollout
from attnviz.text.token_rollout import RolloutStopped, rollout_from

TEXT = "The cat sat on the mat. The dog sat on the log. The cat sat on the"


def both_paths(ta):
    """The result as it is (weights held) and as a long input's (computed per block)."""
    long = dataclasses.replace(ta, weights=None)
    assert ta.holds_weights and not long.holds_weights
    return ta, long


@pytest.mark.bundled
@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("causal", [False, True])
def test_decoder_rows_equal_the_full_rollout(bundled_decoder, fusion, causal):
    ta = attnviz.text_attention(bundled_decoder, TEXT)
    full = rollout(ta.weights, fusion, causal=causal)  # (n, n), an independent product of matrices
    for result in both_paths(ta):
        for query in (0, 4, ta.n_tokens - 1):
            row = rollout_from(result, query, head_fusion=fusion, causal_normalised=causal)
            np.testing.assert_allclose(row, full[query], atol=1e-6)
            assert row.sum() == pytest.approx(1.0, abs=1e-5)
            assert (row[query + 1 :] == 0).all()  # a decoder's token draws on nothing after it


@pytest.mark.bundled
def test_encoder_rows_equal_the_full_rollout(bundled_model):
    ta = attnviz.text_attention(bundled_model, "Where did the cat sit?", "The cat sat on the mat.")
    full = rollout(ta.weights)
    for result in both_paths(ta):
        for query in range(ta.n_tokens):
            np.testing.assert_allclose(rollout_from(result, query), full[query], atol=1e-6)


@pytest.mark.bundled
def test_progress_stop_and_bad_input(bundled_decoder, bundled_model):
    ta = dataclasses.replace(attnviz.text_attention(bundled_decoder, TEXT), weights=None)
    calls = []
    rollout_from(ta, 3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 30) for i in range(1, 31)]
    stop = threading.Event()
    stop.set()
    with pytest.raises(RolloutStopped):
        rollout_from(ta, 3, stop=stop)
    with pytest.raises(InputError, match="out of range"):
        rollout_from(ta, ta.n_tokens)
    encoder = attnviz.text_attention(bundled_model, "The cat sat.")
    with pytest.raises(InputError, match="for decoders"):
        rollout_from(encoder, 1, causal_normalised=True)
