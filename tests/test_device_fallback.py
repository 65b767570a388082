"""GPU out of memory -> the model moves to the CPU, the call is retried there, a notice says so;
and the ``ATTNVIZ_THREADS`` setting.

There is no GPU here, so the tests stand in for a full one: the model's ``device`` is set to
``meta`` (tensors sent there hold no data, as GPU memory is out of the CPU's reach) and the
module's ``forward`` raises ``torch.OutOfMemoryError`` whenever its input is on that device, as a
CUDA allocation failure would. The weights stay on the CPU, so the retry after the fallback gives
real numbers, compared with a normal run of the same model.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import attnviz
from attnviz import device as device_module
from attnviz.device import (
    DEFAULT_THREADS,
    THREADS_ENV,
    apply_thread_setting,
    falls_back_to_cpu,
    is_out_of_memory,
    thread_setting,
)
from attnviz.errors import InputError
from attnviz.image import generated_shapes
from attnviz.image.attribution import gradcam, integrated_gradients
from attnviz.text.attribution import token_attributions

SENTENCE = "The cat sat on the mat."
PAIR = "Where did the cat sit?"
CPU = torch.device("cpu")


def pretend_gpu(monkeypatch, model) -> dict:
    """``model`` "runs on a GPU" that is full; returns counts of forward calls and of failed ones."""
    module = model.model
    real_forward = module.forward
    calls = {"n": 0, "failed": 0}

    def forward(*args, **kwargs):
        calls["n"] += 1
        if any(isinstance(a, torch.Tensor) and a.is_meta for a in (*args, *kwargs.values())):
            calls["failed"] += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(module, "forward", forward)  # an instance attribute: nn.Module.__call__ uses it
    model.device = torch.device("meta")
    model.notice = None
    return calls


def assert_fell_back(model, calls: dict, what: str) -> None:
    assert model.device == CPU
    assert calls["failed"] == 1 and calls["n"] >= 2, calls  # failed once, then ran
    assert model.notice is not None
    assert "GPU" in model.notice and "ran out of memory" in model.notice
    assert f"while {what}" in model.notice
    assert "now runs on the CPU, which is slower" in model.notice


@pytest.fixture
def text_model(tiny_bert_dir):
    """A model of its own: the fallback changes it, so the shared fixtures must not be used."""
    return attnviz.load_text_model(str(tiny_bert_dir), device="cpu")


@pytest.fixture
def image_model():
    return attnviz.load_image_model(device="cpu")


def test_cuda_out_of_memory_is_the_class_caught():
    assert issubclass(torch.cuda.OutOfMemoryError, torch.OutOfMemoryError)
    oom = torch.OutOfMemoryError("x")
    assert is_out_of_memory(oom, torch.device("cuda"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"), torch.device("mps"))
    assert is_out_of_memory(RuntimeError("CUDA error: out of memory"), torch.device("cuda", 1))
    assert not is_out_of_memory(oom, CPU)  # on the CPU there is nowhere to go
    assert not is_out_of_memory(RuntimeError("shape mismatch"), torch.device("cuda"))


# ---------------------------------------------------------------- text


def test_text_attention(monkeypatch, text_model):
    expected = attnviz.text_attention(text_model, SENTENCE, PAIR)
    calls = pretend_gpu(monkeypatch, text_model)
    got = attnviz.text_attention(text_model, SENTENCE, PAIR)
    assert_fell_back(text_model, calls, "computing attention")
    assert got.tokens == expected.tokens
    np.testing.assert_array_equal(got.weights, expected.weights)
    # From now on it runs on the CPU: no second fallback, the notice stays.
    notice, n = text_model.notice, calls["n"]
    again = attnviz.text_attention(text_model, SENTENCE)
    assert text_model.device == CPU and text_model.notice == notice and calls["n"] == n + 1
    assert again.n_tokens < got.n_tokens


def test_explain_head(monkeypatch, text_model):
    expected = attnviz.explain_head(text_model, SENTENCE, layer=1, head=2)
    calls = pretend_gpu(monkeypatch, text_model)
    got = attnviz.explain_head(text_model, SENTENCE, layer=1, head=2)
    assert_fell_back(text_model, calls, "explaining a head")
    np.testing.assert_array_equal(got.weights, expected.weights)
    np.testing.assert_array_equal(got.model_context, expected.model_context)
    assert got.weights_error < 1e-5


def test_token_attributions(monkeypatch, text_model):
    expected = token_attributions(text_model, SENTENCE, PAIR, n_steps=8)
    plain = attnviz.text_attention(text_model, SENTENCE).weights
    calls = pretend_gpu(monkeypatch, text_model)
    got = token_attributions(text_model, SENTENCE, PAIR, n_steps=8)
    assert_fell_back(text_model, calls, "computing integrated gradients")
    np.testing.assert_array_equal(got.scores, expected.scores)
    assert got.deltas == expected.deltas and got.value == expected.value
    # captum removed its hook after the failed call and after the retry: plain passes are unchanged.
    assert not text_model.model.embeddings._forward_hooks
    np.testing.assert_array_equal(attnviz.text_attention(text_model, SENTENCE).weights, plain)


def test_corpus_stats(monkeypatch, text_model):
    sentences = [SENTENCE, PAIR, "A dog ran over the road.", "Some people play the guitar."]
    expected = attnviz.corpus_head_stats(text_model, sentences, batch_size=2)
    calls = pretend_gpu(monkeypatch, text_model)
    got = attnviz.corpus_head_stats(text_model, sentences, batch_size=2)
    assert_fell_back(text_model, calls, "computing corpus statistics")
    assert got.sentences == expected.sentences == 4 and got.tokens == expected.tokens
    numbers = expected.table.select_dtypes("number").columns
    np.testing.assert_allclose(got.table[numbers].to_numpy(), expected.table[numbers].to_numpy(), atol=1e-6)


def test_an_error_that_is_not_out_of_memory_is_raised_and_the_model_stays(monkeypatch, text_model):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug, not memory")

    monkeypatch.setattr(text_model.model, "forward", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        attnviz.text_attention(text_model, SENTENCE)
    assert text_model.device == CPU and text_model.notice is None
    with pytest.raises(InputError):  # input errors pass through untouched
        attnviz.text_attention(text_model, "   ")


def test_a_call_whose_model_another_thread_moved_meanwhile_is_run_again(monkeypatch, text_model):
    """Its inputs were made for the GPU, the weights are on the CPU now: it fails once, then runs."""
    expected = attnviz.text_attention(text_model, SENTENCE)
    real_forward = text_model.model.forward
    calls = {"n": 0}

    def forward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            text_model.device = CPU  # what move_to_cpu in another thread does, under the lock
            raise RuntimeError("Expected all tensors to be on the same device (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(text_model.model, "forward", forward)
    text_model.device = torch.device("meta")
    got = attnviz.text_attention(text_model, SENTENCE)
    np.testing.assert_array_equal(got.weights, expected.weights)
    assert calls["n"] == 2 and text_model.notice is None  # not an out-of-memory: no notice


def test_concurrent_calls_move_the_model_once(monkeypatch, text_model):
    expected = [attnviz.text_attention(text_model, f"{SENTENCE} {i}").weights for i in range(6)]
    pretend_gpu(monkeypatch, text_model)
    moves = []
    real_move = device_module.move_to_cpu
    monkeypatch.setattr(device_module, "move_to_cpu", lambda m, what: moves.append(real_move(m, what)) or moves[-1])
    results = [None] * 6
    threads = [
        threading.Thread(
            target=lambda i=i: results.__setitem__(i, attnviz.text_attention(text_model, f"{SENTENCE} {i}"))
        )
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got.weights, want)
    assert moves.count(True) == 1 and text_model.device == CPU


# ---------------------------------------------------------------- images


@pytest.mark.bundled
def test_image_attention(monkeypatch, image_model):
    image = generated_shapes.demo_samples()[0].image
    expected = attnviz.image_attention(image_model, image)
    calls = pretend_gpu(monkeypatch, image_model)
    got = attnviz.image_attention(image_model, image)
    assert_fell_back(image_model, calls, "computing image attention")
    np.testing.assert_array_equal(got.weights, expected.weights)
    assert got.predictions == expected.predictions


@pytest.mark.bundled
@pytest.mark.parametrize(
    ("method", "what"),
    [(gradcam, "computing Grad-CAM"), (integrated_gradients, "computing Integrated Gradients")],
)
def test_gradient_maps(monkeypatch, image_model, method, what):
    image = generated_shapes.demo_samples()[3].image
    target = image_model.classes[1]
    expected = method(image_model, image, target)
    calls = pretend_gpu(monkeypatch, image_model)
    got = method(image_model, image, target)
    assert_fell_back(image_model, calls, what)
    np.testing.assert_array_equal(got.pixels, expected.pixels)
    np.testing.assert_array_equal(got.grid, expected.grid)
    assert got.delta == expected.delta


# ---------------------------------------------------------------- the decorator itself


def test_the_decorator_keeps_the_function_and_lets_non_models_through():
    assert attnviz.text_attention.__name__ == "text_attention"
    assert "Attention weights of every layer" in attnviz.text_attention.__doc__

    @falls_back_to_cpu("testing")
    def f(model, x):
        return x + 1

    assert f(object(), 1) == 2  # no device/lock: called as is
    with pytest.raises(InputError, match="explain_head needs the TextModel"):
        attnviz.explain_head("not a model", SENTENCE, 0, 0)


# ---------------------------------------------------------------- ATTNVIZ_THREADS


@pytest.fixture
def fresh_threads(monkeypatch):
    """The setting read anew, and PyTorch's thread count restored afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(device_module, "_threads", None)
    monkeypatch.setattr(device_module, "_threads_problem", None)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("raw", "value"), [(None, DEFAULT_THREADS), ("", DEFAULT_THREADS), ("2", 2), (" 3 ", 3), ("0", 0)]
)
def test_thread_setting_values(monkeypatch, raw, value):
    if raw is None:
        monkeypatch.delenv(THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(THREADS_ENV, raw)
    assert thread_setting() == value


@pytest.mark.parametrize("raw", ["two", "1.5", "-1", "100000"])
def test_a_bad_thread_setting_is_refused_with_a_message(monkeypatch, raw):
    monkeypatch.setenv(THREADS_ENV, raw)
    with pytest.raises(InputError, match=rf"{THREADS_ENV}='{raw}' is not a number of CPU threads.*0 to keep"):
        thread_setting()


def test_the_setting_is_applied_when_a_model_loads(monkeypatch, fresh_threads, tiny_bert_dir):
    monkeypatch.setenv(THREADS_ENV, "2")
    torch.set_num_threads(1)
    tm = attnviz.load_text_model(str(tiny_bert_dir), device="cpu")
    assert torch.get_num_threads() == 2
    seen = []  # a thread started later (a Streamlit script run) has the count too
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [2]
    # Applied once: a second model, a changed variable or the user's own choice afterwards stay.
    monkeypatch.setenv(THREADS_ENV, "1")
    torch.set_num_threads(3)
    attnviz.load_text_model(str(tiny_bert_dir), device="cpu")
    attnviz.text_attention(tm, SENTENCE)
    assert torch.get_num_threads() == 3


def test_zero_keeps_pytorchs_own_count(monkeypatch, fresh_threads):
    monkeypatch.setenv(THREADS_ENV, "0")
    torch.set_num_threads(2)
    assert apply_thread_setting() == 2 and torch.get_num_threads() == 2


def test_a_bad_value_warns_once_and_uses_the_default(monkeypatch, fresh_threads):
    monkeypatch.setenv(THREADS_ENV, "lots")
    with pytest.warns(RuntimeWarning, match=f"{THREADS_ENV}='lots' is not a number of CPU threads.*Using 1"):
        assert apply_thread_setting() == DEFAULT_THREADS
    assert torch.get_num_threads() == DEFAULT_THREADS
    assert "Using 1" in device_module.thread_setting_problem()


# ---------------------------------------------------------------- the text page


@pytest.mark.bundled
def test_the_text_page_shows_the_notice_and_the_cpu_results(monkeypatch, bundled_model):
    from attnviz.text.loading import BUNDLED_TEXT_MODEL
    from attnviz.ui.cache import configured_device
    from attnviz.ui.cache import text_model as cached_model
    from tests.pages.apptest_helpers import assert_clean, chart, heatmap_z, start_clean

    shared = cached_model(BUNDLED_TEXT_MODEL, configured_device())  # the object every session uses
    monkeypatch.setattr(shared, "device", shared.device)  # put back afterwards, with the notice
    monkeypatch.setattr(shared, "notice", None)
    sentence = "A simulated GPU filled up while reading this sentence."
    expected = attnviz.text_attention(bundled_model, sentence).weights
    calls = pretend_gpu(monkeypatch, shared)

    at = start_clean("pages/text.py")
    at.text_area(key="text_input").input(sentence).run()
    assert_clean(at)
    assert_fell_back(shared, calls, "computing attention")
    warnings = [w.value for w in at.warning]
    assert sum("ran out of memory" in w and "now runs on the CPU" in w for w in warnings) == 1, warnings
    np.testing.assert_allclose(heatmap_z(chart(at, "matrix_chart")), expected[0, 0], atol=1e-6)

    # Another session, later: the notice is shown from the start, the model runs on the CPU.
    other = start_clean("pages/text.py")
    assert sum("ran out of memory" in w.value for w in other.warning) == 1
    other.text_area(key="text_input").input(sentence).run()
    np.testing.assert_allclose(heatmap_z(chart(other, "matrix_chart")), expected[0, 0], atol=1e-6)
    assert sum("ran out of memory" in w.value for w in other.warning) == 1
    assert shared.device == CPU and calls["failed"] == 1
