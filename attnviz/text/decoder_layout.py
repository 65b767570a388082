"""Where a decoder layer keeps what one attention head uses, read as numpy arrays.

Two layouts, after transformers' own modeling code:

- GPT-2 (``modeling_gpt2.py``): ``h[l].ln_1`` (LayerNorm), then ``h[l].attn.c_attn``, one
  ``Conv1D`` for queries, keys and values side by side. A ``Conv1D`` stores its weight as
  ``(d_in, d_out)`` (the transpose of a ``Linear``): columns ``0 … d`` are the queries,
  ``d … 2d`` the keys, ``2d … 3d`` the values; ``attn.c_proj`` is the output projection.
  No RoPE: learned position vectors are added to the token embeddings before layer 0.
- Llama, Mistral, Qwen2 (``modeling_llama.py``): ``layers[l].input_layernorm`` (RMSNorm), then
  ``self_attn.q_proj / k_proj / v_proj / o_proj`` (``Linear``; Qwen2 has q/k/v biases), RoPE
  on queries and keys, grouped-query attention: ``num_key_value_heads`` key/value heads, each
  shared by ``num_attention_heads / num_key_value_heads`` consecutive query heads (``repeat_kv``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attnviz.errors import InputError
from attnviz.maths.norms import LAYER_NORM, RMS_NORM
from attnviz.text.loading import TextModel

GPT2_LAYOUT = ("gpt2",)
LLAMA_LAYOUT = ("llama", "mistral", "qwen2")
SUPPORTED_DECODERS = GPT2_LAYOUT + LLAMA_LAYOUT

#: How positions reach the attention, in words a page can show.
ROTARY = "rotary"
ADDED = "added"


@dataclass(frozen=True)
class DecoderHeadWeights:
    """One query head of one decoder layer, and the key/value head it reads.

    Attributes:
        norm_module: the pre-attention norm (its input is the layer's input).
        output_module: the output projection (its input is every head's context, side by side).
        norm_kind: ``"RMSNorm"`` or ``"LayerNorm"``; norm_weight, norm_bias: ``(d_model,)`` (bias None
            for RMSNorm); norm_eps: from the config (``rms_norm_eps`` / ``layer_norm_epsilon``).
        w_q, w_k, w_v: ``(d_model, d_head)``; b_q, b_k, b_v: ``(d_head,)`` or None.
        w_o: ``(d_head, d_model)`` this head's rows of the output projection.
        cols: this query head's columns of the heads' concatenated context.
        kv_head, n_kv_heads: the key/value head this query head shares, and how many there are.
        rope_base: ``rope_theta``, or None without RoPE; positions: :data:`ROTARY` or :data:`ADDED`.
        scale: the factor the model multiplies ``q·k`` by (its attention module's ``scaling``).
        window: the layer's sliding window, or None.
    """

    norm_module: torch.nn.Module
    output_module: torch.nn.Module
    norm_kind: str
    norm_weight: np.ndarray
    norm_bias: np.ndarray | None
    norm_eps: float
    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    b_q: np.ndarray | None
    b_k: np.ndarray | None
    b_v: np.ndarray | None
    w_o: np.ndarray
    cols: slice
    kv_head: int
    n_kv_heads: int
    rope_base: float | None
    positions: str
    scale: float
    window: int | None


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    # To the CPU first: MPS has no float64.
    return None if t is None else t.detach().cpu().double().numpy()


def kv_head_of(head: int, n_heads: int, n_kv_heads: int) -> int:
    """The key/value head query head ``head`` reads: ``head // (n_heads / n_kv_heads)``.

    transformers' ``repeat_kv`` repeats each key/value head for ``n_heads / n_kv_heads``
    consecutive query heads: with 9 query and 3 key/value heads, heads 0-2 read 0, 3-5 read 1.
    """
    return head // (n_heads // n_kv_heads)


def _rope_base(config) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    rope_type = params.get("rope_type", "default")
    if rope_type != "default":
        raise InputError(
            f"This model scales its rotary embeddings ({rope_type!r} RoPE); the worked example follows the "
            "plain rotation only. Load a model with default RoPE (the bundled SmolLM2-135M-Instruct has it)."
        )
    base = params.get("rope_theta", getattr(config, "rope_theta", None))
    if base is None:
        raise InputError("This model's config names no RoPE base (rope_theta): the rotation cannot be followed.")
    return float(base)


def decoder_head_weights(tm: TextModel, layer: int, head: int) -> DecoderHeadWeights:
    """This head's slices of layer ``layer`` of the decoder ``tm`` (see the module docstring)."""
    model = tm.model.base_model  # the transformer under the language-model head
    config = model.config
    model_type = str(getattr(config, "model_type", "?"))
    if model_type in GPT2_LAYOUT:
        block = model.h[layer]
        attn = block.attn
        d = int(config.hidden_size)
        d_head = d // tm.n_heads
        cols = slice(head * d_head, (head + 1) * d_head)
        w, b = _np(attn.c_attn.weight), _np(attn.c_attn.bias)  # (d, 3d), (3d,): Conv1D, (d_in, d_out)
        parts = [slice(part * d + cols.start, part * d + cols.stop) for part in range(3)]
        return DecoderHeadWeights(
            norm_module=block.ln_1,
            output_module=attn.c_proj,
            norm_kind=LAYER_NORM,
            norm_weight=_np(block.ln_1.weight),
            norm_bias=_np(block.ln_1.bias),
            norm_eps=float(config.layer_norm_epsilon),
            w_q=w[:, parts[0]],
            w_k=w[:, parts[1]],
            w_v=w[:, parts[2]],
            b_q=b[parts[0]],
            b_k=b[parts[1]],
            b_v=b[parts[2]],
            w_o=_np(attn.c_proj.weight)[cols, :],  # Conv1D (d_in, d_out): this head's input rows
            cols=cols,
            kv_head=head,
            n_kv_heads=tm.n_heads,
            rope_base=None,
            positions=ADDED,
            # GPT-2 keeps 1/√d_head (and, if configured, 1/(layer+1)) on the module.
            scale=float(getattr(attn, "scaling", d_head**-0.5)),
            window=None,
        )
    if model_type in LLAMA_LAYOUT:
        block = model.layers[layer]
        attn = block.self_attn
        d_head = int(getattr(config, "head_dim", None) or config.hidden_size // tm.n_heads)
        n_kv = int(getattr(config, "num_key_value_heads", None) or tm.n_heads)
        kv = kv_head_of(head, tm.n_heads, n_kv)
        cols = slice(head * d_head, (head + 1) * d_head)
        kv_cols = slice(kv * d_head, (kv + 1) * d_head)

        def rows(linear: torch.nn.Linear, which: slice) -> tuple[np.ndarray, np.ndarray | None]:
            # A Linear's weight is (d_out, d_in): this head's output rows, transposed to (d_in, d_head).
            bias = None if linear.bias is None else _np(linear.bias[which])
            return _np(linear.weight[which]).T, bias

        (w_q, b_q), (w_k, b_k), (w_v, b_v) = (
            rows(attn.q_proj, cols),
            rows(attn.k_proj, kv_cols),
            rows(attn.v_proj, kv_cols),
        )
        if model_type == "mistral":  # every layer slides (MistralAttention passes config.sliding_window)
            window = getattr(config, "sliding_window", None)
        else:  # Qwen2 sets it per layer (layer_types), None for full attention
            window = getattr(attn, "sliding_window", None)
        return DecoderHeadWeights(
            norm_module=block.input_layernorm,
            output_module=attn.o_proj,
            norm_kind=RMS_NORM,
            norm_weight=_np(block.input_layernorm.weight),
            norm_bias=None,
            norm_eps=float(config.rms_norm_eps),
            w_q=w_q,
            w_k=w_k,
            w_v=w_v,
            b_q=b_q,
            b_k=b_k,
            b_v=b_v,
            w_o=_np(attn.o_proj.weight[:, cols]).T,  # (d_model, d_head) -> (d_head, d_model)
            cols=cols,
            kv_head=kv,
            n_kv_heads=n_kv,
            rope_base=_rope_base(config),
            positions=ROTARY,
            scale=float(getattr(attn, "scaling", d_head**-0.5)),
            window=None if window is None else int(window),
        )
    raise InputError(
        f"The worked example follows GPT-2 and Llama-style decoder layers; {tm.name!r} is a {model_type!r} "
        f"model, whose attention is computed differently. Supported decoder types: {', '.join(SUPPORTED_DECODERS)} "
        "(the bundled SmolLM2-135M-Instruct is a Llama)."
    )
