"""How long a forward pass will take, said before it starts.

The work of a transformer's forward pass over n tokens is close to its floating-point operation
count: ``2 x (parameters in its layers) x n`` for the matrix products of every token, plus
``4 x layers x heads x d_head x n²`` for the attention (q·kᵀ and the weights times v; half of that
for a causal model, whose fused kernel skips the keys a query cannot see). The bundled decoder at
8,192 tokens: 1.7 TFLOP of products and 2.3 TFLOP of attention.

The seconds are the FLOPs divided by a rate: the rate this model reached on its last forward pass
in this process (:func:`record`, called by :func:`attnviz.text_attention`), else a default for the
device. The 2-core CPU here reaches about 100-150 GFLOP/s; a data-centre GPU tens of TFLOP/s in
float32, so the same 4 TFLOP take a fraction of a second there.
"""

from __future__ import annotations

import threading
import weakref

import torch

from attnviz.text.loading import TextModel

#: FLOP/s assumed before a model has run once in this process.
DEFAULT_RATE = {"cpu": 1e11, "cuda": 2e13, "mps": 2e12}
#: Passes shorter than this are too noisy to learn a rate from.
_MIN_SECONDS = 0.5

_rates: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_params: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _layer_parameters(tm: TextModel) -> int:
    """Parameters used by every token's matrix products: all but the embedding tables."""
    with _lock:
        if tm not in _params:
            model = tm.model.base_model
            tables = [m for m in model.modules() if isinstance(m, torch.nn.Embedding)]
            embedding = sum(p.numel() for m in tables for p in m.parameters())
            _params[tm] = sum(p.numel() for p in model.parameters()) - embedding
        return _params[tm]


def forward_flops(tm: TextModel, n: int) -> float:
    """Floating-point operations of one forward pass over ``n`` tokens (see the module docstring)."""
    config = tm.model.config
    heads = tm.n_heads
    d_head = getattr(config, "head_dim", None) or config.hidden_size // heads
    attention = 4.0 * tm.n_layers * heads * d_head * n * n
    if tm.causal:
        attention /= 2
    return 2.0 * _layer_parameters(tm) * n + attention


def record(tm: TextModel, n: int, seconds: float) -> None:
    """Learn ``tm``'s rate from a forward pass over ``n`` tokens that took ``seconds``."""
    if seconds >= _MIN_SECONDS:
        rate = forward_flops(tm, n) / seconds  # outside the lock: forward_flops takes it
        with _lock:
            _rates[tm] = rate


def estimate_seconds(tm: TextModel, n: int) -> float:
    """Seconds a forward pass over ``n`` tokens should take on ``tm``'s device."""
    with _lock:
        rate = _rates.get(tm)
    if rate is None:
        rate = DEFAULT_RATE.get(tm.device.type, DEFAULT_RATE["cpu"])
    return forward_flops(tm, n) / rate
