"""The bundled image model: a convolutional stem, then self-attention over a grid of cells.

Formulation (B images, C=3 channels, S=64 pixels a side, G=8 cells a side, T = 1 + G² tokens,
D model width, H heads, d = D / H per head)::

    x       (B, 3, S, S)         image, normalised per channel
    stem    (B, D, G, G)         four 3x3 conv + BatchNorm + ReLU stages, strides 2, 2, 1, 2
    tokens  (B, T, D)            [class token; the G·G cells row by row] + learned positions
    for each of the L blocks (pre-norm):
        h       = LayerNorm(tokens)
        q, k, v = h W_q, h W_k, h W_v            (B, H, T, d) each
        A       = softmax(q kᵀ / √d)             (B, H, T, T)   <- the attention we show
        tokens  = tokens + concat_h(A v) W_o
        tokens  = tokens + MLP(LayerNorm(tokens))
    logits  (B, K)               Linear(LayerNorm(tokens[:, 0]))  — read from the class token

Token 0 is the class token; token ``1 + r·G + c`` is grid cell (row r, column c), i.e. the
stem's receptive field around pixel ((c + ½)·S/G, (r + ½)·S/G). The softmax is written out
(no fused SDPA kernel), so every block's weights can be returned and checked: each row sums to 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class CnnAttentionConfig:
    n_classes: int = 8
    image_size: int = 64
    grid: int = 8
    dim: int = 64
    heads: int = 4
    blocks: int = 2
    stem_channels: tuple[int, ...] = (32, 48, 64)  # channels of the first three conv stages
    #: Strides of the four conv stages: halving early keeps the 64x64 activations cheap.
    stem_strides: tuple[int, ...] = (2, 2, 1, 2)
    mlp_ratio: int = 2

    def __post_init__(self):
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if len(self.stem_strides) != len(self.stem_channels) + 1:
            raise ValueError("stem_strides needs one stride per conv stage (len(stem_channels) + 1)")
        stride = math.prod(self.stem_strides)
        if self.image_size != self.grid * stride:
            raise ValueError(f"image_size {self.image_size} must be grid {self.grid} x {stride}")

    def to_dict(self) -> dict:
        return {**asdict(self), "stem_channels": list(self.stem_channels), "stem_strides": list(self.stem_strides)}

    @classmethod
    def from_dict(cls, d: dict) -> CnnAttentionConfig:
        return cls(**{**d, "stem_channels": tuple(d["stem_channels"]), "stem_strides": tuple(d["stem_strides"])})


def _conv(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class SelfAttention(nn.Module):
    """Multi-head self-attention with the softmax written out, returning its weights."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.d_head = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, dim = x.shape
        q, k, v = self.qkv(x).split(dim, dim=-1)  # (B, T, D) each
        q, k, v = (z.view(b, t, self.heads, self.d_head).transpose(1, 2) for z in (q, k, v))  # (B, H, T, d)
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(self.d_head), dim=-1)  # (B, H, T, T)
        context = (weights @ v).transpose(1, 2).reshape(b, t, dim)  # (B, T, D)
        return self.out(context), weights


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        attended, weights = self.attn(self.norm1(x))
        x = x + attended
        return x + self.mlp(self.norm2(x)), weights


class CnnAttention(nn.Module):
    """Conv stem -> class token + grid cells -> attention blocks -> class logits."""

    #: Per-channel mean and std of the generated training images, applied inside the model so
    #: callers feed plain [0, 1] RGB.
    MEAN = (0.5, 0.5, 0.5)
    STD = (0.28, 0.28, 0.28)

    def __init__(self, config: CnnAttentionConfig):
        super().__init__()
        self.config = config
        chans = (3, *config.stem_channels, config.dim)
        strides = config.stem_strides
        self.stem = nn.Sequential(*[_conv(chans[i], chans[i + 1], strides[i]) for i in range(len(strides))])
        n_tokens = 1 + config.grid**2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.positions = nn.Parameter(torch.randn(1, n_tokens, config.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(config.dim, config.heads, config.mlp_ratio) for _ in range(config.blocks))
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.n_classes)
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)

    @property
    def last_conv(self) -> nn.Module:
        """The layer Grad-CAM explains: the stem's last convolution stage (after its ReLU)."""
        return self.stem[-1]

    def forward(self, images: torch.Tensor, return_attention: bool = False, return_features: bool = False):
        """images (B, 3, S, S) in [0, 1] -> logits (B, K) [, attention (B, L, H, T, T)] [, features].

        ``features`` (with ``return_features``) are what the domain check
        (:mod:`attnviz.image.domain_check`) measures: ``"class_token"``, the normalised class token
        the head reads (B, D), and ``"stem"``, the mean and standard deviation of each channel of
        the stem's last stage over the grid (B, 2D), and ``"thumbnail"``, the image averaged to 4 x 4
        cells (B, 48).
        """
        # The image's colours and layout at 4 x 4 cells: the domain check's view of the raw input.
        thumbnail = nn.functional.adaptive_avg_pool2d(images, 4).flatten(1) if return_features else None  # (B, 48)
        x = self.stem((images - self.mean) / self.std)  # (B, D, G, G)
        stem = torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)  # (B, 2D)
        x = x.flatten(2).transpose(1, 2)  # (B, G·G, D), cells row by row
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.positions  # (B, T, D)
        attention = []
        for block in self.blocks:
            x, weights = block(x)
            attention.append(weights)
        token = self.norm(x[:, 0])  # (B, D)
        logits = self.head(token)
        out = (logits,)
        if return_attention:
            out += (torch.stack(attention, dim=1),)
        if return_features:
            out += ({"class_token": token, "stem": stem, "thumbnail": thumbnail},)
        return out[0] if len(out) == 1 else out
