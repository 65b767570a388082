"""One head of a real text model, explained with :func:`attnviz.maths.qkv.attention_steps`
(encoders) or :func:`attnviz.maths.causal_head.causal_head_steps` (decoders).

The model runs once (``output_attentions``); the hidden states entering the chosen layer are
projected with that head's slices of the layer's query, key and value weights, and the result is
checked against the model's own attention probabilities and its own context vectors (captured on
the way into the output projection). A decoder head has more steps: the pre-attention norm, the
RoPE rotation (Llama, Qwen2, Mistral), the key/value head it shares (grouped-query attention) and
the causal mask; :mod:`attnviz.text.decoder_layout` says where each family keeps them.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.maths.causal_head import causal_head_steps
from attnviz.maths.norms import NormStep, norm_step
from attnviz.maths.qkv import OneHead, attention_steps
from attnviz.maths.rotary import BeforeRotation, RopeStep
from attnviz.text.decoder_layout import ADDED, ROTARY, SUPPORTED_DECODERS, decoder_head_weights
from attnviz.text.extraction import encode, is_blank, token_texts
from attnviz.text.loading import TextModel

#: Model types whose self-attention is plain ``softmax(q·k * scaling + mask) v`` with the
#: layer's input as ``hidden_states[layer]``: checked by tests/text/test_worked_example.py.
#: (Others have relative positions, rotary embeddings or a LayerNorm inside the attention.)
BERT_LAYOUT = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "data2vec-text")
DISTILBERT_LAYOUT = ("distilbert",)
SUPPORTED = BERT_LAYOUT + DISTILBERT_LAYOUT + SUPPORTED_DECODERS


@dataclass(frozen=True)
class HeadSteps(BeforeRotation, OneHead):
    """Every Q/K/V intermediate of one head of a text model for one input.

    Shapes (``n`` tokens, ``d_model`` hidden size, ``d_head`` per head): ``x (n, d_model)`` the
    hidden states entering the layer; ``w_q, w_k, w_v (d_model, d_head)`` and ``b_q, b_k, b_v
    (d_head,)`` this head's slices of the layer's projections; ``q, k, v (n, d_head)``;
    ``scores, scaled, masked, weights (n, n)``; ``context (n, d_head)``. See
    :class:`attnviz.maths.qkv.OneHead`.

    A decoder head (``causal``) has these differences, and the decoder fields below: ``x`` is the
    layer's input *before* the norm (the projections read ``norm.normed``: see
    :attr:`projected`); ``q, k`` are *after* RoPE (``rope.q_before`` before it), so that
    ``scores = q @ k.T`` still holds; ``w_k, w_v, b_k, b_v`` are the key/value head ``kv_head``'s;
    ``masked`` is ``-inf`` above the diagonal (``visible`` False), so ``weights`` are exactly 0 there.

    Attributes:
        tokens: the ``n`` tokens, special tokens included (a decoder's as the text each stands for).
        w_o: ``(d_head, d_model)`` this head's rows of the layer's output projection.
        share: ``(n, d_model)`` ``context @ w_o``: what this head adds to the layer's attention
            output (the layer sums every head's share, adds the bias, the residual, LayerNorm).
        model_weights: float32 ``(n, n)`` the model's own attention for this layer and head.
        model_context: float32 ``(n, d_head)`` the model's own context vectors for this head.
        layer, head, n_layers, n_heads: where the head is, and how many there are.
        model_name, model_type, text, text_pair: what was run.
        truncated: the input was cut to the model's limit.
        causal: a decoder head: query ``i`` sees keys ``0 … i`` only.
        norm: decoders: the pre-attention norm (RMSNorm or LayerNorm) of ``x``; None for an encoder.
        rope: decoders with RoPE: the rotation of ``q`` and ``k`` (angles ``(n, d_head/2)``); else None.
        positions: how positions reach this head: ``"rotary"`` (RoPE rotates q and k here),
            ``"added"`` (position vectors were added to the token embeddings before layer 0: BERT, GPT-2).
        visible: bool ``(n, n)`` which keys each query may see (all True for an encoder without padding).
        window: a decoder layer's sliding window, or None.
        kv_head, n_kv_heads: the key/value head this query head reads and how many there are
            (grouped-query attention shares one among ``n_heads / n_kv_heads`` query heads;
            ``kv_head == head`` when every head has its own).
        model_normed: float32 ``(n, d_model)`` the model's own norm output (decoders), else None.
    """

    tokens: list[str]
    w_o: np.ndarray
    share: np.ndarray
    model_weights: np.ndarray
    model_context: np.ndarray
    layer: int
    head: int
    n_layers: int
    n_heads: int
    model_name: str
    model_type: str
    text: str
    text_pair: str | None
    truncated: bool
    causal: bool = False
    norm: NormStep | None = None
    rope: RopeStep | None = None
    positions: str = ADDED
    visible: np.ndarray | None = None
    window: int | None = None
    kv_head: int = -1
    n_kv_heads: int = 0
    model_normed: np.ndarray | None = None

    @property
    def projected(self) -> np.ndarray:
        """``(n, d_model)`` what the query/key/value projections read: ``x``, or its norm in a decoder."""
        return self.x if self.norm is None else self.norm.normed

    @property
    def sharing_heads(self) -> list[int]:
        """The query heads of this layer that read the same key/value head (this one included)."""
        group = self.n_heads // self.n_kv_heads
        return list(range(self.kv_head * group, (self.kv_head + 1) * group))

    @property
    def norm_error(self) -> float:
        """max |recomputed norm − the model's own norm output|; 0.0 for an encoder (no norm step)."""
        if self.norm is None or self.model_normed is None:
            return 0.0
        return float(np.max(np.abs(self.norm.normed - self.model_normed)))

    @property
    def weights_error(self) -> float:
        """max |recomputed weights − the model's attention|."""
        return float(np.max(np.abs(self.weights - self.model_weights)))

    @property
    def context_error(self) -> float:
        """max |recomputed context − the model's context vectors for this head|."""
        return float(np.max(np.abs(self.context - self.model_context)))


@dataclass(frozen=True)
class _Projections:
    query: torch.nn.Linear
    key: torch.nn.Linear
    value: torch.nn.Linear
    output: torch.nn.Linear
    scaling: float


def _projections(tm: TextModel, layer: int) -> _Projections:
    """The query/key/value/output Linear modules of one layer, wherever this family keeps them."""
    model = getattr(tm.model, "base_model", tm.model)  # the encoder under a classification or masked-LM head
    model_type = getattr(model.config, "model_type", "?")
    supported = ", ".join(SUPPORTED)
    if model_type in BERT_LAYOUT:
        attention = model.encoder.layer[layer].attention
        core, q, k, v, o = attention.self, "query", "key", "value", attention.output.dense
    elif model_type in DISTILBERT_LAYOUT:
        attention = model.transformer.layer[layer].attention
        core, q, k, v, o = attention, "q_lin", "k_lin", "v_lin", attention.out_lin
    else:
        raise InputError(
            f"The worked example reads the query/key/value weights of BERT-style encoder layers; {tm.name!r} is a "
            f"{model_type!r} model, whose attention is computed differently. Supported model types: {supported}. "
            "Load one of those (the bundled model is a BERT)."
        )
    d_head = int(getattr(core, "attention_head_size", model.config.hidden_size // tm.n_heads))
    # transformers 5 keeps the factor it multiplies q·k by on the module; older code used 1/√d_head.
    scaling = float(getattr(core, "scaling", d_head**-0.5))
    return _Projections(getattr(core, q), getattr(core, k), getattr(core, v), o, scaling)


@contextmanager
def _capture_input(module: torch.nn.Module, store: list):
    """Record what goes into ``module`` (the heads' concatenated context); the hook always leaves."""
    handle = module.register_forward_pre_hook(lambda _m, args: store.append(args[0].detach()))
    try:
        yield store
    finally:
        handle.remove()


@contextmanager
def _capture_output(module: torch.nn.Module, store: list):
    """Record what comes out of ``module`` (a decoder's pre-attention norm); the hook always leaves."""
    handle = module.register_forward_hook(lambda _m, _args, out: store.append(out.detach()))
    try:
        yield store
    finally:
        handle.remove()


def _index(value, name: str, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"The {name} must be a whole number from 0 to {size - 1}, not {value!r}.")
    if not 0 <= value < size:
        raise InputError(f"{name.capitalize()} {value} does not exist: this model has {what}; choose 0 to {size - 1}.")
    return int(value)


def _text(value, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"The {name} must be a string, not {type(value).__name__}.")
    return None if is_blank(value) else value  # the rule text_attention uses


def _slice(linear: torch.nn.Linear, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """A Linear's weight (d_out, d_in) as this head's (d_in, d_head) matrix, and its bias slice."""
    # To the CPU first: MPS has no float64.
    w = linear.weight.detach()[cols].T.cpu().double().numpy()  # (d_in, d_head)
    if linear.bias is None:
        return w, np.zeros(w.shape[1])
    return w, linear.bias.detach()[cols].cpu().double().numpy()  # (d_head,)


@falls_back_to_cpu("explaining a head")
def explain_head(model: TextModel, text: str, layer: int, head: int, text_pair: str | None = None) -> HeadSteps:
    """Every Q/K/V step of one head of ``model`` for ``text``, checked against the model.

    Args:
        model: a :class:`attnviz.TextModel` (``attnviz.load_text_model()``) of a supported
            type (:data:`SUPPORTED`: BERT, RoBERTa, ELECTRA, DistilBERT and relatives; the decoders
            GPT-2, Llama, Mistral, Qwen2, and so the bundled SmolLM2-135M-Instruct).
        text, text_pair: the input, as for :func:`attnviz.text_attention` (cut to the model's limit;
            a decoder reads one text, no pair).
        layer, head: which head, counted from 0.

    Returns:
        A :class:`HeadSteps` whose ``weights`` equal ``text_attention(model, text).weights[layer, head]``
        (``weights_error`` says by how much they differ: ~1e-7 in float32). A decoder's also holds
        its norm, RoPE and key/value-head steps and the causal mask (``causal`` True).

    Raises:
        InputError: empty text, a layer or head the model does not have, an unsupported model.
    """
    if not isinstance(model, TextModel):
        raise InputError(
            f"explain_head needs the TextModel returned by attnviz.load_text_model(), not {type(model).__name__}."
        )
    tm = model
    layer = _index(layer, "layer", tm.n_layers, f"{tm.n_layers} layers")
    head = _index(head, "head", tm.n_heads, f"{tm.n_heads} heads per layer")
    text, text_pair = _text(text, "text"), _text(text_pair, "second sentence")
    if text is None:
        if text_pair is not None:
            raise InputError("The first sentence is empty: type it, or move your text there.")
        raise InputError("The text is empty: type a sentence to explain.")
    if tm.causal:
        if text_pair is not None:
            raise InputError(
                "A decoder language model reads one text, left to right: turn pair mode off and put both "
                "sentences in the first box."
            )
        return _explain_decoder(tm, text, layer, head)
    proj = _projections(tm, layer)
    inputs, enc, n_cut = encode(tm, text, text_pair, limit=tm.max_eager_tokens)
    encoding = enc.encodings[0]
    if all(encoding.special_tokens_mask):
        raise InputError(
            "The tokenizer kept nothing of this text (it was only spaces, control or zero-width characters): "
            "type some words."
        )
    with tm.lock, torch.inference_mode(), _capture_input(proj.output, []) as captured:
        out = tm.model(**inputs, output_attentions=True, output_hidden_states=True)
    if out.attentions is None or out.attentions[layer] is None:
        raise RuntimeError(f"{tm.name} returned no attention weights; load it with attn_implementation='eager'.")

    d_head = proj.query.weight.shape[0] // tm.n_heads
    cols = slice(head * d_head, (head + 1) * d_head)
    x = out.hidden_states[layer][0].cpu().double().numpy()  # (n, d_model): the input of this layer
    (w_q, b_q), (w_k, b_k), (w_v, b_v) = (_slice(lin, cols) for lin in (proj.query, proj.key, proj.value))
    mask = inputs["attention_mask"][0].bool().cpu().numpy()  # (n,): all True for one unpadded input
    steps = attention_steps(x, w_q, w_k, w_v, b_q=b_q, b_k=b_k, b_v=b_v, mask=mask, scale=proj.scaling).head(0)
    # The output projection's input columns cols belong to this head: (d_out, d_in) -> (d_head, d_out).
    w_o = proj.output.weight.detach()[:, cols].T.cpu().double().numpy()
    model_context = captured[0][0, :, cols]  # (n, d_head): the hook sits on this layer only
    return HeadSteps(
        **{f: getattr(steps, f) for f in OneHead.__dataclass_fields__},
        tokens=list(encoding.tokens),
        w_o=w_o,
        share=steps.context @ w_o,  # (n, d_head) @ (d_head, d_model)
        model_weights=out.attentions[layer][0, head].float().cpu().numpy(),
        model_context=model_context.float().cpu().numpy(),
        layer=layer,
        head=head,
        n_layers=tm.n_layers,
        n_heads=tm.n_heads,
        model_name=tm.name,
        model_type=str(tm.model.config.model_type),
        text=text,
        text_pair=text_pair,
        truncated=n_cut > 0,
        visible=np.broadcast_to(steps.mask[None, :], steps.weights.shape).copy(),  # padding keys only
        kv_head=head,  # every encoder head has its own keys and values
        n_kv_heads=tm.n_heads,
    )


def _explain_decoder(tm: TextModel, text: str, layer: int, head: int) -> HeadSteps:
    """explain_head for a decoder: norm, projections, RoPE, causal mask, softmax, ·V, output."""
    parts = decoder_head_weights(tm, layer, head)
    inputs, enc, n_cut = encode(tm, text, limit=tm.max_eager_tokens)
    encoding = enc.encodings[0]
    if all(encoding.special_tokens_mask):
        raise InputError(
            "The tokenizer kept nothing of this text (it was only spaces, control or zero-width characters): "
            "type some words."
        )
    # The language-model head is not needed (text_attention runs the same transformer). The
    # norm's input is the layer's input; its output what the projections read.
    with (
        tm.lock,
        torch.inference_mode(),
        _capture_input(parts.norm_module, []) as layer_in,
        _capture_output(parts.norm_module, []) as normed,
        _capture_input(parts.output_module, []) as captured,
    ):
        out = tm.model.base_model(**inputs, output_attentions=True)
    if out.attentions is None or out.attentions[layer] is None:
        raise RuntimeError(f"{tm.name} returned no attention weights; load it with attn_implementation='eager'.")

    x = layer_in[0][0].cpu().double().numpy()  # (n, d_model): the input of this layer
    norm = norm_step(parts.norm_kind, x, parts.norm_weight, parts.norm_bias, eps=parts.norm_eps)
    # One unpadded input from position 0: the model's position_ids are 0 … n−1.
    steps = causal_head_steps(
        norm,
        parts.w_q,
        parts.w_k,
        parts.w_v,
        b_q=parts.b_q,
        b_k=parts.b_k,
        b_v=parts.b_v,
        rope_base=parts.rope_base,
        scale=parts.scale,
        window=parts.window,
    )
    model_context = captured[0][0, :, parts.cols]  # (n, d_head): the hooks sit on this layer only
    return HeadSteps(
        **{f: getattr(steps, f) for f in OneHead.__dataclass_fields__},
        tokens=token_texts(tm, encoding),
        w_o=parts.w_o,
        share=steps.context @ parts.w_o,  # (n, d_head) @ (d_head, d_model)
        model_weights=out.attentions[layer][0, head].float().cpu().numpy(),
        model_context=model_context.float().cpu().numpy(),
        layer=layer,
        head=head,
        n_layers=tm.n_layers,
        n_heads=tm.n_heads,
        model_name=tm.name,
        model_type=str(tm.model.config.model_type),
        text=text,
        text_pair=None,
        truncated=n_cut > 0,
        causal=True,
        norm=norm,
        rope=steps.rope,
        positions=ROTARY if steps.rope is not None else ADDED,
        visible=steps.visible,
        window=steps.window,
        kv_head=parts.kv_head,
        n_kv_heads=parts.n_kv_heads,
        model_normed=normed[0][0].float().cpu().numpy(),
    )
