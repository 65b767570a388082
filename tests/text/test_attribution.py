"""Integrated-gradients attributions: one finite value per token, the target each head implies,
captum's convergence delta, hooks removed, and no interference with concurrent extractions."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import attnviz
from attnviz import InputError, token_attributions
from attnviz.text.comparison import IG, LAST, METHODS, ROLLOUT, compare_attention_attribution
from tests.helpers import TINY_MAX, headed_model

SENTENCE = "the cat sat on the mat because it was tired ."
PAIR = ("a man is playing a guitar .", "someone plays an instrument .")


def check_completeness(a, atol: float = 1e-4) -> None:
    """Each run's attributions add up to F(input) - F(baseline), up to captum's delta."""
    runs = [~a.special] if a.kind != "similarity" else [~a.special & (a.segment == s) for s in (0, 1)]
    for run, base, delta in zip(runs, a.baseline_values, a.deltas, strict=True):
        assert a.scores[run].sum() - (a.value - base) == pytest.approx(delta, abs=atol)


# ---------------------------------------------------------------- plain encoders


def test_tiny_single_sentence_explains_the_norm(tiny_model):
    a = token_attributions(tiny_model, SENTENCE, n_steps=20)
    ta = attnviz.text_attention(tiny_model, SENTENCE)
    assert a.tokens == ta.tokens
    assert a.scores.shape == (ta.n_tokens,) and np.isfinite(a.scores).all()
    assert (a.scores[a.special] == 0).all() and (a.scores[~a.special] != 0).any()
    assert a.kind == "norm" and "norm" in a.target
    assert len(a.deltas) == 1 and np.isfinite(a.delta)
    check_completeness(a)


def test_tiny_pair_explains_the_similarity_one_sentence_at_a_time(tiny_model):
    a = token_attributions(tiny_model, *PAIR, n_steps=20)
    assert a.kind == "similarity" and "cosine similarity" in a.target
    assert a.tokens == attnviz.text_attention(tiny_model, *PAIR).tokens
    assert len(a.baseline_values) == len(a.deltas) == 2
    assert np.isfinite(a.scores).all()
    check_completeness(a)
    norm = token_attributions(tiny_model, *PAIR, target="norm", n_steps=20)
    assert norm.kind == "norm" and len(norm.deltas) == 1


@pytest.mark.parametrize("args", [(SENTENCE,), PAIR], ids=["single", "pair"])
def test_tiny_likeness_to_the_whole_text(tiny_model, args):
    """The cosine of the pooled embedding with the full input's: 1 at the input, one run with every word blanked."""
    a = token_attributions(tiny_model, *args, target="whole text", n_steps=20)
    assert a.kind == "whole text" and "to the full input's" in a.target
    assert a.value == pytest.approx(1.0, abs=1e-5)
    assert len(a.baseline_values) == len(a.deltas) == 1 and a.baseline_values[0] < 1.0
    assert np.isfinite(a.scores).all() and (a.scores[a.special] == 0).all()
    check_completeness(a)


def test_an_unknown_encoder_target_names_the_three(tiny_model):
    with pytest.raises(InputError, match="'whole text'"):
        token_attributions(tiny_model, SENTENCE, target="meaning", n_steps=4)


@pytest.mark.bundled
@pytest.mark.parametrize("args", [(SENTENCE,), PAIR], ids=["single", "pair"])
def test_bundled_model(bundled_model, args):
    a = token_attributions(bundled_model, *args)
    assert a.tokens == attnviz.text_attention(bundled_model, *args).tokens
    assert np.isfinite(a.scores).all() and len(a.scores) == len(a.tokens)
    assert a.n_steps == 50
    # Gauss-Legendre with 50 steps integrates this smooth path to well under 1%.
    assert a.relative_delta < 0.01, (a.deltas, a.value, a.baseline_values)
    check_completeness(a, atol=1e-3)


def test_more_steps_give_the_same_attributions_more_precisely(tiny_model):
    coarse = token_attributions(tiny_model, SENTENCE, n_steps=5)
    fine = token_attributions(tiny_model, SENTENCE, n_steps=100)
    assert abs(fine.delta) <= abs(coarse.delta) + 1e-6
    np.testing.assert_allclose(fine.scores, coarse.scores, atol=0.05 * np.abs(fine.scores).max())


def test_long_input_is_cut_like_text_attention(tiny_model):
    text = " ".join(["cat"] * (TINY_MAX + 10))
    a = token_attributions(tiny_model, text, n_steps=4)
    assert a.truncated and a.n_cut == 12 and len(a.tokens) == TINY_MAX


# ---------------------------------------------------------------- heads


def test_classification_head_explains_the_predicted_class(tiny_bert_dir):
    tm = headed_model(tiny_bert_dir, "classification")
    a = token_attributions(tm, SENTENCE, n_steps=20)
    with torch.no_grad():
        logits = tm.model(**tm.tokenizer(SENTENCE, return_tensors="pt")).logits[0]
    predicted = int(logits.argmax())
    assert a.kind == "class" and f"class {predicted}" in a.target and "the predicted class" in a.target
    assert a.value == pytest.approx(float(logits[predicted]), abs=1e-5)
    check_completeness(a)
    other = (predicted + 1) % 3
    b = token_attributions(tm, SENTENCE, target=other, n_steps=20)
    assert f"class {other}" in b.target and "predicts class" in b.target
    with pytest.raises(InputError, match="class index from 0 to 2"):
        token_attributions(tm, SENTENCE, target=3)


def test_masked_lm_head_explains_the_token_at_the_mask(tiny_bert_dir):
    tm = headed_model(tiny_bert_dir, "masked-lm")
    text = "the cat sat on the [MASK] ."
    a = token_attributions(tm, text, n_steps=20)
    position = a.tokens.index("[MASK]")
    assert a.kind == "masked token" and f"token {position}" in a.target and "predicted token" in a.target
    assert a.scores[position] == 0  # [MASK] is kept in the baseline
    check_completeness(a)
    b = token_attributions(tm, text, target="dog", n_steps=20)
    assert "'dog'" in b.target
    with pytest.raises(InputError, match=r"write \[MASK\] where a word should be predicted"):
        token_attributions(tm, SENTENCE)
    with pytest.raises(InputError, match="not a token"):
        token_attributions(tm, text, target="zebra-xyz")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text": ""}, "empty"),
        ({"text": "   "}, "empty"),
        ({"text": "\u200b"}, "empty"),  # the blank rule of text_attention
        ({"text": "\u0301"}, "kept nothing"),  # visible, but the tokenizer keeps nothing of it
        ({"text": SENTENCE, "target": "similarity"}, "give text_pair"),
        ({"text": SENTENCE, "target": 2}, "plain encoder"),
        ({"text": SENTENCE, "n_steps": 1}, "n_steps"),
    ],
)
def test_bad_input(tiny_model, kwargs, message):
    with pytest.raises(InputError, match=message):
        token_attributions(tiny_model, **kwargs)


def test_a_zero_width_second_sentence_is_no_pair(tiny_model):
    alone = token_attributions(tiny_model, SENTENCE, n_steps=8)
    with_blank = token_attributions(tiny_model, SENTENCE, "\u200b", n_steps=8)
    assert with_blank.tokens == alone.tokens and with_blank.target == alone.target
    np.testing.assert_allclose(with_blank.scores, alone.scores, atol=1e-6)


def hooks(model: torch.nn.Module) -> dict[str, list]:
    # transformers keeps hooks of its own (to capture attentions): compare, do not expect none.
    return {
        name: [*m._forward_hooks.values(), *m._forward_pre_hooks.values(), *m._backward_hooks.values()]
        for name, m in model.named_modules()
    }


def test_hooks_are_removed_and_the_model_is_unchanged(tiny_model):
    attnviz.text_attention(tiny_model, SENTENCE)
    before = {k: v.clone() for k, v in tiny_model.model.state_dict().items()}
    hooks_before = hooks(tiny_model.model)
    token_attributions(tiny_model, SENTENCE, n_steps=4)
    with pytest.raises(InputError):
        token_attributions(tiny_model, SENTENCE, target="bogus")
    assert hooks(tiny_model.model) == hooks_before
    for k, v in tiny_model.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in tiny_model.model.parameters())


def test_hooks_and_lock_are_released_when_the_model_fails(tiny_model, monkeypatch):
    from attnviz.text import attribution

    hooks_before = hooks(tiny_model.model)
    calls = []

    def failing(self, *args):
        calls.append(1)
        raise RuntimeError("boom inside the forward pass")

    monkeypatch.setattr(attribution._Objective, "__call__", failing)
    with pytest.raises(RuntimeError, match="boom"):
        token_attributions(tiny_model, SENTENCE, n_steps=4)
    assert calls
    assert hooks(tiny_model.model) == hooks_before
    free = []

    def try_lock():  # from another thread: an RLock still held by this one would block it
        got = tiny_model.lock.acquire(timeout=5)
        free.append(got)
        if got:
            tiny_model.lock.release()

    worker = threading.Thread(target=try_lock)
    worker.start()
    worker.join()
    assert free == [True]


# ---------------------------------------------------------------- threads


@pytest.mark.bundled
def test_concurrent_attributions_and_extractions_match_serial_runs(bundled_model):
    """captum's hook on the shared embeddings must never touch another thread's forward pass."""
    tm = bundled_model
    texts = [SENTENCE, "where did the cat sit ?", "the dog ran across the long road"]
    serial_attention = {t: attnviz.text_attention(tm, t).weights for t in texts}
    serial_attribution = {t: token_attributions(tm, t, n_steps=8).scores for t in texts}

    def extract(t):
        return "attention", t, attnviz.text_attention(tm, t).weights

    def attribute(t):
        return "attribution", t, token_attributions(tm, t, n_steps=8).scores

    jobs = [(extract, t) for t in texts * 8] + [(attribute, t) for t in texts * 2]
    order = np.random.default_rng(0).permutation(len(jobs))
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda i: jobs[i][0](jobs[i][1]), order))
    assert len(results) == 30
    for kind, t, value in results:
        expected = serial_attention[t] if kind == "attention" else serial_attribution[t]
        np.testing.assert_allclose(value, expected, atol=1e-6, err_msg=f"{kind} of {t!r} changed under threads")


def test_attribution_holds_the_model_lock(tiny_model):
    """While another thread holds the lock, an attribution waits (and so cannot hook a forward pass)."""
    started, finished = threading.Event(), threading.Event()

    def run():
        started.set()
        token_attributions(tiny_model, SENTENCE, n_steps=4)
        finished.set()

    with tiny_model.lock:
        worker = threading.Thread(target=run)
        worker.start()
        started.wait(5)
        assert not finished.wait(1.0), "the attribution ran while the model's lock was held elsewhere"
    worker.join(60)
    assert finished.is_set()


# ---------------------------------------------------------------- attention vs attribution


def test_comparison_of_attention_and_attribution(tiny_model):
    ta = attnviz.text_attention(tiny_model, SENTENCE)
    a = token_attributions(tiny_model, SENTENCE, n_steps=10)
    cmp = compare_attention_attribution(ta, a, head_fusion="max", discard_ratio=0.1)
    words = [t for t, s in zip(ta.tokens, ta.special, strict=True) if not s]
    assert cmp.tokens == words
    np.testing.assert_allclose(cmp.scores[IG], np.abs(a.scores[~a.special]))
    np.testing.assert_allclose(cmp.scores[ROLLOUT], attnviz.rollout(ta.weights, "max", 0.1)[0][~ta.special], atol=1e-7)
    np.testing.assert_allclose(cmp.scores[LAST], ta.weights[-1, :, 0, :].mean(axis=0)[~ta.special], atol=1e-7)
    assert len(cmp.correlations) == 3
    assert set(zip(cmp.correlations["first"], cmp.correlations["second"], strict=True)) == {
        (METHODS[0], METHODS[1]),
        (METHODS[0], METHODS[2]),
        (METHODS[1], METHODS[2]),
    }
    assert cmp.correlations["spearman"].between(-1, 1).all()
    assert cmp.correlations["meaning"].str.startswith("ρ = ").all()
    other = token_attributions(tiny_model, "a dog ran .", n_steps=4)
    with pytest.raises(InputError, match="different inputs"):
        compare_attention_attribution(ta, other)


def test_token_attributions_is_the_exported_function():
    assert attnviz.token_attributions is token_attributions


def test_attention_vs_attribution_figure(tiny_model):
    from attnviz.figures.compare import NEGATIVE, POSITIVE, attention_vs_attribution

    ta = attnviz.text_attention(tiny_model, SENTENCE)
    cmp = compare_attention_attribution(ta, token_attributions(tiny_model, SENTENCE, n_steps=4))
    fig = attention_vs_attribution(cmp)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 3
    np.testing.assert_allclose(np.asarray(bars[0].y), cmp.attribution)
    np.testing.assert_allclose(np.asarray(bars[1].y), cmp.scores[ROLLOUT])
    assert set(bars[0].marker.color) <= {POSITIVE, NEGATIVE}
    assert len(bars[0].x) == len(cmp.tokens) == len(set(bars[0].x))
    titles = [a.text for a in fig.layout.annotations]
    assert any("ρ with IG" in t for t in titles)
