"""text_attention on the tiny random BERT: weights, segments, truncation, words, odd input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import attnviz
from attnviz import TextAttention, text_attention
from tests.helpers import WORDS

REPO = Path(__file__).resolve().parents[2]
SENTENCE = "The cat sat on the mat because it was tired."


def reference_attention(tm, text, text_pair=None) -> np.ndarray:
    """The model's own attention probabilities, computed here without attnviz."""
    enc = tm.tokenizer(text, text_pair, return_tensors="pt")
    with torch.no_grad():
        out = tm.model(**enc, output_attentions=True)
    return torch.cat(out.attentions, dim=0).numpy()  # (L, H, n, n): batch of 1 per layer


def test_weights_shape_dtype_and_rows(tiny_model):
    ta = text_attention(tiny_model, SENTENCE)
    assert isinstance(ta, TextAttention)
    n = len(tiny_model.tokenizer(SENTENCE)["input_ids"])
    assert ta.weights.shape == (2, 4, n, n)
    assert ta.weights.dtype == np.float32
    assert (ta.n_layers, ta.n_heads, ta.n_tokens) == (2, 4, n)
    np.testing.assert_allclose(ta.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(ta.weights >= 0)
    assert ta.truncated is False and ta.n_cut == 0
    assert ta.text == SENTENCE and ta.text_pair is None and not ta.is_pair
    assert ta.model_name == tiny_model.name


def test_weights_equal_the_models_own_attentions(tiny_model):
    ta = text_attention(tiny_model, SENTENCE)
    np.testing.assert_allclose(ta.weights, reference_attention(tiny_model, SENTENCE), atol=1e-6, rtol=0)
    assert ta.tokens == tiny_model.tokenizer.convert_ids_to_tokens(tiny_model.tokenizer(SENTENCE)["input_ids"])


def test_pair_weights_equal_the_models_own_attentions(tiny_model):
    a, b = "Where did the cat sit?", "The cat sat on the mat."
    ta = text_attention(tiny_model, a, b)
    np.testing.assert_allclose(ta.weights, reference_attention(tiny_model, a, b), atol=1e-6, rtol=0)


def test_same_text_gives_same_weights(tiny_model):
    first = text_attention(tiny_model, SENTENCE)
    second = text_attention(tiny_model, SENTENCE)
    np.testing.assert_array_equal(first.weights, second.weights)


@pytest.mark.parametrize("text", ["", "   ", "\n\t  \r\n", "\u00a0\u3000"])
def test_empty_text_is_an_input_error(tiny_model, text):
    with pytest.raises(attnviz.InputError) as info:
        text_attention(tiny_model, text)
    assert "type" in str(info.value).lower()


@pytest.mark.parametrize("text", ["", "  \n "])
def test_empty_first_sentence_with_a_pair_is_an_input_error(tiny_model, text):
    with pytest.raises(attnviz.InputError) as info:
        text_attention(tiny_model, text, "The cat sat.")
    assert "first sentence" in str(info.value)


def test_text_that_is_not_a_string_is_an_input_error(tiny_model):
    with pytest.raises(attnviz.InputError):
        text_attention(tiny_model, 42)


#: Text with no visible character: whitespace, controls, zero-width and other format characters.
INVISIBLE = ["   ", "\u200b", "\u200b\u200c\u200d\ufeff", " \x00\t\u2060 ", "\u00a0\u200e\u3000"]


@pytest.mark.parametrize("pair", INVISIBLE)
def test_blank_pair_means_single_sentence(tiny_model, pair):
    """One rule for both sentences: no visible character is no sentence ("\u200b" was a pair)."""
    ta = text_attention(tiny_model, SENTENCE, pair)
    assert not ta.is_pair and ta.text_pair is None
    assert ta.tokens.count("[SEP]") == 1
    assert (ta.segment == 0).all()


@pytest.mark.parametrize("text", INVISIBLE)
def test_a_first_sentence_with_nothing_visible_is_empty(tiny_model, text):
    with pytest.raises(attnviz.InputError, match="The text is empty"):
        text_attention(tiny_model, text)
    with pytest.raises(attnviz.InputError, match="The first sentence is empty"):
        text_attention(tiny_model, text, "The cat sat.")


def test_a_pair_of_combining_marks_is_visible_and_stays_a_pair(tiny_model):
    """A lone accent is drawn (on a dotted circle), so it is a sentence, even if the tokenizer keeps none of it."""
    assert text_attention(tiny_model, SENTENCE, "\u0301").is_pair


@pytest.mark.parametrize(
    "text, pair, where",
    [
        ("abc\ud800def", None, "The text has"),
        ("\udfff", None, "The text has"),
        ("The cat sat.", "A dog\udc00.", "The second sentence has"),
        ("The \ud83d cat.", "A dog.", "The first sentence has"),
    ],
)
def test_a_lone_surrogate_is_an_input_error_that_says_where(tiny_model, text, pair, where):
    """Half of a UTF-16 pair is not a character: the tokenizer raised TypeError on it."""
    bad = next(c for c in text + (pair or "") if 0xD800 <= ord(c) <= 0xDFFF)
    with pytest.raises(attnviz.InputError) as info:
        text_attention(tiny_model, text, pair)
    message = str(info.value)
    assert message.startswith(where)
    assert f"U+{ord(bad):04X}" in message and "Delete it" in message


def test_every_library_entry_point_gives_the_same_lone_surrogate_error(tiny_model):
    """explain_head and token_attributions tokenize through the same encode()."""
    with pytest.raises(attnviz.InputError, match="U\\+D800 at character 4"):
        attnviz.explain_head(tiny_model, "abc\ud800def", 0, 0)
    with pytest.raises(attnviz.InputError, match="U\\+D800 at character 4"):
        attnviz.token_attributions(tiny_model, "abc\ud800def")


def test_pair_segments_and_special_mask(tiny_model):
    a, b = "Where did the cat sit?", "The cat sat on the mat."
    ta = text_attention(tiny_model, a, b)
    n_a = len(tiny_model.tokenizer.tokenize(a))
    n_b = len(tiny_model.tokenizer.tokenize(b))
    assert ta.n_tokens == n_a + n_b + 3
    first_sep, last_sep = 1 + n_a, ta.n_tokens - 1
    assert ta.tokens[0] == "[CLS]" and ta.tokens[first_sep] == "[SEP]" and ta.tokens[last_sep] == "[SEP]"
    expected_segment = np.array([0] * (first_sep + 1) + [1] * (ta.n_tokens - first_sep - 1))
    np.testing.assert_array_equal(ta.segment, expected_segment)
    expected_special = np.zeros(ta.n_tokens, dtype=bool)
    expected_special[[0, first_sep, last_sep]] = True
    np.testing.assert_array_equal(ta.special, expected_special)
    assert ta.special.dtype == bool
    assert ta.is_pair and ta.text_pair == b
    # The segments are the token type ids the model was given.
    np.testing.assert_array_equal(ta.segment, tiny_model.tokenizer(a, b)["token_type_ids"])


def test_single_sentence_is_all_segment_zero(tiny_model):
    ta = text_attention(tiny_model, SENTENCE)
    np.testing.assert_array_equal(ta.segment, np.zeros(ta.n_tokens, dtype=int))
    assert ta.special[0] and ta.special[-1] and not ta.special[1:-1].any()


def test_long_text_is_cut_to_the_model_limit(tiny_model):
    words = [WORDS[i % len(WORDS)] for i in range(100)]
    text = " ".join(words)
    full = len(tiny_model.tokenizer(text)["input_ids"])
    assert full > 64
    ta = text_attention(tiny_model, text)
    assert ta.n_tokens == 64
    assert ta.weights.shape == (2, 4, 64, 64)
    assert ta.truncated is True
    assert ta.n_cut == full - 64
    assert ta.tokens[-1] == "[SEP]"
    np.testing.assert_allclose(ta.weights.sum(axis=-1), 1.0, atol=1e-5)
    # The kept tokens are the first ones.
    kept = tiny_model.tokenizer.tokenize(text)[:62]
    assert ta.tokens[1:-1] == kept


def test_long_pair_is_cut_to_the_model_limit(tiny_model):
    a = " ".join(WORDS[:80])
    b = "The cat sat on the mat."
    full = len(tiny_model.tokenizer(a, b)["input_ids"])
    ta = text_attention(tiny_model, a, b)
    assert ta.n_tokens == 64
    assert ta.truncated and ta.n_cut == full - 64
    assert ta.tokens.count("[SEP]") == 2
    assert set(ta.segment.tolist()) == {0, 1}


def test_text_at_the_limit_is_not_truncated(tiny_model):
    tokens = [w for w in WORDS if len(tiny_model.tokenizer.tokenize(w)) == 1][:62]
    assert len(tokens) == 62
    ta = text_attention(tiny_model, " ".join(tokens))
    assert ta.n_tokens == 64 and not ta.truncated and ta.n_cut == 0


UNICODE_INPUTS = [
    "I like it 👍🏽 a lot 🎉",
    "猫坐在垫子上",
    "القط جلس على الحصيرة",
    "a\u200db\u200dc",
    "cat\u200bdog",
    "\u200b",
    "\u200b\u200c\u200d\ufeff",
    "cat\x00\x01\x07dog",
    "\x00\x01\x1f",
    "e\u0301\u0301 cafe\u0301",
    "\u0301\u0302",
    "\u202eevil\u202c text",
    "👨\u200d👩\u200d👧\u200d👦",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "x" * 500,
]


@pytest.mark.parametrize("text", UNICODE_INPUTS)
@pytest.mark.parametrize("as_pair", [False, True])
def test_unicode_gives_a_valid_result_or_an_input_error(tiny_model, text, as_pair):
    pair = "The cat sat." if as_pair else None
    try:
        ta = text_attention(tiny_model, text, pair)
    except attnviz.InputError as exc:
        assert str(exc)
        return
    check_valid(ta)


@pytest.mark.parametrize("text", ["\u200b", "\x00\x01\x1f", "\u0301\u0302", "\ufeff"])
def test_text_the_tokenizer_drops_entirely_is_an_input_error(tiny_model, text):
    with pytest.raises(attnviz.InputError):
        text_attention(tiny_model, text)


def check_valid(ta: TextAttention) -> None:
    n = ta.n_tokens
    assert ta.weights.shape == (ta.n_layers, ta.n_heads, n, n)
    assert np.isfinite(ta.weights).all()
    np.testing.assert_allclose(ta.weights.sum(axis=-1), 1.0, atol=1e-5)
    assert ta.special.shape == ta.segment.shape == ta.word_index.shape == (n,)
    assert not ta.special.all()
    assert ta.word_index[0] == 0
    assert set(np.diff(ta.word_index).tolist()) <= {0, 1}
    assert len(ta.words) == int(ta.word_index.max()) + 1
    for i in np.flatnonzero(ta.special):
        assert ta.words[ta.word_index[i]] == ta.tokens[i]
    assert all(isinstance(w, str) and w for w in ta.words)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=40), pair=st.one_of(st.none(), st.text(max_size=20)))
def test_any_text_gives_a_valid_result_or_an_input_error(tiny_model, text, pair):
    try:
        ta = text_attention(tiny_model, text, pair)
    except attnviz.InputError:
        return
    check_valid(ta)


def test_words_and_word_index(tiny_model):
    text = "The Quick foxes JUMPED, unbelievably."
    ta = text_attention(tiny_model, text)
    check_valid(ta)
    assert ta.words == ["[CLS]", "The", "Quick", "foxes", "JUMPED", ",", "unbelievably", ".", "[SEP]"]
    # Every piece of a word is one of that word's tokens: the pieces spell the lower-cased word.
    for w, word in enumerate(ta.words):
        pieces = [ta.tokens[i] for i in np.flatnonzero(ta.word_index == w)]
        assert "".join(p.removeprefix("##") for p in pieces) in (word.lower(), word)
    # Splitting happened: some word has several pieces.
    assert len(ta.word_index) > len(ta.words)


def test_words_of_a_pair_come_from_their_own_sentence(tiny_model):
    a, b = "Where did the CAT sit?", "On the Mat, quietly."
    ta = text_attention(tiny_model, a, b)
    check_valid(ta)
    word_segment = {int(ta.word_index[i]): int(ta.segment[i]) for i in range(ta.n_tokens)}
    word_special = {int(ta.word_index[i]): bool(ta.special[i]) for i in range(ta.n_tokens)}
    text_words = [ta.words[w] for w in range(len(ta.words)) if word_segment[w] == 0 and not word_special[w]]
    pair_words = [ta.words[w] for w in range(len(ta.words)) if word_segment[w] == 1 and not word_special[w]]
    assert "".join(text_words) == "".join(a.split())
    assert "".join(pair_words) == "".join(b.split())


def test_words_keep_original_accents(tiny_model):
    """Words are documented to keep the input's case and accents, decomposed accents included."""
    composed = text_attention(tiny_model, "Café noir")
    assert composed.words[1] == "Café"
    decomposed = "Cafe\u0301 noir"  # the same word, written as e + combining acute accent (NFD)
    ta = text_attention(tiny_model, decomposed)
    assert ta.words[1] == "Cafe\u0301", f"the combining accent was dropped: {ta.words[1]!r}"


def test_public_name_text_attention_is_the_function():
    """``attnviz.text_attention`` must be the function whatever the user imported before it.

    Importing a submodule binds its name on the package, so a module named like an export
    (``attnviz/text_attention.py``, imported by views, figures and export) would shadow the
    lazily exported function. A fresh interpreter makes the import order the test's own.
    """
    code = (
        "import importlib, pkgutil, types\n"
        "import attnviz\n"
        "for info in pkgutil.walk_packages(attnviz.__path__, 'attnviz.'):\n"
        "    if not info.name.startswith('attnviz.ui'):\n"
        "        importlib.import_module(info.name)\n"
        "modules = [n for n in attnviz.__all__ if isinstance(getattr(attnviz, n), types.ModuleType)]\n"
        "print(type(attnviz.text_attention).__name__, *sorted(modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    modules = ["examples", "export", "figures", "image", "long_views", "maths", "qkv", "static", "text"]
    assert result.stdout.split() == ["function", *modules], result.stdout
