"""The scoreboard of explanations on text models: endpoints against independent forward passes, the
random baseline recomputed by hand, threads, errors, and leave-one-out beating random on SmolLM2."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch

import attnviz
from attnviz.maths.explanation_table import COLUMNS, RANDOM
from attnviz.text.explanation_scores import TEXT_METHODS
from attnviz.text.next_token_attribution import blank_token

TEXT = "the cat sat on the mat"
FAST = {"steps": 4, "random_orders": 3}


def next_token_probability(tm, ids: torch.Tensor, token: int) -> float:
    with torch.no_grad():
        return float(tm.model(input_ids=ids).logits[0, -1].float().softmax(-1)[token])


def embedding(tm, ids: torch.Tensor, enc) -> torch.Tensor:
    with torch.no_grad():
        out = tm.model(input_ids=ids, token_type_ids=enc["token_type_ids"], attention_mask=enc["attention_mask"])
    return out.last_hidden_state.mean(dim=1)[0]


def test_decoder_curves_start_at_the_full_score_and_end_at_the_removed_one(tiny_decoder):
    tm = tiny_decoder
    scores = attnviz.score_explanations(tm, TEXT, **FAST)
    ids = tm.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        token = int(tm.model(input_ids=ids).logits[0, -1].argmax())
    full = next_token_probability(tm, ids, token)
    blanked = ids.clone()
    blanked[0, 1:] = blank_token(tm.tokenizer)  # every token but the first (the sink, never removed)
    removed = next_token_probability(tm, blanked, token)
    assert scores.family == "decoder" and len(scores.units) == ids.shape[1] - 1
    assert scores.full_score == pytest.approx(full, rel=1e-4)
    assert scores.removed_score == pytest.approx(removed, rel=1e-4)
    for method in scores.deletion:
        assert scores.deletion[method][0] == 1.0 and scores.insertion[method][-1] == 1.0
        assert scores.deletion[method][-1] == pytest.approx(removed / full, rel=1e-4)
        assert scores.insertion[method][0] == pytest.approx(removed / full, rel=1e-4)
    # one inner point: recency removes the last tokens first; at 1/2, round(m / 2) of them
    m = len(scores.units)
    half = ids.clone()
    half[0, ids.shape[1] - int(np.floor(m / 2 + 0.5)) :] = blank_token(tm.tokenizer)
    curve = scores.deletion["position (recency)"]
    assert curve[2] == pytest.approx(next_token_probability(tm, half, token) / full, rel=1e-4)


def test_decoder_random_band_matches_an_independent_computation(tiny_decoder):
    tm, steps, count, seed = tiny_decoder, 4, 3, 5
    scores = attnviz.score_explanations(tm, TEXT, methods=["random"], steps=steps, random_orders=count, seed=seed)
    ids = tm.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        token = int(tm.model(input_ids=ids).logits[0, -1].argmax())
    full = next_token_probability(tm, ids, token)
    units = np.arange(1, ids.shape[1])
    m = units.size
    k = [int(np.floor(i * m / steps + 0.5)) for i in range(steps + 1)]
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(count):
        order = rng.permutation(m)
        curve = []
        for j in k:
            x = ids.clone()
            x[0, units[order[:j]]] = blank_token(tm.tokenizer)
            curve.append(next_token_probability(tm, x, token) / full)
        curves.append(curve)
    mean, sd = scores.random_band["deletion"]
    np.testing.assert_allclose(mean, np.mean(curves, axis=0), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(sd, np.std(curves, axis=0), rtol=1e-3, atol=1e-6)
    assert list(scores.table["method"]) == [RANDOM]


def test_encoder_endpoints_and_table(tiny_model):
    tm = tiny_model
    scores = attnviz.score_explanations(tm, TEXT, **FAST)
    enc = tm.tokenizer(TEXT, return_tensors="pt")
    ids = enc["input_ids"]
    reference = embedding(tm, ids, enc)
    blanked = ids.clone()
    blanked[0, 1:-1] = tm.tokenizer.pad_token_id  # [CLS] and [SEP] stay
    removed = float(torch.nn.functional.cosine_similarity(embedding(tm, blanked, enc), reference, dim=0))
    assert scores.family == "encoder" and scores.units == TEXT.split()
    assert scores.full_score == pytest.approx(1.0, abs=1e-5)
    assert scores.removed_score == pytest.approx(removed, abs=1e-5)
    table = scores.table
    assert list(table.columns) == list(COLUMNS)
    assert table["deletion_auc"].is_monotonic_increasing
    assert "position (nearness to [CLS])" in set(table["method"])
    assert any(m.startswith("attention (best layer: ") for m in table["method"])
    assert scores.best_layer in (0, 1) and "[PAD]" in scores.removal
    for method in scores.deletion:
        assert scores.deletion[method][0] == 1.0
        assert scores.deletion[method][-1] == pytest.approx(removed / scores.full_score, abs=1e-5)
    assert table.set_index("method").loc["leave-one-out", "loo_spearman"] == pytest.approx(1.0)
    assert set(scores.importance) == set(table["method"]) - {RANDOM}
    assert all(v.shape == (len(scores.units),) for v in scores.importance.values())
    assert np.ptp(scores.importance["attention × gradient"]) > 0  # the attention's gradient reached it
    assert isinstance(scores.summary(), str) and scores.summary().endswith(".")


def test_every_method_of_a_short_input(tiny_model):
    scores = attnviz.score_explanations(tiny_model, "the cat sat", steps=2, random_orders=2)
    assert len(scores.table) == len(TEXT_METHODS)  # attention flow too: 5 tokens is short
    assert scores.fractions.tolist() == [0.0, 0.5, 1.0]
    assert scores.table["seconds"].ge(0).all()


def test_methods_can_be_chosen_and_are_checked(tiny_model):
    scores = attnviz.score_explanations(tiny_model, TEXT, methods=["rollout", "leave-one-out"], **FAST)
    assert sorted(scores.table["method"]) == ["leave-one-out", "rollout"]
    with pytest.raises(attnviz.InputError, match="Unknown method"):
        attnviz.score_explanations(tiny_model, TEXT, methods=["saliency"])


@pytest.mark.parametrize(("text", "match"), [("", "empty"), (" \u200b ", "empty"), ("cat " * 80, "at most")])
def test_bad_text_is_an_input_error(tiny_model, text, match):
    with pytest.raises(attnviz.InputError, match=match):
        attnviz.score_explanations(tiny_model, text)


def test_decoder_errors_and_targets(tiny_decoder):
    with pytest.raises(attnviz.InputError, match="one text"):
        attnviz.score_explanations(tiny_decoder, TEXT, text_pair="a dog")
    with pytest.raises(attnviz.InputError, match="Nothing to remove"):
        attnviz.score_explanations(tiny_decoder, "t")
    chosen = attnviz.score_explanations(tiny_decoder, TEXT, target=7, methods=["leave-one-out"], **FAST)
    ids = tiny_decoder.tokenizer(TEXT, return_tensors="pt")["input_ids"]
    assert chosen.full_score == pytest.approx(next_token_probability(tiny_decoder, ids, 7), rel=1e-4)
    assert "next token" in chosen.target


def test_progress_is_reported_to_the_end(tiny_model):
    calls = []
    attnviz.score_explanations(tiny_model, TEXT, progress=lambda d, t, w: calls.append((d, t, w)), **FAST)
    assert calls and calls[-1][0] == calls[-1][1]
    assert all(d <= t for d, t, _ in calls) and [d for d, _, _ in calls] == sorted(d for d, _, _ in calls)
    assert {"curves", "leave-one-out"} <= {w for _, _, w in calls}


def test_integrated_gradients_reports_progress_as_its_steps_go(tiny_decoder):
    calls = []
    attnviz.score_explanations(
        tiny_decoder, TEXT, methods=["integrated gradients"], progress=lambda d, t, w: calls.append(w), **FAST
    )
    # 16 steps in batches of 4 at most: at least four updates while IG runs, not one at its end.
    assert calls.count("integrated gradients") >= 4


def same(a, b) -> None:
    pd.testing.assert_frame_equal(a.table.drop(columns="seconds"), b.table.drop(columns="seconds"))
    for method in a.deletion:
        np.testing.assert_array_equal(a.deletion[method], b.deletion[method])
        np.testing.assert_array_equal(a.insertion[method], b.insertion[method])


def test_two_threads_get_the_serial_results(tiny_model, tiny_decoder):
    jobs = [(tiny_model, TEXT), (tiny_decoder, TEXT), (tiny_model, "a dog sat on the cat"), (tiny_decoder, "a dog sat")]
    serial = [attnviz.score_explanations(model, text, **FAST) for model, text in jobs]
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def run(i):
        try:
            results[i] = attnviz.score_explanations(jobs[i][0], jobs[i][1], **FAST)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, expected in enumerate(serial):
        same(results[i], expected)


@pytest.mark.bundled
def test_leave_one_out_beats_random_on_the_bundled_decoder(bundled_decoder):
    sentences = [
        "The capital of France is",
        "She opened the door and saw a cat sitting on the",
        "Two plus two equals",
        "After the rain stopped, the children ran outside to play in the",
        "My favourite colour is blue because it reminds me of the",
    ]
    loo, rnd = [], []
    for text in sentences:
        scores = attnviz.score_explanations(
            bundled_decoder, text, methods=["leave-one-out", "random"], steps=10, random_orders=8
        )
        table = scores.table.set_index("method")
        loo.append(table.loc["leave-one-out", "deletion_auc"])
        rnd.append(table.loc[RANDOM, "deletion_auc"])
    assert np.mean(loo) < np.mean(rnd), (loo, rnd)


@pytest.fixture(scope="module")
def headed_encoders(tmp_path_factory, tiny_bert_dir):
    """The tiny BERT with a masked-LM head and with a 3-class head, saved and loaded as folders."""
    from transformers import BertForMaskedLM, BertForSequenceClassification, BertTokenizerFast

    from tests.helpers import tiny_bert_config

    tokenizer = BertTokenizerFast.from_pretrained(str(tiny_bert_dir))
    models = {}
    for name, cls, extra in (
        ("mlm", BertForMaskedLM, {}),
        ("classifier", BertForSequenceClassification, {"num_labels": 3}),
    ):
        torch.manual_seed(0)
        folder = tmp_path_factory.mktemp(name)
        cls(tiny_bert_config(**extra)).save_pretrained(str(folder))
        tokenizer.save_pretrained(str(folder))
        models[name] = attnviz.load_text_model(str(folder), device="cpu")
    return models


def test_masked_lm_follows_the_word_at_mask(headed_encoders):
    tm = headed_encoders["mlm"]
    text = "the cat sat on the [MASK]"
    scores = attnviz.score_explanations(tm, text, methods=["leave-one-out", "rollout"], **FAST)
    enc = tm.tokenizer(text, return_tensors="pt")
    position = int((enc["input_ids"][0] == tm.tokenizer.mask_token_id).nonzero()[0])
    with torch.no_grad():
        probs = tm.model(**enc).logits[0, position].softmax(-1)
    assert scores.full_score == pytest.approx(float(probs.max()), rel=1e-4)
    assert "[MASK]" not in scores.units and len(scores.units) == 5
    with pytest.raises(attnviz.InputError, match="MASK"):
        attnviz.score_explanations(tm, "the cat sat", **FAST)


def test_classifier_follows_the_class_probability(headed_encoders):
    tm = headed_encoders["classifier"]
    scores = attnviz.score_explanations(tm, TEXT, target=2, methods=["leave-one-out"], **FAST)
    enc = tm.tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        assert scores.full_score == pytest.approx(float(tm.model(**enc).logits[0].softmax(-1)[2]), rel=1e-4)
    assert "class 2" in scores.target


def test_an_encoder_pair_removes_tokens_of_both_sentences(tiny_model):
    scores = attnviz.score_explanations(
        tiny_model, "the cat sat", text_pair="a dog ran", methods=["leave-one-out"], **FAST
    )
    assert scores.units == ["the", "cat", "sat", "a", "dog", "ran"]
    assert scores.full_score == pytest.approx(1.0, abs=1e-5)


def test_the_best_layer_is_the_one_that_agrees_best_with_leave_one_out(bundled_decoder):
    """Checked with scipy on the attention read independently: each layer's row of the last token,
    mean over heads, ranked against leave-one-out; the row shows that layer's map."""
    from scipy.stats import spearmanr

    tm = bundled_decoder
    text = "The cat sat on the mat because it was"
    scores = attnviz.score_explanations(tm, text, methods=["attention (best layer)", "leave-one-out"], **FAST)
    ta = attnviz.text_attention(tm, text)
    units = np.arange(1, ta.n_tokens)  # the first token (the sink) is never removed
    loo = scores.importance["leave-one-out"]
    rho = [spearmanr(ta.weights[layer, :, -1].mean(axis=0)[units], loo).statistic for layer in range(tm.n_layers)]
    best = max(reversed(range(tm.n_layers)), key=lambda layer: np.nan_to_num(rho[layer], nan=-np.inf))
    assert scores.best_layer == best
    row = f"attention (best layer: {best})"
    np.testing.assert_allclose(scores.importance[row], ta.weights[best, :, -1].mean(axis=0)[units], atol=1e-5)
    assert scores.table.set_index("method").loc[row, "loo_spearman"] == pytest.approx(rho[best], abs=1e-6)
