"""explain_head follows a decoder head (GPT-2, Llama, Qwen2, Mistral) and reproduces its attention."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import attnviz
from attnviz import HeadSteps, InputError, TextModel, explain_head, text_attention
from attnviz.text.decoder_layout import kv_head_of

SENTENCE = "The cat sat on the mat. The dog sat on the log."
LONG = "The animal didn't cross the street because it was too tired. " * 6
TOL = 1e-5


def check(tm: TextModel, text: str, layer: int, head: int, expected: np.ndarray | None = None) -> HeadSteps:
    steps = explain_head(tm, text, layer, head)
    if expected is None:
        expected = text_attention(tm, text).weights[layer, head]
    assert steps.causal and steps.weights.shape == expected.shape
    np.testing.assert_allclose(steps.weights, expected, atol=TOL, rtol=0)
    assert steps.weights_error <= TOL and steps.context_error <= TOL and steps.norm_error <= TOL
    n = steps.weights.shape[0]
    np.testing.assert_array_equal(steps.weights[np.triu_indices(n, 1)], 0.0)  # exact zeros above the diagonal
    return steps


def perturbed(tm: TextModel) -> TextModel:
    """A copy whose biases and norm gains are random: freshly built models have zero biases and unit
    gains, which would let a wrong bias slice or a missing norm weight pass unnoticed."""
    model = copy.deepcopy(tm.model)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for _name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(
                    1.0 + 0.3 * torch.randn(p.shape, generator=gen)
                    if _is_gain(_name)
                    else torch.randn(p.shape, generator=gen) * 0.3
                )
    return TextModel(name=f"{tm.name}-perturbed", model=model, tokenizer=tm.tokenizer, device=tm.device, causal=True)


def _is_gain(name: str) -> bool:
    return name.endswith("weight")  # 1-D weights are the norms' gains


def family(tm: TextModel) -> str:
    return str(tm.model.config.model_type)


# ---------------------------------------------------------------- tiny GPT-2, Llama, Qwen2


def test_tiny_decoders_every_layer_and_head(tiny_decoder):
    for tm in (tiny_decoder, perturbed(tiny_decoder)):
        ta = text_attention(tm, SENTENCE)
        for layer in range(tm.n_layers):
            for head in range(tm.n_heads):
                check(tm, SENTENCE, layer, head, ta.weights[layer, head])


def test_tiny_decoders_a_long_input(tiny_decoder):
    """Positions up to ~80: RoPE's angles in the model are float32, ours float64."""
    tm = perturbed(tiny_decoder)
    ta = text_attention(tm, LONG)
    assert len(ta.tokens) > 60
    for head in range(tm.n_heads):
        check(tm, LONG, 1, head, ta.weights[1, head])


def test_steps_of_each_family(tiny_decoder):
    steps = explain_head(tiny_decoder, SENTENCE, 1, 3)
    n, d_model = steps.x.shape
    assert steps.tokens == text_attention(tiny_decoder, SENTENCE).tokens
    assert steps.norm is not None and steps.norm.normed.shape == (n, d_model)
    np.testing.assert_array_equal(steps.projected, steps.norm.normed)
    np.testing.assert_allclose(steps.q_unrotated, steps.projected @ steps.w_q + steps.b_q, atol=1e-12)
    np.testing.assert_allclose(steps.k_unrotated, steps.projected @ steps.w_k + steps.b_k, atol=1e-12)
    np.testing.assert_allclose(steps.scores, steps.q @ steps.k.T, atol=1e-12)
    np.testing.assert_array_equal(steps.visible, np.tril(np.ones((n, n), dtype=bool)))
    assert steps.share.shape == (n, d_model) and steps.w_o.shape == (steps.d_head, d_model)
    if family(tiny_decoder) == "gpt2":
        assert steps.norm.kind == "LayerNorm" and steps.rope is None and steps.positions == "added"
        assert (steps.kv_head, steps.n_kv_heads, steps.sharing_heads) == (3, 4, [3])
    else:
        assert steps.norm.kind == "RMSNorm" and steps.positions == "rotary"
        assert steps.rope is not None and steps.rope.angles.shape == (n, steps.d_head // 2)
        assert (steps.kv_head, steps.n_kv_heads, steps.sharing_heads) == (1, 2, [2, 3])


def test_x_is_the_layer_input(tiny_decoder):
    """hidden_states[l] is what enters layer l: the hook on the norm reads the same."""
    inputs = tiny_decoder.tokenizer(SENTENCE, return_tensors="pt")
    with torch.no_grad():
        hidden = tiny_decoder.model.base_model(**inputs, output_hidden_states=True).hidden_states
    for layer in range(tiny_decoder.n_layers):
        got = explain_head(tiny_decoder, SENTENCE, layer, 0).x
        np.testing.assert_allclose(got, hidden[layer][0].double().numpy(), atol=1e-6)


def test_every_heads_share_adds_up_to_the_output_projection(tiny_decoder):
    tm = perturbed(tiny_decoder)
    base = tm.model.base_model
    out_proj = base.h[0].attn.c_proj if family(tm) == "gpt2" else base.layers[0].self_attn.o_proj
    seen = []
    handle = out_proj.register_forward_hook(lambda _m, _a, out: seen.append(out[0].detach().double().numpy()))
    try:
        with torch.no_grad():
            base(**tm.tokenizer(SENTENCE, return_tensors="pt"))
    finally:
        handle.remove()
    shares = sum(explain_head(tm, SENTENCE, 0, h).share for h in range(tm.n_heads))
    bias = 0.0 if out_proj.bias is None else out_proj.bias.detach().double().numpy()
    np.testing.assert_allclose(shares + bias, seen[0], atol=1e-5)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def rotary_decoder(request, tiny_decoder_dirs):
    """The tiny decoders with RoPE and grouped-query attention (GPT-2 has neither: its positions are
    added to the embeddings, and it has one key/value head per query head)."""
    return attnviz.load_text_model(str(tiny_decoder_dirs[request.param]), device="cpu")


def test_rope_step_equals_transformers_rotation(rotary_decoder):
    """Our rotation of the projected q and k equals transformers' own rotary_emb + apply_rotary_pos_emb."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    tiny_decoder = rotary_decoder
    steps = explain_head(tiny_decoder, LONG, 1, 2)
    n = steps.x.shape[0]
    q, k = (torch.tensor(a, dtype=torch.float32)[None, None] for a in (steps.q_unrotated, steps.k_unrotated))
    cos, sin = tiny_decoder.model.base_model.rotary_emb(q, torch.arange(n)[None])
    q_rot, k_rot = apply_rotary_pos_emb(q, k, cos, sin)
    np.testing.assert_allclose(steps.q, q_rot[0, 0].double().numpy(), atol=1e-4)
    np.testing.assert_allclose(steps.k, k_rot[0, 0].double().numpy(), atol=1e-4)
    np.testing.assert_allclose(steps.rope.angles, np.outer(np.arange(n), steps.rope.inv_freq))


def test_heads_sharing_a_kv_head_read_the_same_keys_and_values(rotary_decoder):
    a, b, c = (explain_head(rotary_decoder, SENTENCE, 0, h) for h in (0, 1, 2))
    np.testing.assert_array_equal(a.k, b.k)
    np.testing.assert_array_equal(a.v, b.v)
    assert not np.array_equal(a.q, b.q) and not np.array_equal(a.k, c.k)


def test_kv_head_mapping():
    assert [kv_head_of(h, 9, 3) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [kv_head_of(h, 4, 2) for h in range(4)] == [0, 0, 1, 1]
    assert [kv_head_of(h, 4, 4) for h in range(4)] == [0, 1, 2, 3]


def test_a_pair_is_refused(tiny_decoder):
    with pytest.raises(InputError, match="reads one text"):
        explain_head(tiny_decoder, "The cat.", 0, 0, text_pair="The dog.")


def test_bad_layer_and_head_say_what_to_fix(tiny_decoder):
    with pytest.raises(InputError, match="Layer 2 does not exist: this model has 2 layers"):
        explain_head(tiny_decoder, SENTENCE, 2, 0)
    with pytest.raises(InputError, match="Head 4 does not exist"):
        explain_head(tiny_decoder, SENTENCE, 0, 4)


# ---------------------------------------------------------------- other decoders


def _built(config, tokenizer) -> TextModel:
    from transformers import AutoModelForCausalLM

    torch.manual_seed(2)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", trust_remote_code=False).eval()
    return TextModel(name=config.model_type, model=model, tokenizer=tokenizer, device=torch.device("cpu"), causal=True)


def test_mistral_with_a_sliding_window(tiny_decoder_dirs):
    from transformers import AutoTokenizer, MistralConfig

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_decoder_dirs["llama"]), trust_remote_code=False)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=3,
    )
    tm = _built(config, tokenizer)
    ta = text_attention(tm, SENTENCE)
    for head in range(4):
        steps = check(tm, SENTENCE, 1, head, ta.weights[1, head])
    assert steps.window == 3
    n = steps.weights.shape[0]
    assert not steps.visible[5, 2] and steps.visible[5, 3] and steps.weights[5, 2] == 0.0
    assert np.tril(np.ones((n, n)), -3).astype(bool).sum() > 0 and not steps.visible[np.tril_indices(n, -3)].any()


def test_scaled_rope_is_refused(tiny_decoder_dirs):
    from transformers import AutoTokenizer, LlamaConfig

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_decoder_dirs["llama"]), trust_remote_code=False)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_parameters={"rope_type": "linear", "rope_theta": 10_000.0, "factor": 2.0},
    )
    with pytest.raises(InputError, match="'linear' RoPE"):
        explain_head(_built(config, tokenizer), SENTENCE, 0, 0)


def test_unsupported_decoder_names_the_supported_ones(tiny_decoder_dirs):
    from transformers import AutoTokenizer, GPTNeoXConfig

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_decoder_dirs["llama"]), trust_remote_code=False)
    config = GPTNeoXConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4
    )
    with pytest.raises(InputError, match="'gpt_neox' model.*Supported decoder types: gpt2, llama"):
        explain_head(_built(config, tokenizer), SENTENCE, 0, 0)


# ---------------------------------------------------------------- the bundled decoder


@pytest.mark.bundled
def test_bundled_decoder_every_layer_several_heads(bundled_decoder):
    text = "The animal didn't cross the street because it was too tired."
    ta = text_attention(bundled_decoder, text)
    worst = 0.0
    for layer in range(bundled_decoder.n_layers):
        # 0, 1, 2 share key/value head 0; 4 reads head 1; 8 reads head 2.
        for head in (0, 1, 2, 4, 8):
            steps = check(bundled_decoder, text, layer, head, ta.weights[layer, head])
            worst = max(worst, steps.weights_error)
            assert steps.kv_head == head // 3 and steps.n_kv_heads == 3
    assert worst <= TOL
    assert steps.x.shape[1] == 576 and steps.w_q.shape == (576, 64) and steps.w_k.shape == (576, 64)
    assert steps.norm.kind == "RMSNorm" and steps.rope.base == 100_000.0 and steps.scale == 0.125
    assert steps.tokens == ta.tokens and steps.sharing_heads == [6, 7, 8]


@pytest.mark.bundled
def test_bundled_decoder_rope_against_the_complex_form(bundled_decoder):
    steps = explain_head(bundled_decoder, "Rotary embeddings turn pairs of dimensions.", 5, 4)
    q = steps.q_unrotated
    n, d = q.shape
    theta = 100_000.0 ** (-np.arange(d // 2) * 2.0 / d)
    z = (q[:, : d // 2] + 1j * q[:, d // 2 :]) * np.exp(1j * np.arange(n)[:, None] * theta)
    np.testing.assert_allclose(steps.q, np.concatenate([z.real, z.imag], axis=1), atol=1e-10)
