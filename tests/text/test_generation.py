"""next_tokens and generate against independent computations: one forward pass of transformers over
the final token ids (attention, logits), transformers' own ``model.generate``, and the refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import attnviz
from attnviz.errors import InputError
from attnviz.figures.matrix import head_matrix
from attnviz.results import AttentionResult
from attnviz.text.generation import MAX_NEW_TOKENS, Generation, generate, next_tokens

PROMPT = "The cat sat on the mat. The dog"
BUNDLED_PROMPT = "The capital of France is"
CHAT = "<|im_start|>user\nIs the sky blue? Answer yes or no.<|im_end|>\n<|im_start|>assistant\n"


def forward(tm, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One forward pass of transformers over ``ids``: (attention [L, H, n, n], logits [n, vocab])."""
    with torch.inference_mode():
        out = tm.model(input_ids=torch.as_tensor(ids)[None], output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).numpy(), out.logits[0].double().numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def stop_ids(tm) -> list[int]:
    """The tokenizer's end-of-sequence id and the generation config's, as model.generate reads them."""
    eos = tm.model.generation_config.eos_token_id
    ids = {tm.tokenizer.eos_token_id} | set(eos if isinstance(eos, list) else [eos])
    return sorted(int(i) for i in ids if i is not None)


def transformers_greedy(tm, gen: Generation, max_new_tokens: int) -> np.ndarray:
    prompt = torch.as_tensor(gen.token_ids[: gen.n_prompt])[None]
    eos = stop_ids(tm)
    with torch.inference_mode():
        out = tm.model.generate(
            prompt, do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=eos[0]
        )
    return out[0].numpy()


def ranks(logits: np.ndarray, gen: Generation) -> list[int]:
    """Rank of each generated token among the logits it was chosen from (0: the most likely)."""
    return [int((logits[a] > logits[a, gen.token_ids[a + 1]]).sum()) for a in range(gen.n_prompt - 1, gen.n_tokens - 1)]


def check_against_one_pass(tm, gen: Generation) -> None:
    """Weights, tokens and probabilities of ``gen`` equal one forward pass over its final ids."""
    n = gen.n_tokens
    assert gen.weights.dtype == np.float32
    assert gen.weights.shape == (tm.n_layers, tm.n_heads, n, n)
    assert gen.n_prompt == len(tm.tokenizer(gen.prompt).input_ids)
    assert gen.n_generated >= 1 and len(gen.probabilities) == gen.n_generated
    weights, logits = forward(tm, gen.token_ids)
    np.testing.assert_allclose(gen.weights, weights, atol=1e-5, rtol=0)
    above = np.triu(np.ones((n, n), dtype=bool), 1)
    assert (gen.weights[..., above] == 0.0).all()  # keys after a query: exactly 0, not small
    np.testing.assert_allclose(gen.weights.sum(-1), 1.0, atol=1e-5)
    # The probability of generated token i is read at the position before it.
    probs = softmax(logits[gen.n_prompt - 1 : n - 1])  # (g, vocab)
    expected = probs[np.arange(gen.n_generated), gen.token_ids[gen.n_prompt :]]
    # Relative: the logits of a pass over the prompt alone and over all n tokens differ by float
    # rounding (~1e-4 after the bundled model's 30 layers), about 1e-5 of a probability of 0.9.
    np.testing.assert_allclose(gen.probabilities, expected, rtol=1e-4, atol=1e-7)
    decode = tm.tokenizer.decode
    new_ids = gen.token_ids[gen.n_prompt :]
    assert gen.generated_tokens == [decode([i], clean_up_tokenization_spaces=False) for i in new_ids]
    assert gen.text.startswith(gen.prompt) and gen.causal


# ------------------------------------------------------------------ tiny decoders (GPT-2, Llama, Qwen2)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generation_rows_equal_one_forward_pass(tiny_decoder, temperature):
    gen = generate(tiny_decoder, PROMPT, max_new_tokens=12, temperature=temperature, seed=3)
    check_against_one_pass(tiny_decoder, gen)


def test_greedy_equals_transformers_generate(tiny_decoder):
    gen = generate(tiny_decoder, PROMPT, max_new_tokens=15)
    assert np.array_equal(gen.token_ids, transformers_greedy(tiny_decoder, gen, 15))
    assert gen.n_generated == 15 or gen.stopped_at_eos


def test_top_k_one_is_greedy_and_sampling_stays_in_the_top_k(tiny_decoder):
    greedy = generate(tiny_decoder, PROMPT, max_new_tokens=10)
    assert np.array_equal(
        generate(tiny_decoder, PROMPT, max_new_tokens=10, temperature=5.0, top_k=1).token_ids, greedy.token_ids
    )
    # A high temperature flattens the distribution: without top_k, tokens far down the ranking come up.
    gen = generate(tiny_decoder, PROMPT, max_new_tokens=20, temperature=50.0, top_k=3, seed=1)
    assert max(ranks(forward(tiny_decoder, gen.token_ids)[1], gen)) < 3
    check_against_one_pass(tiny_decoder, gen)  # probabilities at temperature 1, whatever was sampled
    free = generate(tiny_decoder, PROMPT, max_new_tokens=20, temperature=50.0, seed=1)
    assert max(ranks(forward(tiny_decoder, free.token_ids)[1], free)) >= 3


def test_next_tokens_are_the_softmax_of_the_logits(tiny_decoder):
    ids = np.array(tiny_decoder.tokenizer(PROMPT).input_ids)
    _, logits = forward(tiny_decoder, ids)
    vocab = logits.shape[1]
    for position, row in ((None, len(ids) - 1), (2, 2), (-3, len(ids) - 3)):
        probs = softmax(logits[row])
        top = next_tokens(tiny_decoder, PROMPT, k=5, position=position)
        order = np.argsort(-probs, kind="stable")[:5]
        decode = tiny_decoder.tokenizer.decode
        assert [t for t, _ in top] == [decode([int(i)], clean_up_tokenization_spaces=False) for i in order]
        np.testing.assert_allclose([p for _, p in top], probs[order], atol=1e-6)
        assert all(isinstance(p, float) for _, p in top)
    every = next_tokens(tiny_decoder, PROMPT, k=vocab)
    values = np.array([p for _, p in every])
    assert len(every) == vocab and (np.diff(values) <= 0).all()
    assert values.sum() == pytest.approx(1.0, abs=1e-5)


def test_next_token_is_the_first_greedy_token(tiny_decoder):
    gen = generate(tiny_decoder, PROMPT, max_new_tokens=1)
    (token, p), *_ = next_tokens(tiny_decoder, PROMPT)
    assert gen.generated_tokens == [token]
    assert gen.probabilities[0] == pytest.approx(p, abs=1e-6)


def test_step_attention_is_the_row_that_chose_the_token(tiny_decoder):
    gen = generate(tiny_decoder, PROMPT, max_new_tokens=5)
    for step in range(gen.n_generated):
        row = gen.step_attention(step)
        q = gen.n_prompt + step - 1
        assert gen.step_query(step) == q
        assert row.shape == (tiny_decoder.n_layers, tiny_decoder.n_heads, gen.n_prompt + step)
        np.testing.assert_array_equal(row, gen.weights[:, :, q, : q + 1])
        np.testing.assert_allclose(row.sum(-1), 1.0, atol=1e-5)
    with pytest.raises(InputError, match="step must be .* 0 to 4"):
        gen.step_attention(5)


def test_a_generation_is_a_frozen_result_the_views_draw(tiny_decoder):
    gen = generate(tiny_decoder, PROMPT, max_new_tokens=4)
    assert isinstance(gen, AttentionResult)
    assert gen.row_labels == gen.column_labels == gen.tokens
    assert (gen.n_layers, gen.n_heads) == (2, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        gen.n_prompt = 0
    view = attnviz.make_view(gen)
    assert view.causal and view.weights.shape == gen.weights.shape
    fig = head_matrix(view, 1, 2)
    z = np.asarray(fig.data[0].z, dtype=float)
    lower = np.tril(np.ones_like(z, dtype=bool))
    np.testing.assert_allclose(z[lower], gen.weights[1, 2][lower], atol=1e-6)
    stats = attnviz.head_stats(gen)
    assert len(stats) == 2 * 4


def test_a_prompt_that_would_outgrow_the_limit_is_refused(tiny_decoder):
    limit = tiny_decoder.max_tokens  # 128, the tiny models' context
    ids = tiny_decoder.tokenizer(" cat" * 200).input_ids[: limit - 5]
    prompt = tiny_decoder.tokenizer.decode(ids)
    n = len(tiny_decoder.tokenizer(prompt).input_ids)
    expected = rf"{n} tokens and max_new_tokens is 20.*limit of {limit}.*at most {limit - n} new tokens"
    with pytest.raises(InputError, match=expected):
        generate(tiny_decoder, prompt, max_new_tokens=20)
    assert generate(tiny_decoder, prompt, max_new_tokens=limit - n).n_tokens <= limit
    with pytest.raises(InputError, match=f"past this model's limit of {limit}: shorten it"):
        next_tokens(tiny_decoder, " cat" * 200)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_new_tokens": MAX_NEW_TOKENS + 1}, f"max_new_tokens must be a whole number from 1 to {MAX_NEW_TOKENS}"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a whole number from 1"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number"),
        ({"temperature": -1.0}, "temperature must be 0 .* or a positive number"),
        ({"temperature": float("nan")}, "temperature must be 0"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"temperature": 1.0, "top_k": 0}, "top_k must be a whole number of at least 1"),
        ({"temperature": 1.0, "seed": -1}, "seed must be a whole number from 0"),
        ({"prompt": ""}, "prompt is empty"),
        ({"prompt": " \u200b\n"}, "prompt is empty"),
        ({"prompt": None}, "prompt must be a string"),
    ],
)
def test_generate_refuses_bad_arguments_saying_what_to_do(tiny_decoder_dirs, kwargs, message):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["llama"]), device="cpu")
    args = {"prompt": PROMPT, **kwargs}
    with pytest.raises(InputError, match=message):
        generate(tm, **args)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be a whole number of at least 1"),
        ({"k": "5"}, "k must be a whole number"),
        ({"k": 10**6}, "k must be at most .* vocabulary"),
        ({"position": 99}, "position must be a token index from 0 to"),
        ({"position": -99}, "position must be a token index"),
        ({"position": True}, "position must be a token index"),
        ({"text": ""}, "text is empty"),
    ],
)
def test_next_tokens_refuses_bad_arguments_saying_what_to_do(tiny_decoder_dirs, kwargs, message):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["gpt2"]), device="cpu")
    args = {"text": PROMPT, **kwargs}
    with pytest.raises(InputError, match=message):
        next_tokens(tm, **args)


def test_an_encoder_is_refused_naming_a_decoder(tiny_model):
    with pytest.raises(InputError, match="needs a decoder language model.*SmolLM2"):
        next_tokens(tiny_model, "the cat sat")
    with pytest.raises(InputError, match="needs a decoder language model.*SmolLM2"):
        generate(tiny_model, "the cat sat")


def test_a_full_gpu_moves_the_model_to_the_cpu_and_generates_there(monkeypatch, tiny_decoder_dirs):
    """As tests/test_device_fallback.py does: the "GPU" is the meta device, whose forward runs out of memory."""
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["qwen2"]), device="cpu")
    expected = generate(tm, PROMPT, max_new_tokens=6, temperature=1.0, seed=5)
    expected_next = next_tokens(tm, PROMPT)
    real_forward = tm.model.forward
    failed = []

    def forward(*args, **kwargs):
        if any(isinstance(a, torch.Tensor) and a.is_meta for a in (*args, *kwargs.values())):
            failed.append(1)
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(tm.model, "forward", forward)
    tm.device = torch.device("meta")
    got = generate(tm, PROMPT, max_new_tokens=6, temperature=1.0, seed=5)
    assert tm.device == torch.device("cpu") and len(failed) == 1
    assert "while generating text" in tm.notice
    np.testing.assert_array_equal(got.token_ids, expected.token_ids)
    np.testing.assert_array_equal(got.weights, expected.weights)
    tm.device, tm.notice = torch.device("meta"), None
    assert next_tokens(tm, PROMPT) == expected_next
    assert "while predicting the next token" in tm.notice and len(failed) == 2


def test_module_name_is_no_public_function_name():
    import attnviz.text.generation as module

    assert module.__name__.rsplit(".", 1)[1] not in {"generate", "next_tokens", "Generation"}


# ------------------------------------------------------------------ the bundled decoder


@pytest.mark.bundled
def test_bundled_generation_rows_equal_one_forward_pass(bundled_decoder):
    gen = generate(bundled_decoder, BUNDLED_PROMPT, max_new_tokens=12)
    assert gen.weights.shape[:2] == (30, 9)
    check_against_one_pass(bundled_decoder, gen)
    assert gen.generated_tokens[0] == " Paris"  # a trained model, not noise


@pytest.mark.bundled
def test_bundled_greedy_equals_transformers_generate(bundled_decoder):
    gen = generate(bundled_decoder, BUNDLED_PROMPT, max_new_tokens=20)
    assert gen.n_generated == 20 and not gen.stopped_at_eos
    assert np.array_equal(gen.token_ids, transformers_greedy(bundled_decoder, gen, 20))


@pytest.mark.bundled
def test_bundled_generation_stops_at_the_end_of_its_answer(bundled_decoder):
    gen = generate(bundled_decoder, CHAT, max_new_tokens=30)
    assert gen.stopped_at_eos and gen.n_generated < 30
    assert gen.tokens[-1] == "<|im_end|>" and gen.special[-1] and not gen.special[gen.n_prompt]
    assert not gen.text.endswith("<|im_end|>")  # special tokens are left out of the text
    assert np.array_equal(gen.token_ids, transformers_greedy(bundled_decoder, gen, 30))
    check_against_one_pass(bundled_decoder, gen)


@pytest.mark.bundled
def test_bundled_sampling_is_reproducible_by_seed(bundled_decoder):
    def sample(seed):
        return generate(bundled_decoder, "Once upon a time", max_new_tokens=16, temperature=1.0, top_k=50, seed=seed)

    first, again, other = sample(0), sample(0), sample(1)
    assert first.text == again.text and np.array_equal(first.token_ids, again.token_ids)
    np.testing.assert_array_equal(first.weights, again.weights)
    assert first.text != other.text
    greedy = generate(bundled_decoder, "Once upon a time", max_new_tokens=16)
    assert first.text != greedy.text  # sampling is not greedy in disguise
    check_against_one_pass(bundled_decoder, other)


@pytest.mark.bundled
def test_bundled_next_tokens_are_the_softmax_of_the_logits(bundled_decoder):
    top = next_tokens(bundled_decoder, BUNDLED_PROMPT, k=5)
    ids = np.array(bundled_decoder.tokenizer(BUNDLED_PROMPT).input_ids)
    _, logits = forward(bundled_decoder, ids)
    probs = softmax(logits[-1])
    order = np.argsort(-probs)[:5]
    assert top[0][0] == " Paris" and top[0][1] > 0.5
    # Two float32 passes through 30 layers agree to ~2e-5 relative on some CPUs (AMD EPYC here: 1.5e-5
    # absolute at p = 0.77), not to a fixed 1e-5: the tolerance is relative.
    np.testing.assert_allclose([p for _, p in top], probs[order], rtol=1e-4, atol=1e-6)
    assert [t for t, _ in top] == [bundled_decoder.tokenizer.decode([int(i)]) for i in order]
    assert probs.sum() == pytest.approx(1.0)


@pytest.mark.bundled
def test_next_tokens_reads_a_prompt_past_the_eager_limit(bundled_decoder):
    # Next tokens keep no attention, so they read up to the context (8,192), not generation's 512.
    text = "The cat sat on the mat, and then it slept for a while. " * 70  # about 1,050 tokens
    ids = bundled_decoder.tokenizer(text, return_tensors="pt").input_ids
    assert 1000 < ids.shape[1] < bundled_decoder.max_tokens and ids.shape[1] > bundled_decoder.max_eager_tokens
    with torch.inference_mode():  # the model's own (eager) attention, independently
        logits = bundled_decoder.model(input_ids=ids).logits[0, -1]
    probs = torch.softmax(logits.float(), -1)
    top = torch.topk(probs, 5)
    got = next_tokens(bundled_decoder, text, k=5)
    assert [bundled_decoder.tokenizer.decode([i]) for i in top.indices.tolist()] == [t for t, _ in got]
    np.testing.assert_allclose([p for _, p in got], top.values.numpy(), atol=1e-4)
    assert bundled_decoder.model.config._attn_implementation == "eager"  # put back after the SDPA run
    with pytest.raises(InputError, match="for generation"):
        generate(bundled_decoder, text, max_new_tokens=1)
