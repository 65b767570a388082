"""Attention weights computed when a view asks for them, from the queries and keys the model used.

``output_attentions`` makes a model hand back every layer's and head's ``[n, n]`` weights at
once: for the bundled decoder (30 layers x 9 heads) 1.1 GB at 1,024 tokens, 72 GB at 8,192.
Instead, one forward pass runs with PyTorch's fused attention kernel (SDPA, which keeps no
weights) through a function registered in transformers' ``AttentionInterface``. The function
keeps each layer's queries and keys *as the attention itself sees them*: after rotary position
embeddings, with a grouped-query model's shared key heads kept once (SmolLM2: 9 query heads, 3
key heads). That is ``layers * n * (heads + kv_heads) * d_head`` floats: 755 MB at 8,192 tokens.

Any head's weights are then ``softmax(q kᵀ * scale + mask)``, computed for a block of queries
(:meth:`RecordedAttention.head`, :meth:`RecordedAttention.layer_rows`), so a view's memory is
O(block x n), never O(layers x heads x n²). The softmax is taken in float32 exactly as the models'
eager attention does, so the weights equal ``output_attentions`` to about 1e-6
(``tests/text/test_recorded_attention.py``).

The mask is the model's own: the registered function asks transformers for SDPA's masks
(``AttentionMaskInterface``), so a causal model without padding gets none and its kernel runs
with ``is_causal``; the weights apply the same rule (``j <= i``). A mask that transformers does
build (a sliding window) is kept once, shared by the layers that use it.
"""

from __future__ import annotations

import contextvars
import math
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

#: The name under which the recording attention is registered with transformers.
RECORDING = "attnviz_recording"

#: Largest block of attention weights computed at once, in float32 values (16 MB: smaller blocks kept
#: the views' peak memory lower at no cost in time, measured at 4,096 tokens).
BLOCK_VALUES = 4 * 1024 * 1024


class Stopped(Exception):
    """The forward pass was stopped by the person (``stop`` was set) before it finished."""


@dataclass
class _Recorder:
    """What one forward pass keeps, layer by layer (the order in which the attention runs)."""

    n_layers: int
    progress: Callable[[int, int], None] | None
    stop: threading.Event | None

    def __post_init__(self) -> None:
        self.queries: list[torch.Tensor] = []
        self.keys: list[torch.Tensor] = []
        self.scales: list[float] = []
        self.causal: list[bool] = []
        self.masks: list[torch.Tensor | None] = []

    def record(self, module, query, key, attention_mask, scaling, is_causal, kwargs) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Stopped
        for extra in ("softcap", "s_aux", "sinks", "position_bias"):
            if kwargs.get(extra) is not None:
                raise NotImplementedError(
                    f"{type(module).__name__} adds {extra!r} to its attention scores; attnviz computes weights "
                    "from queries and keys only, so it cannot show this model's attention."
                )
        if query.shape[0] != 1:
            raise ValueError("the recording attention reads one sequence at a time")
        # (1, heads, n, d) -> (heads, n, d): contiguous float32, so that each head is one block.
        self.queries.append(query[0].detach().to(torch.float32).contiguous())
        self.keys.append(key[0].detach().to(torch.float32).contiguous())
        self.scales.append(float(scaling) if scaling is not None else 1.0 / math.sqrt(query.shape[-1]))
        # The rule sdpa_attention_forward applies: causal only when no mask was built.
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        self.causal.append(bool(query.shape[2] > 1 and attention_mask is None and causal))
        self.masks.append(None if attention_mask is None else attention_mask.detach()[0, 0])
        if self.progress is not None:
            self.progress(len(self.queries), self.n_layers)


_ACTIVE: contextvars.ContextVar[_Recorder | None] = contextvars.ContextVar("attnviz_recorder", default=None)


def _recording_attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kw):
    """SDPA, after keeping the queries and keys of this layer when a recording is active."""
    recorder = _ACTIVE.get()
    if recorder is not None:
        recorder.record(module, query, key, attention_mask, scaling, is_causal, kw)
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kw
    )


AttentionInterface.register(RECORDING, _recording_attention)
# The same masks as SDPA: none at all for a causal model without padding (the kernel's is_causal).
AttentionMaskInterface.register(RECORDING, sdpa_mask)


@contextmanager
def recording_attention(model: torch.nn.Module):
    """Run ``model`` with the recording attention inside the block, and its own attention after.

    The caller holds the model's lock (:class:`attnviz.device.SharedModel`): the attention
    implementation is a setting of the shared model, read on every forward pass.
    """
    before = model.config._attn_implementation
    model.set_attn_implementation(RECORDING)
    try:
        yield
    finally:
        model.set_attn_implementation(before)


@contextmanager
def recorder(n_layers: int, progress=None, stop=None):
    """Keep the queries and keys of every attention call inside the block (this thread only)."""
    rec = _Recorder(n_layers, progress, stop)
    token = _ACTIVE.set(rec)
    try:
        yield rec
    finally:
        _ACTIVE.reset(token)


class RecordedAttention:
    """Every layer's queries and keys for one input; any head's weights on demand.

    Attributes:
        n_layers, n_heads, n_tokens: the model's layers and query heads, the input's tokens.
        causal: every layer attends causally (query i sees keys 0..i).
    """

    def __init__(self, rec: _Recorder):
        if not rec.queries:
            raise RuntimeError("the model ran no attention through the recording function")
        self._queries = rec.queries
        self._keys = rec.keys
        self._scales = rec.scales
        self._causal = rec.causal
        self._masks = rec.masks
        self.n_layers = len(rec.queries)
        self.n_heads = int(rec.queries[0].shape[0])
        self.n_tokens = int(rec.queries[0].shape[1])
        self.causal = all(rec.causal)

    @property
    def nbytes(self) -> int:
        """Memory held by the queries and keys (a shared mask counted once)."""
        tensors = {id(t): t for t in (*self._queries, *self._keys, *(m for m in self._masks if m is not None))}
        return sum(t.numel() * t.element_size() for t in tensors.values())

    def check(self, layer: int, head: int | None = None) -> None:
        """Raise IndexError naming the valid range unless ``layer`` (and ``head``) exist (no negative indices)."""
        if not 0 <= layer < self.n_layers:
            raise IndexError(
                f"layer {layer} is out of range: the model has {self.n_layers} layers (0..{self.n_layers - 1})"
            )
        if head is not None and not 0 <= head < self.n_heads:
            raise IndexError(
                f"head {head} is out of range: each layer has {self.n_heads} heads (0..{self.n_heads - 1})"
            )

    def _softmax(self, layer: int, q: torch.Tensor, keys: torch.Tensor, start: int, out: np.ndarray) -> np.ndarray:
        """Weights of queries ``q`` at positions ``start..start+m`` over ``keys``: one head's ``q (m, d)``
        and ``keys (n, d)``, or a layer's ``q (heads, m, d)`` and ``keys (kv_heads, n, d)``. The eager
        attention's ``softmax(q kᵀ * scale + mask)`` in float32, written into ``out`` (float32
        ``(m, n)`` or ``(heads, m, n)``), which is returned. The steps run in place: the same numbers
        as the eager attention's expression, without a copy of the scores at each step."""
        n_keys = keys.shape[-2]
        m = q.shape[-2]
        causal = self._causal[layer]
        if causal:  # keys after the block's last query are not visible to any of its rows: skip them
            keys = keys[..., : start + m, :]
        if q.dim() == 3 and keys.shape[0] != q.shape[0]:
            # Grouped-query attention: query heads g*G .. g*G+G-1 share key head g (transformers'
            # repeat_kv), so the G heads' rows are stacked against their one key head, not copied keys.
            heads, _, d = q.shape
            kv_heads = keys.shape[0]
            scores = torch.matmul(q.reshape(kv_heads, heads // kv_heads * m, d), keys.transpose(-1, -2))
            scores = scores.reshape(heads, m, -1)
        else:
            scores = torch.matmul(q, keys.transpose(-1, -2))
        scores.mul_(self._scales[layer])  # (..., m, n), or (..., m, start+m) when causal
        mask = self._masks[layer]
        if causal:  # only the block's last m keys can come after one of its queries: key start+c after row r if c > r
            after = torch.ones(m, m, dtype=torch.bool, device=scores.device).triu_(1)
            scores[..., start:].masked_fill_(after, float("-inf"))
        elif mask is not None:
            block = mask[start : start + m]
            if block.dtype == torch.bool:
                scores.masked_fill_(~block, float("-inf"))
            else:
                scores.add_(block)
        weights = torch.softmax(scores, dim=-1, dtype=torch.float32)
        target = torch.from_numpy(out)
        width = weights.shape[-1]
        target[..., :width].copy_(weights)
        if width < n_keys:  # the skipped keys: weight exactly 0
            target[..., width:].zero_()
        return out

    def _groups(self, layer: int) -> int:
        """Query heads per key head (1 without grouped-query attention)."""
        return self.n_heads // int(self._keys[layer].shape[0])

    def head(self, layer: int, head: int, queries: slice | None = None) -> np.ndarray:
        """One head's weights, float32 ``[rows, n]``: all queries, or the rows of ``queries``."""
        self.check(layer, head)
        rows = range(self.n_tokens)[queries or slice(None)]
        if rows.step != 1 and len(rows) > 1:  # every k-th row, or backwards: the rows of their span
            lo, hi = min(rows[0], rows[-1]), max(rows[0], rows[-1]) + 1
            return self.head(layer, head, slice(lo, hi))[np.asarray(rows) - lo]
        start = rows[0] if rows else 0
        stop = start + len(rows)
        keys = self._keys[layer][head // self._groups(layer)]
        out = np.empty((stop - start, self.n_tokens), dtype=np.float32)
        step = max(1, BLOCK_VALUES // max(1, self.n_tokens))
        with torch.inference_mode():
            for a in range(start, stop, step):
                b = min(stop, a + step)
                self._softmax(layer, self._queries[layer][head, a:b], keys, a, out[a - start : b - start])
        return out

    def layer_rows(self, layer: int, start: int, stop: int) -> np.ndarray:
        """Every head of ``layer`` for queries ``start..stop``: float32 ``[heads, stop - start, n]``."""
        self.check(layer)
        q = self._queries[layer][:, start:stop]
        out = np.empty((self.n_heads, q.shape[1], self.n_tokens), dtype=np.float32)
        with torch.inference_mode():
            return self._softmax(layer, q, self._keys[layer], start, out)

    def row_blocks(self, layer: int, rows_per_block: int | None = None):
        """Yield ``(start, stop, weights [heads, stop - start, n])`` over every query of ``layer``."""
        step = rows_per_block or max(1, BLOCK_VALUES // max(1, self.n_heads * self.n_tokens))
        for a in range(0, self.n_tokens, step):
            b = min(self.n_tokens, a + step)
            yield a, b, self.layer_rows(layer, a, b)

    def all_weights(self) -> np.ndarray:
        """Every layer and head at once, float32 ``[layers, heads, n, n]``: only for short inputs."""
        out = np.empty((self.n_layers, self.n_heads, self.n_tokens, self.n_tokens), dtype=np.float32)
        for layer in range(self.n_layers):
            for a, b, block in self.row_blocks(layer):
                out[layer, :, a:b] = block
        return out
