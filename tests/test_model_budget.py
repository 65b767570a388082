"""A model folder's config cannot make the server build a model past its budget (attnviz.model_budget)."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import torch

import attnviz
from attnviz import model_budget
from attnviz.model_budget import LAYERS_ENV, MEMORY_ENV, Budget, check_transformers_model, config_shape


@pytest.fixture(autouse=True)
def default_budget(monkeypatch):
    for key in (MEMORY_ENV, LAYERS_ENV):
        monkeypatch.delenv(key, raising=False)


class Built(BaseException):  # noqa: N818 - not an error the loaders may catch and turn into a message
    """Raised where the model would be built: a test that sees it failed to refuse in time."""


@pytest.fixture
def nothing_is_built(monkeypatch):
    """Building the model (for real or on the meta device) fails the test, before any memory is taken."""
    from transformers import AutoModel, AutoModelForImageClassification

    def built(*args, **kwargs):
        raise Built("the model was built")

    for cls in (AutoModel, AutoModelForImageClassification):
        monkeypatch.setattr(cls, "from_pretrained", classmethod(built))
        monkeypatch.setattr(cls, "from_config", classmethod(built))


def _tiny_vit(folder):
    from transformers import ViTConfig, ViTForImageClassification

    config = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37
    )
    ViTForImageClassification(config).save_pretrained(str(folder))
    return folder


def _folder(kind, tmp_path, tiny_bert_dir, **changes):
    folder = tmp_path / kind
    if kind == "text":
        shutil.copytree(tiny_bert_dir, folder)
    else:
        _tiny_vit(folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _error(kind, folder) -> str:
    load = attnviz.load_text_model if kind == "text" else attnviz.load_image_model
    with pytest.raises(attnviz.ModelLoadError) as info:
        load(str(folder), device="cpu")
    return str(info.value)


@pytest.mark.parametrize("kind", ["text", "image"])
def test_a_huge_hidden_size_is_refused_before_the_model_is_built(kind, tmp_path, tiny_bert_dir, nothing_is_built):
    """hidden_size 65536 grew the loader to 22 GB until the kernel killed it."""
    folder = _folder(kind, tmp_path, tiny_bert_dir, hidden_size=65536)
    start = time.monotonic()
    message = _error(kind, folder)
    assert time.monotonic() - start < 5
    assert "too large for this server" in message and MEMORY_ENV in message
    assert "billion parameters" in message and "allows 4.0 GB" in message
    assert "bundled model" in message


@pytest.mark.parametrize("kind", ["text", "image"])
def test_ten_thousand_layers_are_refused_before_the_model_is_built(kind, tmp_path, tiny_bert_dir, nothing_is_built):
    """num_hidden_layers 10000 took 92 s to load and 9 s a forward pass, though its weights are small."""
    folder = _folder(kind, tmp_path, tiny_bert_dir, num_hidden_layers=10000)
    start = time.monotonic()
    message = _error(kind, folder)
    assert time.monotonic() - start < 5
    assert "10,000 layers" in message and "at most 128" in message and LAYERS_ENV in message


def test_many_heads_count_their_attention_weights(tmp_path, tiny_bert_dir, nothing_is_built):
    """1,024 heads of width 1 keep bert-large's weights but need 26 GB of attention weights at 512 tokens."""
    folder = _folder(
        "text",
        tmp_path,
        tiny_bert_dir,
        hidden_size=1024,
        num_attention_heads=1024,
        num_hidden_layers=24,
        intermediate_size=4096,
        max_position_embeddings=512,
    )
    message = _error("text", folder)
    assert "25.8 GB of attention weights for one 512-token input" in message


@pytest.mark.parametrize(
    "name,sizes,parameters",
    [
        (
            "all-MiniLM-L6-v2",
            dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
            22_713_216,
        ),
        ("bert-base", {}, 109_482_240),
        (
            "bert-large",
            dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
            335_141_888,
        ),
    ],
)
def test_the_default_budget_lets_common_encoders_load(name, sizes, parameters):
    from transformers import AutoModel, BertConfig

    size = check_transformers_model(BertConfig(**sizes), AutoModel, name, "")
    assert size.exact and size.parameters == parameters
    rough = config_shape(BertConfig(**sizes))[3]
    assert abs(rough - parameters) / parameters < 0.02  # the formula is close to the exact count


def test_a_vit_base_fits_and_its_tokens_are_the_patches_and_the_class_token():
    from transformers import AutoModelForImageClassification, ViTConfig

    size = check_transformers_model(ViTConfig(), AutoModelForImageClassification, "vit-base", "")
    assert size.tokens == 14 * 14 + 1 and size.layers == 12 and size.heads == 12
    assert size.parameters == 85_800_194


def test_the_exact_count_is_what_the_loaded_model_has(tiny_model):
    from transformers import AutoModel

    size = check_transformers_model(tiny_model.model.config, AutoModel, "tiny", "")
    assert size.parameters == sum(p.numel() for p in tiny_model.model.parameters())


def test_the_exact_count_catches_what_the_formula_misses(monkeypatch, tiny_bert_dir, tiny_model):
    """A config the formula underrates is still refused: the meta-device count decides."""
    monkeypatch.setattr(model_budget, "config_shape", lambda config: (2, 4, 1, 0))  # no weights, one token
    n = sum(p.numel() for p in tiny_model.model.parameters())
    monkeypatch.setenv(MEMORY_ENV, str(n * 4 / 1e9 / 2))  # half the weights
    message = _error("text", tiny_bert_dir)
    assert f"({n:,} parameters in float32" in message and "about" not in message


def test_the_budget_is_set_by_the_environment(monkeypatch, tiny_bert_dir):
    monkeypatch.setenv(MEMORY_ENV, "0.0001")  # 100 kB
    message = _error("text", tiny_bert_dir)
    assert "allows 0.0001 GB a model (ATTNVIZ_MODEL_MEMORY_GB)" in message
    monkeypatch.setenv(MEMORY_ENV, "1")
    monkeypatch.setenv(LAYERS_ENV, "1")
    assert "at most 1 layers" in _error("text", tiny_bert_dir)
    monkeypatch.setenv(LAYERS_ENV, "2")
    assert attnviz.load_text_model(str(tiny_bert_dir), device="cpu").n_layers == 2


@pytest.mark.parametrize(
    "key,value", [(MEMORY_ENV, "lots"), (MEMORY_ENV, "-1"), (MEMORY_ENV, "inf"), (LAYERS_ENV, "2.5")]
)
def test_a_malformed_budget_refuses_every_model_but_the_bundled_ones(key, value, monkeypatch, tiny_bert_dir):
    monkeypatch.setenv(key, value)
    message = _error("text", tiny_bert_dir)
    assert key in message and repr(value) in message and "positive" in message
    assert Budget.from_env().problem


def test_a_config_that_cannot_be_built_gets_a_message(tmp_path, tiny_bert_dir):
    """transformers' own check (hidden size a multiple of the heads) says what is wrong, as a ModelLoadError."""
    folder = _folder("text", tmp_path, tiny_bert_dir, hidden_size=30)
    message = _error("text", folder)
    assert "cannot be built" in message and "not a multiple of the number of attention heads" in message


def test_a_cnn_attention_card_cannot_build_a_huge_model(tmp_path, monkeypatch):
    """The bundled family's folders are read from a model card: its config is checked the same way."""
    from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
    from attnviz.image.model_files import CARD_FILE
    from attnviz.image.train import save

    folder = tmp_path / "cnn"
    save(
        CnnAttention(CnnAttentionConfig()).eval(),
        {"classes": [str(i) for i in range(8)], "config": CnnAttentionConfig().to_dict()},
        folder,
    )
    card = json.loads((folder / CARD_FILE).read_text())
    card.pop("weights_sha256", None)
    card["config"].update(dim=65536, heads=4, blocks=2)
    (folder / CARD_FILE).write_text(json.dumps(card))

    def built(self, *args, **kwargs):
        raise Built("the model was built")

    monkeypatch.setattr(CnnAttention, "__init__", built)
    message = _error("image", folder)
    assert message.startswith(f"{str(folder)!r} is too large for this server") and MEMORY_ENV in message
    card["config"].update(dim=64, blocks=5000)
    (folder / CARD_FILE).write_text(json.dumps(card))
    assert _error("image", folder).startswith(f"{str(folder)!r} has 5,000 layers")


def test_the_bundled_models_are_not_counted(monkeypatch):
    """The budget is for models a visitor names; the bundled ones are known and checked by their SHA-256."""
    monkeypatch.setenv(MEMORY_ENV, "0.000001")
    assert attnviz.load_image_model(device="cpu").kind == "cnn-attention"
    assert torch.device("cpu") == attnviz.load_image_model(device="cpu").device


def test_shared_layers_are_not_counted_twelve_times():
    """albert-xxlarge's 12 layers share one set of weights (223 M): the formula must not refuse it as 2.5 B."""
    from transformers import AlbertConfig, AutoModel

    rough = config_shape(AlbertConfig())[3]
    assert rough < 250_000_000
    assert check_transformers_model(AlbertConfig(), AutoModel, "albert-xxlarge", "").parameters == 222_595_584


def test_the_formula_leaves_close_calls_to_the_exact_count(monkeypatch):
    """A formula a little past the budget builds the model on the meta device, which decides."""
    from transformers import AutoModel, BertConfig

    monkeypatch.setattr(model_budget, "config_shape", lambda config: (12, 12, 512, 1_500_000_000))  # 6 GB: < 4 x 4 GB
    size = check_transformers_model(BertConfig(), AutoModel, "bert-base", "")
    assert size.exact and size.parameters == 109_482_240
