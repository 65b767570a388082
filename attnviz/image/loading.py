"""Loading image classifiers whose attention can be read.

No name loads the bundled model: the CNN-attention classifier of ``attnviz.image.cnn_attention``,
trained by ``python -m attnviz.image.train`` on generated shapes, from ``assets/image-model/``. A
folder written by that script (``model.safetensors`` + ``model_card.json``) loads the same way.
Any other name is a Hugging Face image classifier (a hub id or a local folder with
``config.json``: ResNet, ConvNeXt, EfficientNet, RegNet, ViT, DeiT, BEiT, Swin, ...), loaded with
eager attention so its weights come back, safetensors only and without remote code. Its
:class:`~attnviz.image.model_families.ModelFamily` (which maps it supports, its convolution layers)
is found at load time by one forward pass on a grey image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

# At module level: transformers resolves these names lazily, which is not safe from two script
# threads at once (see attnviz.text.loading).
from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

from attnviz.device import SharedModel, pick_device
from attnviz.errors import ModelLoadError
from attnviz.image import model_files
from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
from attnviz.image.domain_check import load_domain_check
from attnviz.image.model_families import (
    SQUARE_ATTENTION,
    WINDOWED_ATTENTION,
    ModelFamily,
    convolution_layers,
    describe,
    special_tokens,
)
from attnviz.image.model_files import CARD_FILE, WEIGHTS_FILE
from attnviz.image.window_attention import window_blocks
from attnviz.maths.domain_scores import DomainCheck
from attnviz.model_budget import check_size, check_transformers_model
from attnviz.model_source import (
    BUNDLED,
    FOLDER,
    HUB,
    ModelSource,
    hub_error,
    remote_code_error,
    resolve_model_source,
    weights_error,
)
from attnviz.weight_files import check_weight_files, folder_weight_files, safetensors_only, sha256_of

#: Name shown for the bundled model, and accepted by ``load_image_model``.
BUNDLED_IMAGE_MODEL = "shapes-cnn-attention"
#: Model types transformers builds with AutoModelForImageClassification.
IMAGE_CLASSIFIERS = frozenset(MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES)


@dataclass(eq=False)
class ImageModel(SharedModel):
    """A loaded classifier, how it wants its input, and where it runs.

    ``kind`` is ``"cnn-attention"`` (the bundled family: class token + conv grid, Grad-CAM on
    ``model.last_conv`` by default) or, for a Hugging Face classifier, its family's kind (``"cnn"``,
    ``"vit"``, ``"swin"``). ``family`` says
    which maps it supports (:mod:`attnviz.image.model_families`); ``grid`` is the attention's patch grid
    (a Swin's first stage's), or for a model without attention the output grid of its last convolution layer.

    One object is shared by every session of the app: see :class:`attnviz.device.SharedModel`.
    """

    name: str
    kind: str
    model: torch.nn.Module
    classes: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width) the model sees
    grid: tuple[int, int]  # (rows, cols) of attention cells
    device: torch.device
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # applied here for ViTs; inside the bundled model
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    card: dict = field(default_factory=dict, repr=False)
    #: The calibrated domain check (:mod:`attnviz.image.domain_check`) of a model trained by attnviz; None otherwise.
    domain: DomainCheck | None = field(default=None, repr=False)
    #: Which maps the model supports and why the others are absent; set by the loader.
    family: ModelFamily | None = field(default=None, repr=False)

    @property
    def n_layers(self) -> int:
        """Attention layers: a Swin's blocks, over all its stages."""
        if self.kind == "cnn-attention":
            return len(self.model.blocks)
        if self.has_window_attention:
            return len(self.window_heads)
        return int(self.model.config.num_hidden_layers) if self.has_attention else 0

    @property
    def n_heads(self) -> int:
        """Heads per layer: for a Swin the most of any stage (:attr:`window_heads` has each block's)."""
        if self.kind == "cnn-attention":
            return self.model.config.heads
        if self.has_window_attention:
            return max(self.window_heads)
        return int(self.model.config.num_attention_heads) if self.has_attention else 0

    @property
    def window_heads(self) -> tuple[int, ...]:
        """A Swin's heads in each block, in order (a stage's ``num_heads`` for each of its ``depths`` blocks)."""
        if not self.has_window_attention:
            return ()
        config = self.model.config
        return tuple(int(h) for d, h in zip(config.depths, config.num_heads, strict=True) for _ in range(int(d)))

    @property
    def window_size(self) -> int | None:
        """A Swin's window side in cells (its config's; a block on a smaller grid cuts it), else None."""
        return int(self.model.config.window_size) if self.has_window_attention else None

    @property
    def has_window_attention(self) -> bool:
        """Swin's per-window attention can be read (:mod:`attnviz.image.window_attention`)."""
        return self.family is not None and self.family.has_window_attention

    @property
    def has_attention(self) -> bool:
        """The attention is one matrix over the special tokens and the grid (its maps can be drawn)."""
        return self.family is None or self.family.has_attention

    @property
    def special_tokens(self) -> tuple[str, ...]:
        """The tokens before the grid cells in the attention: the class token, a DeiT's distillation token."""
        return self.family.special_tokens if self.family is not None else ("[CLS]",)

    @property
    def has_conv(self) -> bool:
        """Grad-CAM is offered: the model has convolution layers whose output is a grid."""
        return self.family is not None and self.family.has_gradcam

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """An RGB image -> (1, 3, H, W) float on the model's device, as the model expects it."""
        h, w = self.input_size
        resized = image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
        x = torch.frombuffer(bytearray(resized.tobytes()), dtype=torch.uint8).view(1, h, w, 3)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, 3, H, W) -> logits (B, K), attention (B, L, heads, T, T) or None without attention maps."""
        if self.kind == "cnn-attention":
            return self.model(x, return_attention=True)
        if not self.has_attention:
            return self.model(pixel_values=x).logits, None
        out = self.model(pixel_values=x, output_attentions=True)
        return out.logits, torch.stack(out.attentions, dim=1)

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict | None]:
        """:meth:`forward` plus the domain check's features (None when the model has no check)."""
        if self.domain is None:
            return (*self.forward(x), None)
        return self.model(x, return_attention=True, return_features=True)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> logits (B, K); the function captum differentiates."""
        return self.model(x) if self.kind == "cnn-attention" else self.model(pixel_values=x).logits


def bundled_image_dir() -> Path:
    """Folder of the bundled image model (``model_files.BUNDLED_DIR``, read at call time)."""
    return model_files.BUNDLED_DIR


def load_image_model(name: str | None = None, device: torch.device | str | None = None) -> ImageModel:
    """The bundled model (``name`` None or ``BUNDLED_IMAGE_MODEL``), a folder, or a hub id.

    Folders and hub ids pass the policy of ``attnviz.model_source`` first (the environment
    variables ATTNVIZ_LOCAL_MODELS, ATTNVIZ_MODEL_DIRS and ATTNVIZ_HUB_MODELS), then, before
    anything is built, the size budget of ``attnviz.model_budget`` (ATTNVIZ_MODEL_MEMORY_GB,
    ATTNVIZ_MODEL_MAX_LAYERS) and, for a ViT, the safetensors-only check of ``attnviz.weight_files``.

    Raises:
        ModelLoadError: the name is refused or cannot be loaded; the message says why and what to do.
    """
    device = torch.device(device) if device is not None else pick_device()
    source = resolve_model_source(name, BUNDLED_IMAGE_MODEL, what="image model")
    if source.kind == BUNDLED:
        return _load_cnn_attention(bundled_image_dir(), BUNDLED_IMAGE_MODEL, device, bundled=True)
    if source.kind == FOLDER and _is_file_or_dir(source.path / CARD_FILE):
        return _load_cnn_attention(source.path, source.name, device)
    return _load_hf(source, device)


def _is_file_or_dir(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:
        return False


def _restore_hint(folder: Path, bundled: bool) -> str:
    if bundled:
        return (
            "Restore the bundled model with `git checkout -- assets/image-model` (or reinstall attnviz), or "
            "retrain it with `python -m attnviz.image.train`."
        )
    return f"Retrain it with `python -m attnviz.image.train --out {folder}` (add `--data FOLDER` for your own images)."


def _read_card(card_path: Path, hint: str) -> dict:
    """The model card as a dict with ``classes`` and ``config``; a ModelLoadError for anything else."""
    if card_path.is_dir():
        raise ModelLoadError(f"{card_path} is a folder, not a file. {hint}")
    try:
        text = card_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(
            f"The model card {card_path} cannot be read ({type(exc).__name__}: {exc}). {hint}"
        ) from exc
    try:
        card = json.loads(text)
    except ValueError as exc:
        raise ModelLoadError(f"The model card {card_path} is not valid JSON ({exc}). {hint}") from exc
    if not isinstance(card, dict):
        raise ModelLoadError(f"The model card {card_path} is not a JSON object. {hint}")
    missing = [k for k in ("classes", "config") if k not in card]
    if missing:
        raise ModelLoadError(f"The model card {card_path} lacks {' and '.join(missing)}. {hint}")
    classes = card["classes"]
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise ModelLoadError(f"The model card {card_path}: 'classes' must be a list of class names. {hint}")
    if not isinstance(card["config"], dict):
        raise ModelLoadError(f"The model card {card_path}: 'config' must be a JSON object. {hint}")
    return card


def _load_cnn_attention(folder: Path, label: str, device: torch.device, bundled: bool = False) -> ImageModel:
    weights, card_path = folder / WEIGHTS_FILE, folder / CARD_FILE
    hint = _restore_hint(folder, bundled)
    what = "The bundled image model" if bundled else "The image model"
    missing = [p.name for p in (weights, card_path) if not p.exists()]
    if missing:
        raise ModelLoadError(f"{what} in {folder} is missing {' and '.join(missing)}. {hint}")
    if weights.is_dir():
        raise ModelLoadError(f"{weights} is a folder, not a weights file. {hint}")
    card = _read_card(card_path, hint)
    expected = card.get("weights_sha256")
    if bundled and not expected:
        raise ModelLoadError(
            f"The bundled model card {card_path} has no weights_sha256 to check {weights} against. {hint}"
        )
    try:
        actual = sha256_of(weights) if expected else None
    except OSError as exc:
        raise ModelLoadError(f"{weights} cannot be read ({type(exc).__name__}: {exc}). {hint}") from exc
    if expected and actual != expected:
        raise ModelLoadError(
            f"{weights} does not match the SHA-256 in its model card: the file is damaged, truncated or was "
            f"replaced. {hint}"
        )
    try:
        config = CnnAttentionConfig.from_dict(card["config"])
        if len(card["classes"]) != config.n_classes:
            raise ValueError(f"{len(card['classes'])} class names for {config.n_classes} outputs")
        if not bundled:  # a card of a few bytes can ask for 100 GB, like a config.json
            _check_cnn_size(config, label, hint)
        model = CnnAttention(config)
        model.load_state_dict(load_file(str(weights)))
    except ModelLoadError:  # the size check's own message (ModelLoadError is a ValueError)
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
        raise ModelLoadError(f"{what} in {folder} could not be read ({type(exc).__name__}: {exc}). {hint}") from exc
    model.eval().to(device)
    domain = load_domain_check(folder, card, hint)
    stages = tuple(f"stem.{i}" for i in range(len(model.stem)))  # conv + norm + ReLU; the last is last_conv
    size = config.image_size
    convs = convolution_layers(model, lambda: model(torch.zeros(1, 3, size, size, device=device)), stages)
    return ImageModel(
        name=label,
        kind="cnn-attention",
        model=model,
        classes=tuple(card["classes"]),
        input_size=(config.image_size, config.image_size),
        grid=(config.grid, config.grid),
        device=device,
        card=card,
        domain=domain,
        family=describe("cnn-attention", convs, ("[CLS]",), attention_ok=True),
    )


def _check_cnn_size(config: CnnAttentionConfig, label: str, hint: str) -> None:
    """The budget of :mod:`attnviz.model_budget` for a CNN-attention card's config.

    Formula: per block four dim x dim projections and two dim x (mlp_ratio dim) matrices; the
    3 x 3 convolutions of the stem; a position per grid cell and the class token.
    """
    chans = (3, *config.stem_channels, config.dim)
    stem = sum(9 * a * b for a, b in zip(chans, chans[1:], strict=False))
    tokens = 1 + config.grid**2
    rough = config.blocks * (4 + 2 * config.mlp_ratio) * config.dim**2 + stem + tokens * config.dim
    check_size(
        label,
        layers=config.blocks,
        heads=config.heads,
        tokens=tokens,
        rough_parameters=rough,
        build=lambda: CnnAttention(config),
        fallback=hint,
    )


def _load_hf(source: ModelSource, device: torch.device) -> ImageModel:
    """A Hugging Face image classifier: safetensors only, no remote code, its family found by one pass."""
    name, location, extra = source.name, source.location, source.hub_kwargs
    try:
        config = AutoConfig.from_pretrained(location, trust_remote_code=False, **extra)
    except Exception as exc:  # OSError, ValueError, hub errors
        if (custom := remote_code_error(source, exc, BUNDLED_IMAGE_MODEL)) is not None:
            raise custom from exc
        if source.kind == HUB:
            raise hub_error(source, exc, BUNDLED_IMAGE_MODEL) from exc
        raise ModelLoadError(
            f"Could not load image model {name!r}: the folder has neither a model_card.json (a folder written by "
            f"`python -m attnviz.image.train`) nor a readable config.json (a Hugging Face model). "
            f"Use the bundled model ({BUNDLED_IMAGE_MODEL})."
        ) from exc
    if config.model_type not in IMAGE_CLASSIFIERS:
        raise ModelLoadError(
            f"{name!r} is a {config.model_type!r} model, which transformers does not load as an image classifier "
            f"(AutoModelForImageClassification): use an image classifier such as ResNet, ConvNeXt, EfficientNet, "
            f"RegNet, ViT, DeiT, BEiT or Swin, or the bundled model ({BUNDLED_IMAGE_MODEL})."
        )
    fallback = f"Use the bundled model ({BUNDLED_IMAGE_MODEL})."
    check_weight_files(source, config, fallback)
    # Before anything is built: a config.json of a few bytes can ask for 100 GB (attnviz.model_budget).
    check_transformers_model(config, AutoModelForImageClassification, name, fallback)
    try:
        # Safetensors only (a pickled pytorch_model.bin is refused), eager attention, no remote code.
        with safetensors_only(name, fallback):
            model = AutoModelForImageClassification.from_pretrained(
                location, attn_implementation="eager", use_safetensors=True, trust_remote_code=False, **extra
            )
    except ModelLoadError:
        raise
    except Exception as exc:
        if (labels := _labels_mismatch(source, config, exc, fallback)) is not None:
            raise labels from exc
        raise weights_error(source, exc, BUNDLED_IMAGE_MODEL) from exc
    model.eval().to(device)
    processor = _processor(location, extra)
    size = _input_size(config, processor)
    mean, std = _normalisation(processor)
    family, grid = _hf_family(name, model, config, size, device)
    classifier = getattr(model, "classifier", None)
    n_outputs = classifier.out_features if isinstance(classifier, torch.nn.Linear) else int(config.num_labels)
    classes = class_names(config, n_outputs)
    return ImageModel(
        name=name,
        kind=family.kind,
        model=model,
        classes=classes,
        input_size=(size, size),
        grid=grid,
        device=device,
        mean=mean,
        std=std,
        family=family,
    )


def _first_int(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], int):
        return int(value[0])
    return None


def _input_size(config, processor) -> int:
    """The square input side: the image processor's size (what the model was trained with), else the
    config's ``image_size``, else 224."""
    for attr in ("crop_size", "size"):
        spec = getattr(processor, attr, None)
        for key in ("height", "shortest_edge", "width"):
            value = spec.get(key) if isinstance(spec, dict) else getattr(spec, key, None)
            if isinstance(value, int) and value > 0:
                return value
    if (size := _first_int(getattr(config, "image_size", None))) is not None and size > 0:
        return size
    return 224


def _hf_family(name: str, model, config, size: int, device: torch.device) -> tuple[ModelFamily, tuple[int, int]]:
    """The model's family (one pass on a grey image) and its grid: the patch grid of a model whose attention
    attnviz draws (a Swin's first stage), else the output grid of the last convolution layer (the Grad-CAM
    default)."""
    x = torch.zeros(1, 3, size, size, device=device)
    convs = convolution_layers(model, lambda: model(pixel_values=x))
    specials = special_tokens(config.model_type, config)
    patch_grid = None
    if config.model_type in SQUARE_ATTENTION:
        patch = _first_int(getattr(config, "patch_size", None)) or 16
        rows = size // patch
        with torch.inference_mode():
            attentions = model(pixel_values=x, output_attentions=True).attentions
        expected = len(specials) + rows * rows
        shapes = {tuple(a.shape[-2:]) for a in attentions or ()}
        if shapes != {(expected, expected)}:
            raise ModelLoadError(
                f"{name!r}: its attention has shape {sorted(shapes)}, but {len(specials)} special token(s) "
                f"({', '.join(specials)}) and a {rows} x {rows} patch grid make {expected} tokens; attnviz cannot "
                f"tell which token is which. Use the bundled model ({BUNDLED_IMAGE_MODEL})."
            )
        patch_grid = (rows, rows)
    elif config.model_type in WINDOWED_ATTENTION:
        try:
            with torch.inference_mode():
                _, blocks = window_blocks(model, x)
            patch_grid = blocks[0].grid
        except ValueError:  # no blocks found, or one returned no attention: the family says so
            patch_grid = None
    family = describe(config.model_type, convs, specials, attention_ok=patch_grid is not None)
    if patch_grid is not None:
        return family, patch_grid
    if family.has_gradcam:
        return family, family.conv_grids[-1]
    grids = [g for _, g in convs]
    return family, grids[0] if grids else (max(1, size // 16),) * 2


def class_names(config, n_outputs: int) -> tuple[str, ...]:
    """One distinct name per output of the classifier, from ``config.id2label``.

    A hand-edited config.json may leave gaps in id2label, count from 1, or hold null or numbers:
    an output without a usable name gets transformers' own default, ``LABEL_i``. A name used
    twice gets its output's index, ``"cat (1)"``, so a class chosen by name means one output.
    """
    id2label = getattr(config, "id2label", None) or {}
    names, seen = [], set()
    for i in range(n_outputs):
        label = id2label.get(i, id2label.get(str(i)))
        name = str(label).strip() if label is not None else ""
        name = name or f"LABEL_{i}"
        while name in seen:
            name = f"{name} ({i})"
        seen.add(name)
        names.append(name)
    return tuple(names)


def _checkpoint_outputs(source: ModelSource, config) -> int | None:
    """How many classes the folder's weights have a classifier for (None: unknown, e.g. a hub id)."""
    if source.path is None:
        return None
    for name in folder_weight_files(source.path, config):
        try:
            with safe_open(str(source.path / name), framework="pt") as f:
                if "classifier.weight" in f.keys():
                    return int(f.get_slice("classifier.weight").get_shape()[0])
        except (OSError, SafetensorError, ValueError):
            continue
    return None


def _labels_mismatch(source: ModelSource, config, exc: BaseException, fallback: str) -> ModelLoadError | None:
    """The message for an id2label that names another number of classes than the weights hold, or None."""
    if "mismatch" not in str(exc).lower():
        return None
    named, held = int(config.num_labels), _checkpoint_outputs(source, config)
    if held is None or held == named:
        return None
    return ModelLoadError(
        f"{source.name!r}: its config.json names {named} classes (id2label), but its weights hold a classifier "
        f"for {held}. id2label must name the classes 0 to {held - 1}, one each: fix it in config.json. {fallback}"
    )


def _processor(name: str, extra: dict | None = None):
    """The model's image processor, or None when it ships none (or it cannot be read)."""
    try:
        return AutoImageProcessor.from_pretrained(name, trust_remote_code=False, **(extra or {}))
    except (OSError, ValueError, AttributeError, TypeError, KeyError):
        return None


def _normalisation(processor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The processor's mean and std when the model ships one, else ViT's default (0.5, 0.5)."""
    try:
        return tuple(float(v) for v in processor.image_mean), tuple(float(v) for v in processor.image_std)
    except (AttributeError, TypeError, ValueError):
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
