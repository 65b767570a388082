"""Which maps an image model supports, and why the others are absent.

A loaded :class:`~attnviz.image.loading.ImageModel` carries a :class:`ModelFamily`, found once at
load time by one forward pass on a grey image:

* ``"cnn"``: a convolutional network (ResNet, ConvNeXt, EfficientNet, RegNet, MobileNet, ...):
  Grad-CAM on any of its convolution layers, Integrated Gradients; no attention maps.
* ``"vit"``: a ViT-style transformer (ViT, DeiT, BEiT, Data2Vec-vision, DINOv2, ViT-MSN) whose
  attention is one matrix over its special tokens and the patch grid: the class-token map, rollout
  and a clicked patch's map, Integrated Gradients; no Grad-CAM (its only convolution is the patch
  embedding).
* ``"swin"``: Swin and Swin V2, whose attention is per local window (:mod:`attnviz.image.window_attention`):
  a clicked patch's map, per block and head, over its window; Integrated Gradients. No class-token
  map (Swin has no class token), no rollout (each stage has its own grid and attention stays inside
  windows, so no square matrix over one set of tokens runs through the model), no Grad-CAM.
* ``"hybrid"``: convolutions and a square attention over a class token and the grid (the bundled
  CNN-attention model): every map.

Special tokens come from the model's type and config, never from a guess on the matrix size: one
class token, a DeiT's distillation token after it, a DINOv2-with-registers' ``num_register_tokens``.
The attention's shape is then checked against them and the patch grid.

Convolution layers are collected in the order the forward pass runs them (forward hooks on the
grey image); a layer whose output is a single cell (1 x 1) is left out, as Grad-CAM over one cell
is one number.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

CLASS_TOKEN_MAP = "Class token"
ROLLOUT_MAP = "Rollout"
FROM_PATCH_MAP = "From a clicked patch"
GRADCAM_MAP = "Grad-CAM"
IG_MAP = "Integrated Gradients"
#: Every map the image page can draw, in the page's order.
ALL_MAPS = (CLASS_TOKEN_MAP, ROLLOUT_MAP, FROM_PATCH_MAP, GRADCAM_MAP, IG_MAP)
ATTENTION_MAPS = (CLASS_TOKEN_MAP, ROLLOUT_MAP, FROM_PATCH_MAP)

#: Model types whose attention is one square matrix over special tokens + the patch grid.
SQUARE_ATTENTION = ("vit", "deit", "beit", "data2vec-vision", "dinov2", "dinov2_with_registers", "vit_msn")
#: Model types whose attention is per local window (no image-wide matrix, no class token).
WINDOWED_ATTENTION = ("swin", "swinv2", "donut-swin")
#: Convolutional networks without attention.
CONVOLUTIONAL = (
    "resnet",
    "convnext",
    "convnextv2",
    "efficientnet",
    "regnet",
    "mobilenet_v1",
    "mobilenet_v2",
    "bit",
    "hgnet_v2",
    "pp_lcnet",
    "textnet",
)

#: Module-name parts of a residual shortcut's projection (left out of the default Grad-CAM layer).
SHORTCUT_PARTS = frozenset({"shortcut", "downsample"})
#: How the note names each kind.
KIND_WORDS = {
    "cnn": "convolutional",
    "vit": "ViT-style attention",
    "swin": "Swin (windowed attention)",
    "hybrid": "convolution + attention",
}

NO_ATTENTION_CNN = "it is a convolutional network: it has no attention to draw"
PATCH_EMBEDDING_ONLY = (
    "its only convolution is the patch embedding, which maps each patch on its own before any layer has "
    "compared patches, so no convolution layer holds what the classifier used"
)
WINDOWED = (
    "transformers returned no per-window attention for this Swin model's blocks, so there is no attention to draw"
)
NO_CLASS_TOKEN = (
    "Swin has no class token: its classifier reads the average of the last stage's cells, so no token's "
    "attention sums up the image"
)
WINDOWED_ROLLOUT = (
    "rollout multiplies one square attention matrix per layer over the same tokens, and Swin has none: each "
    "block attends only within local windows of cells (shifted every other block), and patch merging halves the "
    "grid between stages (each stage has its own grid)"
)


@dataclass(frozen=True)
class ModelFamily:
    """What an image model offers: its kind, convolution layers, special tokens and maps."""

    kind: str  # "cnn", "vit", "swin" or "hybrid"
    architecture: str  # the model type, e.g. "resnet", or "cnn-attention" for attnviz's own
    #: Convolution layers Grad-CAM may explain (module names for ``model.get_submodule``), in forward order.
    conv_layers: tuple[str, ...] = ()
    #: Each conv layer's output grid (rows, cols) at the model's input size.
    conv_grids: tuple[tuple[int, int], ...] = ()
    #: Labels of the tokens before the grid cells, e.g. ("[CLS]",) or ("[CLS]", "[DIST]").
    special_tokens: tuple[str, ...] = ()
    supported_maps: tuple[str, ...] = (IG_MAP,)
    #: (map, why it is absent) for every map of :data:`ALL_MAPS` not supported.
    absent_maps: tuple[tuple[str, str], ...] = ()

    @property
    def has_attention(self) -> bool:
        """The attention is one square matrix over the special tokens and the grid (a ViT, the hybrid)."""
        return self.kind != "swin" and (CLASS_TOKEN_MAP in self.supported_maps or FROM_PATCH_MAP in self.supported_maps)

    @property
    def has_window_attention(self) -> bool:
        """Swin's per-window attention was returned: a clicked patch's map, per block and head."""
        return self.kind == "swin" and FROM_PATCH_MAP in self.supported_maps

    @property
    def has_gradcam(self) -> bool:
        return GRADCAM_MAP in self.supported_maps

    @property
    def default_layer(self) -> str | None:
        """The layer Grad-CAM explains unless one is chosen: the last convolution layer of the main path.

        A residual block's shortcut projection (HF ResNet's and RegNet's ``shortcut``, BiT's and
        torchvision's ``downsample``) runs after the block's own convolutions, so in forward order it
        is often last; Grad-CAM's usual layer is the block's last convolution, not that 1 x 1 projection.
        """
        if not self.has_gradcam:
            return None
        main = [n for n in self.conv_layers if not SHORTCUT_PARTS & set(n.split("."))]
        return (main or list(self.conv_layers))[-1]

    def layer_grid(self, layer: str) -> tuple[int, int]:
        return self.conv_grids[self.conv_layers.index(layer)]

    def absent_reason(self, map_name: str) -> str | None:
        return dict(self.absent_maps).get(map_name)

    def note(self) -> str:
        """One paragraph: "This model supports …; … is absent because …"."""
        kind = KIND_WORDS.get(self.kind, self.kind)
        said = f"This {kind} model ({self.architecture}) supports {_and(self.supported_maps)}."
        reasons: dict[str, list[str]] = {}
        for name, why in self.absent_maps:
            reasons.setdefault(why, []).append(name)
        for why, names in reasons.items():
            said += f" {_and(names)} {'is' if len(names) == 1 else 'are'} absent because {why}."
        return said


def _and(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def special_tokens(model_type: str, config) -> tuple[str, ...]:
    """The tokens before the patch grid, read from the model type and config."""
    tokens = ["[CLS]"]
    if model_type == "deit":
        tokens.append("[DIST]")  # DeiT's distillation token, after the class token
    tokens += [f"[REG{i}]" for i in range(int(getattr(config, "num_register_tokens", 0) or 0))]
    return tuple(tokens)


def convolution_layers(
    module: torch.nn.Module, run, candidates: tuple[str, ...] | None = None
) -> list[tuple[str, tuple[int, int]]]:
    """``(name, (rows, cols))`` of every Conv2d (or of the ``candidates``) in the order ``run()`` calls
    them, without those whose output is a single cell."""
    names = dict(module.named_modules())
    wanted = candidates if candidates is not None else [n for n, m in names.items() if isinstance(m, torch.nn.Conv2d)]
    seen: dict[str, tuple[int, int]] = {}
    hooks = []
    for name in wanted:

        def hook(_mod, _inp, out, name=name):
            if name not in seen and isinstance(out, torch.Tensor) and out.dim() == 4:
                seen[name] = (int(out.shape[-2]), int(out.shape[-1]))

        hooks.append(names[name].register_forward_hook(hook))
    try:
        with torch.inference_mode():
            run()
    finally:
        for h in hooks:
            h.remove()
    return [(name, grid) for name, grid in seen.items() if grid != (1, 1)]


def describe(
    architecture: str,
    convs: list[tuple[str, tuple[int, int]]],
    specials: tuple[str, ...],
    attention_ok: bool,
) -> ModelFamily:
    """The family of a model of type ``architecture`` with these convolution layers; ``attention_ok``:
    its attention was returned as one square matrix over ``specials`` + the grid, or for a Swin every block's
    window attention (checked by the loader)."""
    absent: list[tuple[str, str]] = []
    conv_names = tuple(n for n, _ in convs)
    grids = tuple(g for _, g in convs)
    windowed = {CLASS_TOKEN_MAP: NO_CLASS_TOKEN, ROLLOUT_MAP: WINDOWED_ROLLOUT}
    if architecture in WINDOWED_ATTENTION:
        kind, gradcam_why, attention_why = "swin", PATCH_EMBEDDING_ONLY, None if attention_ok else WINDOWED
    elif attention_ok and architecture in SQUARE_ATTENTION:
        kind, gradcam_why, attention_why = "vit", PATCH_EMBEDDING_ONLY, None
    elif attention_ok:  # attnviz's own CNN-attention model
        kind, gradcam_why, attention_why = "hybrid", None, None
    else:
        kind, gradcam_why = "cnn", None
        attention_why = (
            NO_ATTENTION_CNN
            if architecture in CONVOLUTIONAL
            else f"transformers returns no attention of {architecture!r} as one matrix over a class token and the "
            "patch grid"
        )
    if gradcam_why is None and not conv_names:
        gradcam_why = "the model has no convolution layer with more than one cell of output"
    supported: list[str] = []
    for name in ALL_MAPS:
        if name in ATTENTION_MAPS:
            why = attention_why or (windowed.get(name) if kind == "swin" else None)
        elif name == GRADCAM_MAP:
            why = gradcam_why
        else:
            why = None
        if why is None:
            supported.append(name)
        else:
            absent.append((name, why))
    keep = gradcam_why is None
    return ModelFamily(
        kind=kind,
        architecture=architecture,
        conv_layers=conv_names if keep else (),
        conv_grids=grids if keep else (),
        special_tokens=specials if attention_why is None and kind != "swin" else (),
        supported_maps=tuple(supported),
        absent_maps=tuple(absent),
    )
