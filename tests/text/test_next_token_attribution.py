"""A decoder's next-token attributions (captum's LLM attribution): completeness of integrated
gradients against the model's own log-probabilities, the explained token, feature ablation, the
lock under threads, the comparison with the last token's attention, and bad input."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import attnviz
from attnviz import InputError, token_attributions
from attnviz.figures.compare import attention_vs_attribution
from attnviz.text.comparison import IG, LAST_TOKEN, ROLLOUT, compare_attention_attribution
from attnviz.text.next_token_attribution import ABLATION, blank_token, next_token_attributions

PROMPT = "The cat sat on the mat. The dog sat on the"


def log_probs(tm, ids: torch.Tensor) -> torch.Tensor:
    """``(V,)`` log-probabilities of the next token after ``ids`` ``(1, n)``, straight from the model."""
    with torch.no_grad():
        return torch.log_softmax(tm.model(input_ids=ids).logits[0, -1].double(), dim=-1)


def prompt_ids(tm, text: str = PROMPT) -> torch.Tensor:
    return tm.tokenizer(text, return_tensors="pt")["input_ids"]


def blanked(tm, ids: torch.Tensor) -> torch.Tensor:
    """The baseline the module docstring promises: every token after the first becomes a space."""
    (space,) = tm.tokenizer.encode(" ", add_special_tokens=False)
    out = torch.full_like(ids, space)
    out[0, 0] = ids[0, 0]
    return out


# ---------------------------------------------------------------- integrated gradients


def test_completeness_against_the_models_own_log_probabilities(tiny_decoder):
    """sum(scores) = log p(x) - log p(baseline), both computed here with the model, to captum's delta."""
    tm = tiny_decoder
    a = token_attributions(tm, PROMPT, n_steps=300)
    ids = prompt_ids(tm)
    target = a.next_token_id
    at_input, at_baseline = log_probs(tm, ids)[target], log_probs(tm, blanked(tm, ids))[target]
    assert a.kind == "next token" and a.method == IG and a.blank_token == " "
    assert a.tokens == attnviz.text_attention(tm, PROMPT).tokens
    assert a.value == pytest.approx(float(at_input), abs=1e-5)
    assert a.baseline_values[0] == pytest.approx(float(at_baseline), abs=1e-5)
    change = float(at_input - at_baseline)
    assert abs(change) > 1e-3  # the check below would hold trivially for an input equal to its baseline
    assert a.scores.sum() == pytest.approx(change, abs=1e-3 * max(1.0, abs(change)))
    assert a.delta == pytest.approx(a.scores.sum() - change, abs=1e-5)
    assert a.scores[0] == 0 and np.count_nonzero(a.scores[1:]) == len(a.tokens) - 1


def test_the_explained_token_is_the_models_top_choice(tiny_decoder):
    tm = tiny_decoder
    a = token_attributions(tm, PROMPT, n_steps=4)
    lp = log_probs(tm, prompt_ids(tm))
    top = int(lp.argmax())
    assert a.next_token_id == top
    assert a.next_token == tm.tokenizer.decode([top])
    assert a.value == pytest.approx(float(lp[top]), abs=1e-5)
    assert a.next_token_probability == pytest.approx(float(lp[top].exp()), rel=1e-5)
    assert "the model's top choice" in a.target and repr(a.next_token) in a.target


def test_a_chosen_next_token(tiny_decoder):
    tm = tiny_decoder
    lp = log_probs(tm, prompt_ids(tm))
    top = int(lp.argmax())
    (mat,) = tm.tokenizer.encode(" mat", add_special_tokens=False)
    assert mat != top  # a random model: checked, so the test below says something
    by_text = token_attributions(tm, PROMPT, target=" mat", n_steps=8)
    by_id = token_attributions(tm, PROMPT, target=mat, n_steps=8)
    assert by_text.next_token_id == by_id.next_token_id == mat
    np.testing.assert_array_equal(by_text.scores, by_id.scores)
    assert by_text.value == pytest.approx(float(lp[mat]), abs=1e-5)
    assert "its top choice is" in by_text.target
    top_scores = token_attributions(tm, PROMPT, n_steps=8).scores
    assert not np.allclose(by_text.scores, top_scores)


@pytest.mark.bundled
def test_bundled_decoder_log_probability_and_precision(bundled_decoder):
    """SmolLM2: the explained token and its log-probability equal the model's; 50 steps converge to a few %."""
    tm = bundled_decoder
    text = "The capital of France is"
    a = token_attributions(tm, text)
    lp = log_probs(tm, prompt_ids(tm, text))
    top = int(lp.argmax())
    assert (a.next_token_id, a.next_token) == (top, tm.tokenizer.decode([top]))
    assert a.value == pytest.approx(float(lp[top]), abs=1e-4)
    assert a.next_token_probability == pytest.approx(float(lp[top].exp()), rel=1e-4)
    assert a.baseline_values[0] == pytest.approx(float(log_probs(tm, blanked(tm, prompt_ids(tm, text)))[top]), abs=1e-4)
    assert a.relative_delta < 0.05, (a.deltas, a.value, a.baseline_values)
    assert a.tokens == attnviz.text_attention(tm, text).tokens


# ---------------------------------------------------------------- feature ablation


def test_feature_ablation_is_the_drop_when_one_token_is_blanked(tiny_decoder):
    tm = tiny_decoder
    a = next_token_attributions(tm, PROMPT, method=ABLATION)
    ids = prompt_ids(tm)
    (space,) = tm.tokenizer.encode(" ", add_special_tokens=False)
    lp = log_probs(tm, ids)
    target = a.next_token_id
    expected = np.zeros(ids.shape[1])
    for i in range(1, ids.shape[1]):
        ablated = ids.clone()
        ablated[0, i] = space
        expected[i] = float(lp[target] - log_probs(tm, ablated)[target])
    np.testing.assert_allclose(a.scores, expected, atol=1e-4)
    assert a.method == ABLATION and a.deltas == () and np.isnan(a.delta) and a.relative_delta == 0


# ---------------------------------------------------------------- threads and hooks


def test_four_threads_at_once_get_the_serial_results(tiny_decoder_dirs):
    """captum's hook on the shared embeddings must never reach another thread's forward pass."""
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["llama"]), device="cpu")
    texts = [PROMPT, "Attention shows where a model looks", "The animal didn't cross the street", "it was"]
    serial = {t: next_token_attributions(tm, t, n_steps=16).scores for t in texts}
    serial_attention = {t: attnviz.text_attention(tm, t).weights for t in texts}
    start = threading.Barrier(4)

    def attribute(t):
        start.wait(10)  # all four inside captum at the same moment, were it not for the lock
        return next_token_attributions(tm, t, n_steps=16).scores, [attnviz.text_attention(tm, t).weights]

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(attribute, texts))
        for t, (scores, (weights,)) in zip(texts, results, strict=True):
            np.testing.assert_array_equal(scores, serial[t], err_msg=f"attribution of {t!r} changed under threads")
            np.testing.assert_array_equal(weights, serial_attention[t], err_msg=f"attention of {t!r} changed")


def test_the_attribution_waits_for_the_lock_and_leaves_no_hook(tiny_decoder_dirs):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["gpt2"]), device="cpu")
    hooks_before = {n: len(m._forward_hooks) + len(m._forward_pre_hooks) for n, m in tm.model.named_modules()}
    finished = threading.Event()

    def run():
        next_token_attributions(tm, PROMPT, n_steps=4)
        finished.set()

    with tm.lock:
        worker = threading.Thread(target=run)
        worker.start()
        assert not finished.wait(1.0), "the attribution ran while the model's lock was held elsewhere"
    worker.join(60)
    assert finished.is_set()
    assert {n: len(m._forward_hooks) + len(m._forward_pre_hooks) for n, m in tm.model.named_modules()} == hooks_before
    assert all(p.grad is None for p in tm.model.parameters())


# ---------------------------------------------------------------- attention vs attribution


def test_comparison_reads_the_last_tokens_attention(tiny_decoder):
    tm = tiny_decoder
    ta = attnviz.text_attention(tm, PROMPT)
    a = token_attributions(tm, PROMPT, n_steps=8)
    cmp = compare_attention_attribution(ta, a, head_fusion="max", discard_ratio=0.1)
    assert cmp.causal and cmp.query == "the last token" and cmp.methods == (IG, ROLLOUT, LAST_TOKEN)
    np.testing.assert_array_equal(cmp.positions, np.arange(1, ta.n_tokens))  # the first token left out
    assert cmp.tokens == ta.tokens[1:]
    np.testing.assert_allclose(cmp.attribution, a.scores[1:])
    flow = attnviz.rollout(ta.weights, "max", 0.1, causal=True)[-1]
    np.testing.assert_allclose(cmp.scores[ROLLOUT], flow[1:], atol=1e-7)
    np.testing.assert_allclose(cmp.scores[LAST_TOKEN], ta.weights[-1, :, -1, :].mean(axis=0)[1:], atol=1e-7)
    assert len(cmp.correlations) == 3 and cmp.correlations["spearman"].between(-1, 1).all()
    titles = [t.text for t in attention_vs_attribution(cmp).layout.annotations]
    assert any("from the last token" in t for t in titles) and any(LAST_TOKEN in t for t in titles)
    assert not any("[CLS]" in t for t in titles)


def test_ablation_scores_compare_under_their_own_name(tiny_decoder_dirs):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["qwen2"]), device="cpu")
    ablation = next_token_attributions(tm, PROMPT, method=ABLATION)
    cmp = compare_attention_attribution(attnviz.text_attention(tm, PROMPT), ablation)
    assert cmp.methods[0] == ABLATION and set(cmp.correlations["first"]) == {ABLATION, ROLLOUT}


def test_a_two_token_prompt_is_too_short_to_compare(tiny_decoder_dirs):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["llama"]), device="cpu")
    text = "The cat"
    assert len(prompt_ids(tm, text)[0]) == 2
    with pytest.raises(InputError, match="after the first one"):
        compare_attention_attribution(attnviz.text_attention(tm, text), token_attributions(tm, text, n_steps=4))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text": "   "}, "empty"),
        ({"text": PROMPT, "text_pair": "A second sentence."}, "one text"),
        ({"text": PROMPT, "target": " mattress xyz"}, "tokens of this model"),
        ({"text": PROMPT, "target": ""}, "empty"),
        ({"text": PROMPT, "target": 10**6}, "token id from 0"),
        ({"text": PROMPT, "target": True}, "token id from 0"),
        ({"text": PROMPT, "n_steps": 1}, "n_steps"),
    ],
)
def test_bad_input(tiny_decoder, kwargs, message):
    with pytest.raises(InputError, match=message):
        token_attributions(tiny_decoder, **kwargs)


def test_bad_method_and_an_encoder(tiny_decoder_dirs, tiny_model):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["gpt2"]), device="cpu")
    with pytest.raises(InputError, match="method must be one of"):
        next_token_attributions(tm, PROMPT, method="saliency")
    with pytest.raises(InputError, match="decoder's next token"):
        next_token_attributions(tiny_model, "the cat sat .")


def test_one_token_prompt_has_nothing_to_attribute(tiny_decoder_dirs):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["gpt2"]), device="cpu")
    with pytest.raises(InputError, match="Nothing to attribute"):
        token_attributions(tm, "The", n_steps=4)


def test_blank_token_falls_back_when_a_space_is_not_one_token():
    class Tokenizer:
        pad_token_id, eos_token_id, unk_token_id = None, 7, 3

        def encode(self, text, add_special_tokens=False):
            return [5, 6]

    assert blank_token(Tokenizer()) == 7
