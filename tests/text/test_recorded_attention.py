"""Attention computed on demand from the recorded queries and keys (issue 13).

The reference is always transformers' own ``output_attentions`` from the eager model (the way
models are loaded), computed here independently of attnviz. Covered: equality with it for the
bundled encoder and decoder at 512 tokens and for tiny GPT-2, Llama and Qwen2 (grouped-query)
decoders at every layer and head; rows, causality, query slices and index errors; the model's
attention implementation put back after a run, a stop or a failure; progress and stop; the
memory of a long input; and two threads at once.
"""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest
import torch

import attnviz
from attnviz.errors import WeightsNotHeld
from attnviz.text.extraction import HELD_BYTES
from attnviz.text.recorded_attention import Stopped
from tests.helpers import WORDS

SENTENCE = "The animal didn't cross the street because it was too tired."


def text_of(tm, n_tokens: int, seed: int = 0) -> str:
    """A prefix of random sentences of the test vocabulary that ``tm``'s tokenizer reads as
    exactly ``n_tokens`` tokens (special tokens included)."""
    rng = np.random.default_rng(seed)
    words = " ".join(w + ("." if i % 11 == 10 else "") for i, w in enumerate(rng.choice(WORDS, 4 * n_tokens)))

    def count(length: int) -> int:
        return len(tm.tokenizer(words[:length]).input_ids)

    lo, hi = 1, len(words)  # the shortest prefix of at least n_tokens tokens
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid) < n_tokens else (lo, mid)
    for length in range(lo, lo + 20):
        if count(length) == n_tokens:
            return words[:length]
    raise AssertionError(f"no text of {n_tokens} tokens for {tm.name}")


def eager_attentions(tm, text: str) -> list[np.ndarray]:
    """transformers' own ``output_attentions`` for ``text``: layer -> float32 ``[heads, n, n]``."""
    assert tm.model.config._attn_implementation == "eager"
    inputs = tm.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = tm.model(**inputs, output_attentions=True)
    assert out.attentions is not None and len(out.attentions) == tm.n_layers
    return [a[0].float().numpy() for a in out.attentions]


def assert_is_eager(tm) -> None:
    """The model runs its own (eager) attention again, and ``output_attentions`` gives weights."""
    assert tm.model.config._attn_implementation == "eager"
    assert tm.model.base_model.config._attn_implementation == "eager"
    attentions = eager_attentions(tm, SENTENCE)
    np.testing.assert_allclose(attentions[0].sum(-1), 1.0, atol=1e-5)


def kv_heads(config) -> int:
    return int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)


def head_dim(config) -> int:
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


@pytest.fixture(scope="session")
def tiny_decoders(tiny_decoder_dirs):
    """Every tiny decoder by family, each loaded once (for the tests that need two at once)."""
    return {family: attnviz.load_text_model(str(folder), device="cpu") for family, folder in tiny_decoder_dirs.items()}


@pytest.fixture(scope="module")
def decoder_512(bundled_decoder):
    """The bundled decoder's recorded attention at 512 tokens, with its progress calls."""
    text = text_of(bundled_decoder, 512)
    calls = []
    ta = attnviz.text_attention(bundled_decoder, text, progress=lambda done, total: calls.append((done, total)))
    return text, ta, calls


# ------------------------------------------------------------------ equal to output_attentions


@pytest.mark.bundled
def test_bundled_encoder_at_512_tokens_equals_output_attentions(bundled_model):
    text = text_of(bundled_model, 512)
    ta = attnviz.text_attention(bundled_model, text)
    assert ta.n_tokens == 512 and not ta.truncated
    eager = eager_attentions(bundled_model, text)
    assert ta.holds_weights  # 6 x 12 x 512² floats = 75 MB
    np.testing.assert_allclose(ta.weights, np.stack(eager), rtol=0, atol=1e-5)
    for layer, head in [(0, 0), (2, 7), (5, 11)]:
        # The on-demand path itself, not only the held array computed from it.
        np.testing.assert_allclose(ta.recorded.head(layer, head), eager[layer][head], rtol=0, atol=1e-5)
        np.testing.assert_allclose(
            ta.recorded.head(layer, head, queries=slice(100, 230)), eager[layer][head, 100:230], rtol=0, atol=1e-5
        )


@pytest.mark.bundled
def test_bundled_decoder_at_512_tokens_equals_output_attentions_head_by_head(bundled_decoder, decoder_512):
    text, ta, _ = decoder_512
    assert ta.n_tokens == 512 and ta.causal
    # 30 x 9 x 512² float32 = 283 MB: more than HELD_BYTES, so only head() works.
    assert 30 * 9 * 512 * 512 * 4 > HELD_BYTES
    assert not ta.holds_weights
    with pytest.raises(WeightsNotHeld, match=r"head\("):
        ta.weights  # noqa: B018
    eager = eager_attentions(bundled_decoder, text)
    for layer in range(ta.n_layers):
        for head in range(ta.n_heads):
            np.testing.assert_allclose(
                ta.head(layer, head), eager[layer][head], rtol=0, atol=1e-5, err_msg=f"layer {layer} head {head}"
            )
    for layer, head in [(0, 3), (17, 8), (29, 0)]:
        np.testing.assert_allclose(
            ta.head(layer, head, queries=slice(300, 420)), eager[layer][head, 300:420], rtol=0, atol=1e-5
        )


def test_tiny_decoders_have_grouped_query_attention_where_expected(tiny_decoders):
    grouped = [f for f, tm in tiny_decoders.items() if kv_heads(tm.model.config) < tm.n_heads]
    assert set(grouped) >= {"llama", "qwen2"}


def test_tiny_decoders_every_layer_and_head_equal_output_attentions(tiny_decoder):
    text = text_of(tiny_decoder, 100)
    ta = attnviz.text_attention(tiny_decoder, text)
    assert ta.n_tokens == 100 and ta.holds_weights
    eager = np.stack(eager_attentions(tiny_decoder, text))
    np.testing.assert_allclose(ta.weights, eager, rtol=0, atol=1e-5)
    for layer in range(ta.n_layers):
        for head in range(ta.n_heads):
            np.testing.assert_allclose(ta.recorded.head(layer, head), eager[layer, head], rtol=0, atol=1e-5)
            np.testing.assert_allclose(
                ta.recorded.layer_rows(layer, 10, 60)[head], eager[layer, head, 10:60], rtol=0, atol=1e-5
            )
    # A grouped-query model's shared key heads are recorded once, not repeated per query head.
    config = tiny_decoder.model.config
    d = head_dim(config)
    assert ta.recorded.nbytes == ta.n_layers * 100 * (ta.n_heads + kv_heads(config)) * d * 4


def test_tiny_encoder_equals_output_attentions(tiny_model):
    text = "the cat sat on the mat because it was tired"
    ta = attnviz.text_attention(tiny_model, text)
    np.testing.assert_allclose(ta.weights, np.stack(eager_attentions(tiny_model, text)), rtol=0, atol=1e-5)


# ------------------------------------------------------------------ rows, causality, slices, indices


def check_head_properties(ta, pairs) -> None:
    n = ta.n_tokens
    for layer, head in pairs:
        w = ta.head(layer, head)
        assert w.shape == (n, n) and w.dtype == np.float32
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
        if ta.causal:
            assert (w[np.triu_indices(n, 1)] == 0.0).all()  # exactly 0, not a small weight
            assert w[0, 0] == 1.0
        for a, b in [(0, 1), (5, 17), (n - 7, n), (n // 2, n + 50)]:
            np.testing.assert_allclose(ta.head(layer, head, queries=slice(a, b)), w[a:b], rtol=0, atol=1e-6)
        assert ta.head(layer, head, queries=slice(9, 9)).shape == (0, n)


@pytest.mark.bundled
def test_on_demand_heads_are_distributions_causal_and_sliceable(decoder_512):
    _, ta, _ = decoder_512
    check_head_properties(ta, [(0, 0), (12, 4), (29, 8)])


def test_held_and_recorded_heads_agree_on_rows_and_slices(tiny_decoder, tiny_model):
    for tm in (tiny_decoder, tiny_model):
        ta = attnviz.text_attention(tm, SENTENCE)
        assert ta.holds_weights
        check_head_properties(ta, [(0, 0), (1, 3)])
        np.testing.assert_allclose(ta.recorded.all_weights(), ta.weights, rtol=0, atol=0)


def test_a_stepped_query_slice_gives_the_same_rows_held_or_not(tiny_decoder):
    ta = attnviz.text_attention(tiny_decoder, SENTENCE)
    for queries in (slice(0, 10, 2), slice(1, None, 3), slice(None, None, -1), slice(-4, None)):
        expected = ta.weights[1, 2][queries]
        np.testing.assert_allclose(ta.head(1, 2, queries=queries), expected, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ta.recorded.head(1, 2, queries=queries), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("layer", "head", "message"),
    [(2, 0, r"layer 2 is out of range.*2 layers"), (-1, 0, "layer -1"), (0, 4, r"head 4 is out of range.*4 heads")],
)
def test_out_of_range_layers_and_heads_are_refused_with_what_exists(tiny_decoders, layer, head, message):
    ta = attnviz.text_attention(tiny_decoders["llama"], SENTENCE)
    for reader in (ta.head, ta.recorded.head):  # the held weights and the on-demand path alike
        with pytest.raises(IndexError, match=message):
            reader(layer, head)
        with pytest.raises(IndexError, match=message):
            reader(layer, head, queries=slice(0, 1))


@pytest.mark.bundled
def test_out_of_range_on_a_long_input_names_the_model_s_layers(decoder_512):
    _, ta, _ = decoder_512
    with pytest.raises(IndexError, match=r"layer 30 is out of range.*30 layers \(0\.\.29\)"):
        ta.head(30, 0)
    with pytest.raises(IndexError, match=r"head 9 is out of range.*9 heads \(0\.\.8\)"):
        ta.head(0, 9)


# ------------------------------------------------------------------ the model's attention afterwards


def test_the_model_runs_eager_attention_again_after_a_run(tiny_decoder, tiny_model):
    for tm in (tiny_decoder, tiny_model):
        attnviz.text_attention(tm, SENTENCE)
        assert_is_eager(tm)


class Boom(Exception):
    pass


def test_the_model_runs_eager_attention_again_after_a_failure_inside_the_forward(tiny_decoder, tiny_model):
    for tm in (tiny_decoder, tiny_model):
        expected = attnviz.text_attention(tm, SENTENCE).weights

        def fail(done, total):
            raise Boom

        with pytest.raises(Boom):
            attnviz.text_attention(tm, SENTENCE, progress=fail)
        assert_is_eager(tm)
        np.testing.assert_array_equal(attnviz.text_attention(tm, SENTENCE).weights, expected)


# ------------------------------------------------------------------ progress and stop


@pytest.mark.bundled
def test_progress_is_called_once_per_layer_of_the_bundled_decoder(decoder_512):
    _, _, calls = decoder_512
    assert calls == [(i, 30) for i in range(1, 31)]


def test_progress_is_called_once_per_layer(tiny_decoder, tiny_model):
    for tm in (tiny_decoder, tiny_model):
        calls = []
        attnviz.text_attention(tm, SENTENCE, progress=lambda *args, calls=calls: calls.append(args))
        assert calls == [(i, tm.n_layers) for i in range(1, tm.n_layers + 1)]


def test_a_set_stop_raises_stopped_and_leaves_the_model_usable(tiny_decoder, tiny_model):
    for tm in (tiny_decoder, tiny_model):
        expected = attnviz.text_attention(tm, SENTENCE).weights
        stop = threading.Event()
        stop.set()
        calls = []
        with pytest.raises(Stopped):
            attnviz.text_attention(tm, SENTENCE, stop=stop, progress=lambda *args, calls=calls: calls.append(args))
        assert calls == []  # stopped before the first layer
        assert_is_eager(tm)
        np.testing.assert_array_equal(attnviz.text_attention(tm, SENTENCE, stop=threading.Event()).weights, expected)


def test_a_stop_set_during_the_run_ends_it_at_the_next_layer(tiny_decoder):
    stop = threading.Event()
    calls = []

    def progress(done, total):
        calls.append(done)
        stop.set()

    with pytest.raises(Stopped):
        attnviz.text_attention(tiny_decoder, SENTENCE, stop=stop, progress=progress)
    assert calls == [1]
    assert_is_eager(tiny_decoder)


# ------------------------------------------------------------------ memory of a long input


@pytest.mark.bundled
def test_a_long_input_keeps_queries_and_keys_not_every_head(bundled_decoder):
    n = 2048
    text = text_of(bundled_decoder, n)
    config = bundled_decoder.model.config
    layers, heads, kv, d = config.num_hidden_layers, config.num_attention_heads, kv_heads(config), head_dim(config)
    assert (layers, heads, kv, d) == (30, 9, 3, 64)
    tracemalloc.start()
    try:
        ta = attnviz.text_attention(bundled_decoder, text)
        _, peak = tracemalloc.get_traced_memory()  # numpy's arrays are traced, torch's tensors are not
    finally:
        tracemalloc.stop()
    assert ta.n_tokens == n and not ta.holds_weights
    # layers x n x (query heads + key heads) x d_head float32 (188 MB), no mask: not 30 x 9 x 2048² (4.5 GB).
    assert ta.recorded.nbytes == layers * n * (heads + kv) * d * 4
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MB of numpy arrays during the run"
    with pytest.raises(WeightsNotHeld, match=r"head\("):
        ta.weights  # noqa: B018
    last = ta.head(29, 8, queries=slice(n - 4, n))
    np.testing.assert_allclose(last.sum(-1), 1.0, atol=1e-5)
    assert (last[:, : n - 4] > 0).any() and (np.triu(ta.head(3, 1, queries=slice(0, 64)), 1)[:, :64] == 0).all()
    assert_is_eager(bundled_decoder)


# ------------------------------------------------------------------ threads


@pytest.mark.bundled
def test_two_threads_on_one_model_get_their_serial_results(bundled_model):
    texts = [text_of(bundled_model, 300, seed=1), text_of(bundled_model, 200, seed=2)]
    serial = [attnviz.text_attention(bundled_model, t).weights for t in texts]
    barrier = threading.Barrier(2)
    results: dict[int, list] = {0: [], 1: []}
    errors = []

    def work(i):
        try:
            barrier.wait(timeout=30)
            for _ in range(3):
                results[i].append(attnviz.text_attention(bundled_model, texts[i]).weights)
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for i in range(2):
        assert len(results[i]) == 3
        for got in results[i]:
            np.testing.assert_allclose(got, serial[i], rtol=0, atol=1e-6)
    assert_is_eager(bundled_model)


def test_a_recording_in_another_thread_keeps_its_own_layers(tiny_decoders):
    """Two models (two locks, so nothing serialises them) recorded at once, interleaved: A records
    its first layer, B its first, then A finishes, then B. Each run keeps only its own layers."""
    llama, qwen = tiny_decoders["llama"], tiny_decoders["qwen2"]
    text_a, text_b = SENTENCE, "The cat sat on the mat. The dog sat on the log."
    serial_a = attnviz.text_attention(llama, text_a).weights
    serial_b = attnviz.text_attention(qwen, text_b).weights
    a_paused, b_paused, a_done = threading.Event(), threading.Event(), threading.Event()
    out, errors = {}, []

    def pause_a(done, total):
        if done == 1:
            a_paused.set()
            assert b_paused.wait(timeout=60)

    def pause_b(done, total):
        if done == 1:
            b_paused.set()
            assert a_done.wait(timeout=60)

    def run_a():
        try:
            out["a"] = attnviz.text_attention(llama, text_a, progress=pause_a)
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            a_paused.set()
            a_done.set()

    def run_b():
        try:
            assert a_paused.wait(timeout=60)
            out["b"] = attnviz.text_attention(qwen, text_b, progress=pause_b)
        except Exception as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            b_paused.set()

    threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert out["a"].recorded.n_layers == llama.n_layers and out["b"].recorded.n_layers == qwen.n_layers
    np.testing.assert_allclose(out["a"].weights, serial_a, rtol=0, atol=1e-6)
    np.testing.assert_allclose(out["b"].weights, serial_b, rtol=0, atol=1e-6)
