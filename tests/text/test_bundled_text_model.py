"""The bundled all-MiniLM-L6-v2 (real pretrained weights): parity, segments, truncation, a known head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnviz import text_attention

pytestmark = pytest.mark.bundled

SENTENCES = [
    "The cat sat on the mat.",
    "The animal didn't cross the street because it was too tired.",
    "Tokenization splits unbelievably long words into pieces.",
    "The quick brown fox jumps over the lazy dog.",
    "Where did the cat sit?",
]


def model_attentions(tm, text, text_pair=None) -> np.ndarray:
    enc = tm.tokenizer(text, text_pair, return_tensors="pt")
    with torch.no_grad():
        out = tm.model(**enc, output_attentions=True)
    return torch.cat(out.attentions, dim=0).numpy()  # (L, H, n, n)


@pytest.mark.parametrize("text", SENTENCES[:3])
def test_weights_equal_the_models_output_attentions(bundled_model, text):
    ta = text_attention(bundled_model, text)
    expected = model_attentions(bundled_model, text)
    assert ta.weights.shape == expected.shape == (6, 12, ta.n_tokens, ta.n_tokens)
    # Computed from the queries and keys of an SDPA forward pass, whose hidden states differ from
    # eager's in the last bits (another summation order): within 1e-5, issue 13's bound.
    np.testing.assert_allclose(ta.weights, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(ta.weights.sum(axis=-1), 1.0, atol=1e-5)


def test_pair_parity_and_segments(bundled_model):
    a, b = "Where did the cat sit?", "The cat sat on the mat."
    ta = text_attention(bundled_model, a, b)
    np.testing.assert_allclose(ta.weights, model_attentions(bundled_model, a, b), atol=1e-5, rtol=0)
    np.testing.assert_allclose(ta.weights.sum(axis=-1), 1.0, atol=1e-5)
    first_sep = ta.tokens.index("[SEP]")
    assert first_sep == 1 + len(bundled_model.tokenizer.tokenize(a))
    np.testing.assert_array_equal(ta.segment[: first_sep + 1], 0)
    np.testing.assert_array_equal(ta.segment[first_sep + 1 :], 1)
    assert ta.tokens[-1] == "[SEP]"
    assert np.flatnonzero(ta.special).tolist() == [0, first_sep, ta.n_tokens - 1]


def test_700_words_are_cut_to_512(bundled_model):
    vocabulary = "the cat sat on a mat while dogs ran across green fields under bright summer skies".split()
    text = " ".join(vocabulary[i % len(vocabulary)] for i in range(700))
    full = len(bundled_model.tokenizer(text)["input_ids"])
    ta = text_attention(bundled_model, text)
    assert ta.n_tokens == 512
    assert ta.weights.shape == (6, 12, 512, 512)
    assert ta.truncated
    assert ta.n_cut == full - 512 > 0
    np.testing.assert_allclose(ta.weights.sum(axis=-1), 1.0, atol=1e-5)


def test_layer0_head2_attends_to_the_previous_token(bundled_model):
    """A known positional head of all-MiniLM-L6-v2: row i puts almost all its mass on key i-1."""
    for text in SENTENCES:
        w = text_attention(bundled_model, text).weights[0, 2]
        rows = np.arange(1, w.shape[0])
        previous = w[rows, rows - 1]
        assert previous.min() >= 0.9, (text, rows[previous < 0.9].tolist(), previous.min())


def test_words_keep_case_with_the_real_tokenizer(bundled_model):
    ta = text_attention(bundled_model, "Tokenization splits UNBELIEVABLY long words.")
    assert ta.words[1] == "Tokenization"
    assert "UNBELIEVABLY" in ta.words
    assert len(ta.tokens) > len(ta.words)  # wordpieces were merged
