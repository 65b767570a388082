"""attention_sinks: the first token's and the later special tokens' share of each head's rows, and its files."""

from __future__ import annotations

import csv
import io

import numpy as np

import attnviz
from attnviz.export.sink_files import sinks_csv, sinks_png
from attnviz.figures import sink_map
from attnviz.text.sinks import attention_sinks


def test_encoder_pair_counts_both_separators(tiny_model):
    ta = attnviz.text_attention(tiny_model, "the cat sat", "the dog ran")
    sinks = attention_sinks(ta)
    seps = np.flatnonzero(ta.special)[1:]  # [CLS] is the first token; the two [SEP]s come later
    assert len(seps) == 2
    rows = ta.weights[:, :, 1:, :]  # every row but the first's
    np.testing.assert_allclose(sinks.first, rows[..., 0].mean(-1), atol=1e-6)
    np.testing.assert_allclose(sinks.special, rows[..., seps].sum(-1).mean(-1), atol=1e-6)
    assert sinks.first_token == "[CLS]"


def test_decoder_without_special_tokens_has_one_map(tiny_decoder):
    ta = attnviz.text_attention(tiny_decoder, "The cat sat on the mat.")
    sinks = attention_sinks(ta)
    assert sinks.special is None and sinks.first.shape == (2, 4)
    fig = sink_map(sinks)
    assert len(fig.data) == 1
    np.testing.assert_allclose(np.asarray(fig.data[0].z), np.round(sinks.first, 4))


def test_sink_files(tiny_model):
    sinks = attention_sinks(attnviz.text_attention(tiny_model, "the cat sat"))
    rows = list(csv.DictReader(io.StringIO(sinks_csv(sinks).decode())))
    assert len(rows) == sinks.n_layers * sinks.n_heads
    assert float(rows[5]["first_token_mass"]) == round(float(sinks.first[1, 1]), 6)
    assert float(rows[5]["special_token_mass"]) == round(float(sinks.special[1, 1]), 6)
    assert sinks_png(sinks).startswith(b"\x89PNG")
