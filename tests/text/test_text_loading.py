"""Loading text models: local folders, bad names, non-encoders, the bundled weights check, devices."""

from __future__ import annotations

import pytest
import torch

import attnviz
from attnviz.device import DEVICE_ENV, pick_device
from attnviz.text.loading import BUNDLED_WEIGHTS_SHA256, bundled_model_dir, check_bundled_weights
from attnviz.weight_files import sha256_of
from tests.helpers import TINY_HEADS, TINY_LAYERS, TINY_MAX, VOCAB


def test_local_folder_loads_with_its_sizes(tiny_model, tiny_bert_dir):
    assert tiny_model.n_layers == TINY_LAYERS == 2
    assert tiny_model.n_heads == TINY_HEADS == 4
    assert tiny_model.max_tokens == TINY_MAX == 64
    assert tiny_model.name == str(tiny_bert_dir)
    assert tiny_model.device == torch.device("cpu")
    assert tiny_model.tokenizer.is_fast
    assert len(tiny_model.tokenizer) == len(VOCAB)
    # Eager attention: SDPA would return no weights.
    assert tiny_model.model.config._attn_implementation == "eager"
    assert not tiny_model.model.training


def test_local_folder_path_with_surrounding_spaces(tiny_bert_dir):
    tm = attnviz.load_text_model(f"  {tiny_bert_dir}  ", device="cpu")
    assert tm.n_layers == 2 and tm.n_heads == 4


def test_error_classes():
    assert issubclass(attnviz.ModelLoadError, attnviz.InputError)
    assert issubclass(attnviz.InputError, ValueError)


@pytest.mark.parametrize("name", ["no-such-org/no-such-model-xyz", "/definitely/not/a/folder", "not a valid id!"])
def test_unloadable_name_raises_model_load_error(name):
    with pytest.raises(attnviz.ModelLoadError) as info:
        attnviz.load_text_model(name, device="cpu")
    message = str(info.value)
    assert "all-MiniLM-L6-v2" in message
    assert name in message


def test_non_encoder_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2Model

    folder = tmp_path / "gpt2"
    config = GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=64, n_positions=32, bos_token_id=0, eos_token_id=0)
    GPT2Model(config).save_pretrained(str(folder))
    with pytest.raises(attnviz.ModelLoadError) as info:
        attnviz.load_text_model(str(folder), device="cpu")
    message = str(info.value)
    assert "gpt2" in message
    assert "all-MiniLM-L6-v2" in message


def test_folder_without_tokenizer_is_refused(tmp_path):
    """A model folder with weights but no tokenizer files cannot tokenize anything real.

    transformers 5 builds a default BertTokenizer whose vocabulary is only the five special
    tokens, so without a check every word becomes [UNK] and the page shows meaningless attention.
    """
    from transformers import BertConfig, BertModel

    folder = tmp_path / "no_tokenizer"
    config = BertConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=20,
        vocab_size=len(VOCAB),
        max_position_embeddings=32,
    )
    BertModel(config).save_pretrained(str(folder))
    with pytest.raises(attnviz.ModelLoadError):
        attnviz.load_text_model(str(folder), device="cpu")


def test_corrupted_bundled_weights_are_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"not the official weights" * 100)
    with pytest.raises(attnviz.ModelLoadError) as info:
        check_bundled_weights(tmp_path)
    assert "SHA-256" in str(info.value)


def test_missing_bundled_weights_are_refused(tmp_path):
    with pytest.raises(attnviz.ModelLoadError) as info:
        check_bundled_weights(tmp_path)
    assert "missing" in str(info.value)


def test_sha256_of_matches_hashlib(tmp_path):
    import hashlib

    data = bytes(range(256)) * 5000  # spans several read chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_of(path, chunk=4096) == hashlib.sha256(data).hexdigest()


@pytest.mark.bundled
def test_real_bundled_folder_passes_the_check():
    folder = bundled_model_dir()
    assert (folder / "config.json").is_file()
    check_bundled_weights(folder)  # raises on a mismatch
    assert sha256_of(folder / "model.safetensors") == BUNDLED_WEIGHTS_SHA256


@pytest.mark.bundled
def test_bundled_model_sizes(bundled_model):
    assert bundled_model.name == attnviz.BUNDLED_TEXT_MODEL == "all-MiniLM-L6-v2"
    assert (bundled_model.n_layers, bundled_model.n_heads, bundled_model.max_tokens) == (6, 12, 512)
    assert bundled_model.tokenizer.is_fast


def test_pick_device_honours_the_environment(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    assert pick_device() == torch.device("cpu")
    monkeypatch.setenv(DEVICE_ENV, "  cpu ")
    assert pick_device() == torch.device("cpu")
    assert attnviz.pick_device is pick_device


@pytest.mark.parametrize("name", ["gpu", "banana:3", "meta"])
def test_pick_device_refuses_names_that_are_not_usable_devices(monkeypatch, name):
    monkeypatch.setenv(DEVICE_ENV, name)
    with pytest.raises(attnviz.InputError, match=DEVICE_ENV):
        pick_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_pick_device_refuses_cuda_on_a_machine_without_it(monkeypatch):
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    with pytest.raises(attnviz.InputError, match="no such device"):
        pick_device()


def test_pick_device_without_override(monkeypatch):
    """Order of preference: CUDA, then MPS, then CPU (availability faked; blank env = no override)."""
    monkeypatch.setenv(DEVICE_ENV, "   ")
    for cuda, mps, expected in [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")]:
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda mps=mps: mps)
        assert pick_device() == torch.device(expected)


def test_load_text_model_uses_pick_device(monkeypatch, tiny_bert_dir):
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    tm = attnviz.load_text_model(str(tiny_bert_dir))
    assert tm.device == torch.device("cpu")
    assert next(tm.model.parameters()).device == torch.device("cpu")
