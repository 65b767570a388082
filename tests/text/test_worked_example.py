"""explain_head reproduces the model's own attention, layer by layer and head by head."""

from __future__ import annotations

import copy
import types

import numpy as np
import pytest
import torch

import attnviz
from attnviz import HeadSteps, InputError, TextModel, explain_head, text_attention
from attnviz.text.worked_example import SUPPORTED
from tests.helpers import TINY_HEADS, TINY_LAYERS, TINY_MAX, VOCAB

SENTENCE = "The cat sat on the mat because it was tired."
PAIR = ("Where did the cat sit?", "The cat sat on the mat.")
TOL = 1e-5


def check(tm: TextModel, text: str, layer: int, head: int, text_pair: str | None = None) -> HeadSteps:
    steps = explain_head(tm, text, layer, head, text_pair=text_pair)
    expected = text_attention(tm, text, text_pair).weights[layer, head]
    assert steps.weights.shape == expected.shape
    np.testing.assert_allclose(steps.weights, expected, atol=TOL, rtol=0)
    assert steps.weights_error <= TOL and steps.context_error <= TOL
    return steps


@pytest.mark.parametrize("pair", [False, True])
def test_tiny_model_every_layer_and_head(tiny_model, pair):
    text, text_pair = PAIR if pair else (SENTENCE, None)
    for layer in range(TINY_LAYERS):
        for head in range(TINY_HEADS):
            check(tiny_model, text, layer, head, text_pair)


def test_intermediates_have_the_documented_shapes(tiny_model):
    steps = explain_head(tiny_model, SENTENCE, 1, 2)
    n = len(steps.tokens)
    d_model, d_head = 32, 32 // TINY_HEADS
    assert steps.tokens[0] == "[CLS]" and steps.tokens[-1] == "[SEP]"
    assert steps.x.shape == (n, d_model)
    assert steps.w_q.shape == steps.w_k.shape == steps.w_v.shape == (d_model, d_head)
    assert steps.q.shape == steps.k.shape == steps.v.shape == steps.context.shape == (n, d_head)
    assert steps.scores.shape == steps.weights.shape == (n, n)
    assert steps.w_o.shape == (d_head, d_model) and steps.share.shape == (n, d_model)
    assert steps.mask.all() and not steps.truncated
    assert (steps.layer, steps.head, steps.n_layers, steps.n_heads) == (1, 2, TINY_LAYERS, TINY_HEADS)
    # The model's own .scaling, which is 1/√d_head for BERT.
    assert steps.scale == pytest.approx(d_head**-0.5)
    np.testing.assert_allclose(steps.q, steps.x @ steps.w_q + steps.b_q)
    np.testing.assert_allclose(steps.weights.sum(axis=1), 1.0, atol=1e-12)


def test_x_is_the_input_of_the_layer(tiny_model):
    inputs = tiny_model.tokenizer(SENTENCE, return_tensors="pt")
    seen = []
    layer = tiny_model.model.encoder.layer[1]
    handle = layer.register_forward_pre_hook(lambda _m, args: seen.append(args[0][0].detach().double().numpy()))
    try:
        with torch.no_grad():
            tiny_model.model(**inputs)
    finally:
        handle.remove()
    np.testing.assert_allclose(explain_head(tiny_model, SENTENCE, 1, 0).x, seen[0], atol=1e-6)


def test_every_heads_share_adds_up_to_the_output_projection(tiny_model):
    """Σ_h context_h · W_O[h] + b_O is the layer's output projection, as the page says."""
    dense = tiny_model.model.encoder.layer[0].attention.output.dense
    seen = []
    handle = dense.register_forward_hook(lambda _m, _a, out: seen.append(out[0].detach().double().numpy()))
    try:
        with torch.no_grad():
            tiny_model.model(**tiny_model.tokenizer(SENTENCE, return_tensors="pt"))
    finally:
        handle.remove()
    shares = sum(explain_head(tiny_model, SENTENCE, 0, h).share for h in range(TINY_HEADS))
    np.testing.assert_allclose(shares + dense.bias.detach().double().numpy(), seen[0], atol=1e-5)


def test_no_hook_is_left_behind(tiny_model):
    def hooks():  # transformers 5 keeps output-capturing hooks of its own on every layer
        return [(len(m._forward_pre_hooks), len(m._forward_hooks)) for m in tiny_model.model.modules()]

    explain_head(tiny_model, SENTENCE, 0, 0)  # transformers installs its hooks on the first call
    before = hooks()
    explain_head(tiny_model, SENTENCE, 0, 0)
    assert hooks() == before


def test_follows_the_models_real_scaling(tiny_bert_dir):
    """A model whose attention multiplies q·k by something else than 1/√d_head is still reproduced."""
    tm = attnviz.load_text_model(str(tiny_bert_dir), device="cpu")
    odd = TextModel(name="odd", model=copy.deepcopy(tm.model), tokenizer=tm.tokenizer, device=tm.device)
    odd.model.encoder.layer[1].attention.self.scaling = 0.9
    steps = check(odd, SENTENCE, 1, 3)
    assert steps.scale == pytest.approx(0.9)


# ---------------------------------------------------------------- other BERT-family layouts


def _tiny(model_type: str, tiny_bert_dir) -> TextModel:
    from transformers import AutoConfig, AutoModel, BertTokenizerFast

    sizes = dict(vocab_size=len(VOCAB), num_attention_heads=TINY_HEADS, max_position_embeddings=TINY_MAX + 2)
    if model_type == "distilbert":
        config = AutoConfig.for_model(model_type, dim=32, hidden_dim=37, n_layers=TINY_LAYERS, n_heads=TINY_HEADS)
        config.vocab_size, config.max_position_embeddings = len(VOCAB), TINY_MAX + 2
    else:
        extra = {"embedding_size": 16} if model_type == "electra" else {}  # a projection before layer 0
        config = AutoConfig.for_model(
            model_type,
            hidden_size=32,
            num_hidden_layers=TINY_LAYERS,
            intermediate_size=37,
            pad_token_id=0,
            **sizes,
            **extra,
        )
    config._attn_implementation = "eager"
    torch.manual_seed(1)
    model = AutoModel.from_config(config, attn_implementation="eager", trust_remote_code=False).eval()
    tokenizer = BertTokenizerFast.from_pretrained(str(tiny_bert_dir))
    if model_type == "distilbert":
        tokenizer.model_input_names = ["input_ids", "attention_mask"]  # DistilBERT has no token types
    return TextModel(name=f"tiny-{model_type}", model=model, tokenizer=tokenizer, device=torch.device("cpu"))


@pytest.mark.parametrize("model_type", ["roberta", "electra", "distilbert"])
def test_other_supported_layouts(model_type, tiny_bert_dir):
    assert model_type in SUPPORTED
    tm = _tiny(model_type, tiny_bert_dir)
    for layer in range(TINY_LAYERS):
        for head in (0, TINY_HEADS - 1):
            check(tm, SENTENCE, layer, head)
    check(tm, *PAIR[:1], 1, 1, PAIR[1])


def test_unsupported_model_type_names_the_supported_ones(tiny_model):
    config = types.SimpleNamespace(model_type="deberta", num_attention_heads=4, num_hidden_layers=2, hidden_size=32)
    fake = TextModel(name="fake", model=types.SimpleNamespace(config=config), tokenizer=None, device="cpu")
    with pytest.raises(InputError, match="'deberta' model.*Supported model types: bert, roberta"):
        explain_head(fake, SENTENCE, 0, 0)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("layer", "head", "text", "message"),
    [
        (2, 0, SENTENCE, "Layer 2 does not exist: this model has 2 layers; choose 0 to 1"),
        (-1, 0, SENTENCE, "Layer -1 does not exist"),
        (0, 4, SENTENCE, "Head 4 does not exist: this model has 4 heads per layer; choose 0 to 3"),
        (0, 1.5, SENTENCE, "whole number"),
        (0, True, SENTENCE, "whole number"),
        (0, 0, "   ", "The text is empty"),
        (0, 0, "\u200b", "The text is empty"),  # the blank rule of text_attention
        (0, 0, "\u0301", "kept nothing"),  # visible, but the tokenizer keeps nothing of it
        (0, 0, 42, "must be a string"),
    ],
)
def test_bad_input_says_what_to_fix(tiny_model, layer, head, text, message):
    with pytest.raises(InputError, match=message):
        explain_head(tiny_model, text, layer, head)


def test_a_zero_width_second_sentence_is_no_pair(tiny_model):
    alone = explain_head(tiny_model, SENTENCE, 0, 0)
    with_blank = explain_head(tiny_model, SENTENCE, 0, 0, text_pair="\u200b\u2060")
    assert with_blank.tokens == alone.tokens
    np.testing.assert_array_equal(with_blank.weights, alone.weights)


def test_raw_module_is_refused(tiny_model):
    with pytest.raises(InputError, match="load_text_model"):
        explain_head(tiny_model.model, SENTENCE, 0, 0)


def test_long_input_is_cut_like_text_attention(tiny_model):
    text = " ".join(["cat"] * (TINY_MAX + 10))
    steps = check(tiny_model, text, 0, 0)
    assert steps.truncated and len(steps.tokens) == TINY_MAX


# ---------------------------------------------------------------- the bundled model


@pytest.mark.bundled
@pytest.mark.parametrize("pair", [False, True])
def test_bundled_model_every_layer_several_heads(bundled_model, pair):
    text, text_pair = PAIR if pair else ("The animal didn't cross the street because it was too tired.", None)
    ta = text_attention(bundled_model, text, text_pair)
    for layer in range(bundled_model.n_layers):
        for head in (0, 3, 7, 11):
            steps = explain_head(bundled_model, text, layer, head, text_pair=text_pair)
            np.testing.assert_allclose(steps.weights, ta.weights[layer, head], atol=TOL, rtol=0)
            assert steps.weights_error <= TOL and steps.context_error <= TOL
            assert steps.x.shape[1] == 384 and steps.w_q.shape == (384, 32)


def test_explain_head_under_a_masked_lm_head(tiny_bert_dir):
    """A checkpoint saved with a head loads with it; the worked example reads the encoder underneath."""
    from tests.helpers import headed_model

    tm = headed_model(tiny_bert_dir, "masked-lm")
    text = "the cat sat"
    steps = attnviz.explain_head(tm, text, layer=1, head=0)
    expected = attnviz.text_attention(tm, text).weights[1, 0]
    np.testing.assert_allclose(steps.weights, expected, atol=1e-5)
