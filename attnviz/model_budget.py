"""How big a model may be: its size estimated from its config, and refused past a budget, before it is built.

A ``config.json`` of a few hundred bytes decides how much memory a model takes: ``hidden_size:
65536`` made the loader grow to 22 GB until the kernel killed it, ``num_hidden_layers: 10000``
took 92 s to build and 9 s per forward pass. So every model that is not bundled passes two
checks before ``from_pretrained`` (or, for the bundled family, before ``CnnAttention(config)``):

1. a formula on the config's numbers (no model is built, so nothing can be slow or large):
   the layer count, then ``layers x (4 h^2 + 2 h i) + (vocab + positions) x h`` parameters,
   refused only when far (4x) past the budget, since it cannot know every architecture;
2. the exact parameter count of the model built on PyTorch's ``meta`` device (shapes only, no
   memory), which also covers architectures the formula does not know.

The memory counted is the weights in float32 (4 bytes a parameter) plus the attention
weights one forward pass returns: ``layers x heads x n^2`` floats, with n the image model's
token count (class token + grid), or a text model's longest input up to 512 tokens (longer
texts are bounded by the input limits, not here). Two environment variables set the budget:

``ATTNVIZ_MODEL_MEMORY_GB`` = a number of gigabytes (10^9 bytes), default ``4``
    bert-large (335 M parameters, 1.3 GB + 0.4 GB of attention) loads; a 1-billion-parameter
    model does not.
``ATTNVIZ_MODEL_MAX_LAYERS`` = a whole number, default ``128``
    Building a layer costs time whatever its width: 128 tiny layers build in about a second.

A value that is not a positive number refuses every model but the bundled ones, with a message
naming the setting.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from attnviz.errors import ModelLoadError

MEMORY_ENV = "ATTNVIZ_MODEL_MEMORY_GB"
LAYERS_ENV = "ATTNVIZ_MODEL_MAX_LAYERS"
DEFAULT_MEMORY_GB = 4.0
DEFAULT_MAX_LAYERS = 128
#: The longest text input counted for a text model's attention weights.
TEXT_TOKENS = 512
BYTES_PER_PARAMETER = 4  # float32
#: The formula refuses only a model this many times past the budget: it cannot know every
#: architecture's weight sharing, and the exact count on the meta device decides the rest.
ROUGH_MARGIN = 4.0
GB = 10**9


@dataclass(frozen=True)
class Budget:
    """The largest model this process builds (see the module docstring)."""

    memory_bytes: float = DEFAULT_MEMORY_GB * GB
    max_layers: int = DEFAULT_MAX_LAYERS
    problem: str = ""  # a malformed setting: every model is refused with this message

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Budget:
        env = os.environ if env is None else env
        problems = []
        memory = _positive(env, MEMORY_ENV, DEFAULT_MEMORY_GB, float, problems)
        layers = _positive(env, LAYERS_ENV, DEFAULT_MAX_LAYERS, int, problems)
        return cls(memory_bytes=memory * GB, max_layers=int(layers), problem="; ".join(problems))


def _positive(env: Mapping[str, str], key: str, default, kind, problems: list[str]):
    text = env.get(key, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        problems.append(f"{key} is {text!r}; it must be a positive {'whole ' if kind is int else ''}number")
        return 0
    return value


@dataclass(frozen=True)
class SizeEstimate:
    """A model's size: ``parameters`` exact when ``exact`` (counted on the meta device), else from the formula."""

    parameters: int
    layers: int
    heads: int
    tokens: int  # n of the attention weights counted: [layers, heads, n, n]
    exact: bool

    @property
    def weight_bytes(self) -> int:
        return self.parameters * BYTES_PER_PARAMETER

    @property
    def attention_bytes(self) -> int:
        return self.layers * self.heads * self.tokens * self.tokens * BYTES_PER_PARAMETER

    @property
    def total_bytes(self) -> int:
        return self.weight_bytes + self.attention_bytes


def _gb(n: float) -> str:
    return f"{n / GB:,.1f} GB" if n >= GB / 10 else f"{n / GB:.3g} GB"


def _count(n: int) -> str:
    if n >= 10**9:
        return f"{n / 1e9:,.1f} billion"
    return f"{n / 1e6:,.1f} million" if n >= 10**6 else f"{n:,}"


def check_size(
    label: str,
    *,
    layers: int,
    heads: int,
    tokens: int,
    rough_parameters: int,
    build: Callable[[], torch.nn.Module],
    fallback: str,
    budget: Budget | None = None,
) -> SizeEstimate:
    """Refuse a model past the budget: first by the formula's ``rough_parameters``, then by the exact count.

    ``build`` makes the model's modules; it is called on the meta device, and only once the
    layer count and the formula are within the budget, so it is quick.

    Raises:
        ModelLoadError: too many layers, too much memory, or a config the model cannot be built
            from; the message gives the numbers, the budget and the setting that changes it.
    """
    budget = Budget.from_env() if budget is None else budget
    if budget.problem:
        raise ModelLoadError(
            f"This server's model size settings are not valid ({budget.problem}), so {label!r} was not loaded. "
            f"The person running the server can fix the setting. {fallback}"
        )
    if layers > budget.max_layers:
        raise ModelLoadError(
            f"{label!r} has {layers:,} layers; this server builds models of at most {budget.max_layers:,} layers "
            f"({LAYERS_ENV}), since each layer costs time to build and to run. Use a smaller model, or the person "
            f"running the server can raise {LAYERS_ENV}. {fallback}"
        )
    rough = SizeEstimate(rough_parameters, layers, heads, tokens, exact=False)
    _refuse_if_too_big(label, rough, budget, fallback, margin=ROUGH_MARGIN)
    try:
        with torch.device("meta"):
            model = build()
        parameters = sum(p.numel() for p in model.parameters())
    except (ValueError, TypeError, KeyError, AttributeError, RuntimeError, IndexError, ZeroDivisionError) as exc:
        raise ModelLoadError(
            f"{label!r}: its configuration describes a model that cannot be built ({type(exc).__name__}: {exc}). "
            f"Check the numbers in its config.json (hidden size, heads, layers). {fallback}"
        ) from exc
    exact = SizeEstimate(parameters, layers, heads, tokens, exact=True)
    _refuse_if_too_big(label, exact, budget, fallback)
    return exact


def _refuse_if_too_big(label: str, size: SizeEstimate, budget: Budget, fallback: str, margin: float = 1.0) -> None:
    if size.total_bytes <= budget.memory_bytes * margin:
        return
    about = "" if size.exact else "about "
    raise ModelLoadError(
        f"{label!r} is too large for this server: it would need {about}{_gb(size.total_bytes)} "
        f"({_count(size.parameters)} parameters in float32, {_gb(size.weight_bytes)}, plus "
        f"{_gb(size.attention_bytes)} of attention weights for one {size.tokens:,}-token input), and this server "
        f"allows {_gb(budget.memory_bytes)} a model ({MEMORY_ENV}). Use a smaller model, or the person running the "
        f"server can raise {MEMORY_ENV}. {fallback}"
    )


# ------------------------------------------------------------------- transformers configs


def _number(config, *names: str, default: int = 0) -> int:
    """The first of ``names`` the config has as a positive whole number (the largest entry of a list)."""
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, int) for v in value):
            value = max(value)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def config_shape(config) -> tuple[int, int, int, int]:
    """(layers, heads, attention tokens, formula parameters) of a transformers encoder or ViT config.

    The formula counts per layer four h x h projections and two h x i feed-forward matrices,
    and h-wide embeddings of the vocabulary, positions and token types; for a ViT, the patch
    projection and one position per patch instead. Biases and norms are left out: the exact
    count on the meta device follows.
    """
    h = _number(config, "hidden_size", "d_model", "dim", "n_embd", "embed_dim")
    layers = _number(config, "num_hidden_layers", "n_layers", "num_layers", "n_layer")
    heads = _number(config, "num_attention_heads", "n_heads", "n_head", "num_heads")
    inner = _number(config, "intermediate_size", "hidden_dim", "ffn_dim", "d_ff", "n_inner", default=4 * h)
    distinct = layers  # ALBERT shares one group's weights among all its layers
    if _number(config, "num_hidden_groups"):
        distinct = min(layers, _number(config, "num_hidden_groups") * _number(config, "inner_group_num", default=1))
    embedding = _number(config, "embedding_size", default=h)
    parameters = distinct * (4 * h * h + 2 * h * inner)
    image, patch = _number(config, "image_size"), _number(config, "patch_size")
    if image and patch:
        grid = max(image // patch, 1)
        tokens = grid * grid + 1
        parameters += (_number(config, "num_channels", default=3) * patch * patch + tokens) * h
    else:
        positions = _number(config, "max_position_embeddings", "n_positions", default=TEXT_TOKENS)
        tokens = min(positions, TEXT_TOKENS)
        parameters += (_number(config, "vocab_size") + positions + _number(config, "type_vocab_size")) * embedding
    return layers, heads, tokens, parameters


def check_transformers_model(config, model_class, label: str, fallback: str, budget: Budget | None = None):
    """:func:`check_size` for a transformers config and the auto class that would load it."""
    layers, heads, tokens, rough = config_shape(config)

    def build():
        return model_class.from_config(copy.deepcopy(config), trust_remote_code=False)

    return check_size(
        label,
        layers=layers,
        heads=heads,
        tokens=tokens,
        rough_parameters=rough,
        build=build,
        fallback=fallback,
        budget=budget,
    )
