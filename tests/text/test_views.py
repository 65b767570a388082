"""Views: word merging, pair blocks and hidden specials, against plain loops."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import attnviz
from attnviz import TextAttention, text_attention
from attnviz.text.views import BLOCKS, merge_words
from tests.helpers import constructed_pair, random_attention


def loop_merge(weights: np.ndarray, word_index: np.ndarray) -> np.ndarray:
    """Word-level weights by plain loops: to a word = sum over its key pieces; from a word = mean over query pieces."""
    n_layers, n_heads, n, _ = weights.shape
    n_words = int(word_index.max()) + 1
    out = np.zeros((n_layers, n_heads, n_words, n_words), dtype=np.float64)
    for l in range(n_layers):
        for h in range(n_heads):
            for a in range(n_words):
                queries = [i for i in range(n) if word_index[i] == a]
                for b in range(n_words):
                    total = 0.0
                    for i in queries:
                        for j in range(n):
                            if word_index[j] == b:
                                total += float(weights[l, h, i, j])
                    out[l, h, a, b] = total / len(queries)
    return out


@pytest.fixture
def pair_ta(rng):
    return constructed_pair(rng)


def test_merge_words_matches_loops(pair_ta):
    words, weights, segment, special = merge_words(pair_ta)
    assert words == pair_ta.words
    assert weights.dtype == np.float32
    assert weights.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(weights, loop_merge(pair_ta.weights, pair_ta.word_index), atol=1e-6)
    np.testing.assert_array_equal(segment, [0, 0, 0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(special, [True, False, False, False, True, False, False, True])
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)


def test_token_view_is_the_weights(pair_ta):
    view = attnviz.make_view(pair_ta)
    np.testing.assert_array_equal(view.weights, pair_ta.weights)
    assert view.query_tokens == view.key_tokens == pair_ta.tokens
    np.testing.assert_array_equal(view.query_positions, np.arange(pair_ta.n_tokens))
    assert view.description == "subword tokens"
    assert (view.n_layers, view.n_heads) == (2, 3)


def test_word_view_matches_loops(pair_ta):
    view = attnviz.make_view(pair_ta, words=True)
    assert view.query_tokens == view.key_tokens == pair_ta.words
    np.testing.assert_allclose(view.weights, loop_merge(pair_ta.weights, pair_ta.word_index), atol=1e-6)
    np.testing.assert_allclose(view.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert view.description == "words"


@pytest.mark.parametrize("block", list(BLOCKS))
@pytest.mark.parametrize("words", [False, True])
def test_pair_blocks_select_segments(pair_ta, block, words):
    view = attnviz.make_view(pair_ta, words=words, block=block)
    if words:
        labels = pair_ta.words
        full = loop_merge(pair_ta.weights, pair_ta.word_index)
        seg = np.array([pair_ta.segment[np.flatnonzero(pair_ta.word_index == w)[0]] for w in range(len(labels))])
    else:
        labels, full, seg = pair_ta.tokens, pair_ta.weights, pair_ta.segment
    q_seg, k_seg = {"All": (None, None), "A→A": (0, 0), "A→B": (0, 1), "B→A": (1, 0), "B→B": (1, 1)}[block]
    rows = [i for i in range(len(labels)) if q_seg is None or seg[i] == q_seg]
    cols = [j for j in range(len(labels)) if k_seg is None or seg[j] == k_seg]
    assert view.query_positions.tolist() == rows
    assert view.key_positions.tolist() == cols
    assert view.query_tokens == [labels[i] for i in rows]
    assert view.key_tokens == [labels[j] for j in cols]
    np.testing.assert_allclose(view.weights, full[:, :, rows][:, :, :, cols], atol=1e-6)
    if block != "All":
        assert block in view.description


def test_a_to_b_is_sentence_a_queries_and_sentence_b_keys(pair_ta):
    view = attnviz.make_view(pair_ta, block="A→B")
    assert view.query_tokens == ["[CLS]", "the", "un", "##believ", "##able", "cat", "[SEP]"]
    assert view.key_tokens == ["a", "do", "##g", "[SEP]"]
    np.testing.assert_array_equal(view.weights, pair_ta.weights[:, :, :7, 7:])


@pytest.mark.parametrize("words", [False, True])
def test_hide_special(pair_ta, words):
    shown = attnviz.make_view(pair_ta, words=words)
    view = attnviz.make_view(pair_ta, words=words, hide_special=True)
    for label in ("[CLS]", "[SEP]"):
        assert label not in view.query_tokens and label not in view.key_tokens
    keep = [i for i, t in enumerate(shown.query_tokens) if t not in ("[CLS]", "[SEP]")]
    assert view.query_positions.tolist() == keep
    np.testing.assert_allclose(view.weights, shown.weights[:, :, keep][:, :, :, keep], atol=1e-7)
    sums = view.weights.sum(axis=-1)
    assert np.all(sums <= 1.0 + 1e-5)
    assert np.all(sums < 1.0)  # random weights put something on [CLS]/[SEP]: nothing is redistributed
    assert "[CLS]/[SEP] hidden" in view.description


def test_hide_special_with_a_block(pair_ta):
    view = attnviz.make_view(pair_ta, words=True, block="B→A", hide_special=True)
    assert view.query_tokens == ["A", "dog"]
    assert view.key_tokens == ["The", "unbelievable", "cat"]
    assert view.description == "words, B→A, [CLS]/[SEP] hidden"
    full = loop_merge(pair_ta.weights, pair_ta.word_index)
    np.testing.assert_allclose(view.weights, full[:, :, [5, 6]][:, :, :, [1, 2, 3]], atol=1e-6)


def test_blocks_are_ignored_for_a_single_sentence(rng):
    ta = dataclasses.replace(constructed_pair(rng), text_pair=None, segment=np.zeros(11, dtype=np.int64))
    view = attnviz.make_view(ta, block="A→B")
    assert len(view.query_tokens) == len(view.key_tokens) == 11
    assert view.description == "subword tokens"


def test_unknown_block_is_refused(pair_ta):
    with pytest.raises(ValueError):
        attnviz.make_view(pair_ta, block="A->B")


def test_non_contiguous_word_pieces_are_refused(pair_ta):
    broken = dataclasses.replace(pair_ta, word_index=np.array([0, 1, 2, 1, 2, 3, 4, 5, 6, 6, 7]))
    with pytest.raises(ValueError):
        merge_words(broken)


@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=7), seed=st.integers(0, 2**16))
def test_merge_words_matches_loops_for_any_split(pieces, seed):
    rng = np.random.default_rng(seed)
    word_index = np.repeat(np.arange(len(pieces)), pieces)
    n = len(word_index)
    ta = TextAttention(
        tokens=[f"t{i}" for i in range(n)],
        weights=random_attention(rng, 2, 2, n),
        truncated=False,
        n_cut=0,
        special=np.zeros(n, dtype=bool),
        segment=np.zeros(n, dtype=np.int64),
        word_index=word_index,
        words=[f"w{w}" for w in range(len(pieces))],
        text="x",
    )
    view = attnviz.make_view(ta, words=True)
    np.testing.assert_allclose(view.weights, loop_merge(ta.weights, word_index), atol=1e-6)
    np.testing.assert_allclose(view.weights.sum(axis=-1), 1.0, atol=1e-5)


def test_views_of_the_tiny_model(tiny_model):
    a, b = "The Quick foxes JUMPED unbelievably.", "Where did the cat sit?"
    ta = text_attention(tiny_model, a, b)
    assert len(ta.words) < ta.n_tokens  # some words have several pieces
    words = attnviz.make_view(ta, words=True)
    np.testing.assert_allclose(words.weights, loop_merge(ta.weights, ta.word_index), atol=1e-6)
    np.testing.assert_allclose(words.weights.sum(axis=-1), 1.0, atol=1e-5)
    a_to_b = attnviz.make_view(ta, block="A→B")
    np.testing.assert_array_equal(a_to_b.query_positions, np.flatnonzero(ta.segment == 0))
    np.testing.assert_array_equal(a_to_b.key_positions, np.flatnonzero(ta.segment == 1))
    hidden = attnviz.make_view(ta, words=True, hide_special=True)
    assert "[CLS]" not in hidden.query_tokens and "[SEP]" not in hidden.key_tokens
    assert np.all(hidden.weights.sum(axis=-1) <= 1.0 + 1e-5)
    assert hidden.description == "words, [CLS]/[SEP] hidden"
