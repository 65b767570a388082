"""Loading image classifiers whose attention can be read.

No name loads the bundled model: the CNN-attention classifier of ``attnviz.cnn_attention``,
trained by ``python -m attnviz.train`` on generated shapes, from ``assets/image-model/``. A
folder written by that script (``model.safetensors`` + ``model_card.json``) loads the same way.
Any other name is a Hugging Face ViT-style classifier (a hub id or a local folder with
``config.json``), loaded with eager attention so its weights come back.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import load_file

from attnviz.cnn_attention import CnnAttention, CnnAttentionConfig
from attnviz.device import pick_device
from attnviz.errors import ModelLoadError
from attnviz.train import BUNDLED_DIR, CARD_FILE, WEIGHTS_FILE, sha256_file

#: Name shown for the bundled model, and accepted by ``load_image_model``.
BUNDLED_IMAGE_MODEL = "shapes-cnn-attention"


@dataclass(frozen=True)
class ImageModel:
    """A loaded classifier, how it wants its input, and where it runs.

    ``kind`` is ``"cnn-attention"`` (the bundled family: class token + conv grid, Grad-CAM on
    ``model.last_conv``) or ``"vit"`` (a Hugging Face ViT: class token + patch grid).
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
    card: dict = field(default_factory=dict, repr=False, compare=False)
    #: Held around every forward pass and every attribution (captum's hooks on a shared model
    #: must never meet another thread's forward pass).
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @property
    def n_layers(self) -> int:
        return len(self.model.blocks) if self.kind == "cnn-attention" else int(self.model.config.num_hidden_layers)

    @property
    def n_heads(self) -> int:
        if self.kind == "cnn-attention":
            return self.model.config.heads
        return int(self.model.config.num_attention_heads)

    @property
    def has_conv(self) -> bool:
        """Grad-CAM needs a convolution with a spatial grid; only the bundled family has one."""
        return self.kind == "cnn-attention"

    def pixels(self, image: Image.Image) -> torch.Tensor:
        """An RGB image -> (1, 3, H, W) float on the model's device, as the model expects it."""
        h, w = self.input_size
        resized = image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
        x = torch.frombuffer(bytearray(resized.tobytes()), dtype=torch.uint8).view(1, h, w, 3)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> logits (B, K), attention (B, L, heads, T, T)."""
        if self.kind == "cnn-attention":
            return self.model(x, return_attention=True)
        out = self.model(pixel_values=x, output_attentions=True)
        return out.logits, torch.stack(out.attentions, dim=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> logits (B, K); the function captum differentiates."""
        return self.model(x) if self.kind == "cnn-attention" else self.model(pixel_values=x).logits


def load_image_model(name: str | None = None, device: torch.device | str | None = None) -> ImageModel:
    """The bundled model (``name`` None or ``BUNDLED_IMAGE_MODEL``), a folder, or a hub id."""
    device = torch.device(device) if device is not None else pick_device()
    if name is None or name.strip() in ("", BUNDLED_IMAGE_MODEL):
        return _load_cnn_attention(BUNDLED_DIR, BUNDLED_IMAGE_MODEL, device)
    name = name.strip()
    folder = Path(name).expanduser()
    if folder.is_dir() and (folder / CARD_FILE).is_file():
        return _load_cnn_attention(folder, name, device)
    return _load_vit(name, device)


def _load_cnn_attention(folder: Path, label: str, device: torch.device) -> ImageModel:
    weights, card_path = folder / WEIGHTS_FILE, folder / CARD_FILE
    if not weights.is_file() or not card_path.is_file():
        raise ModelLoadError(
            f"The image model in {folder} is missing {WEIGHTS_FILE} or {CARD_FILE}. Train it with "
            "`python -m attnviz.train` (or reinstall attnviz to restore the bundled one)."
        )
    try:
        card = json.loads(card_path.read_text())
        expected = card.get("weights_sha256")
        if expected and sha256_file(weights) != expected:
            raise ModelLoadError(
                f"{weights} does not match the SHA-256 in its model card: the file is damaged or was replaced. "
                "Retrain with `python -m attnviz.train` or restore the file (git checkout assets/)."
            )
        config = CnnAttentionConfig.from_dict(card["config"])
        model = CnnAttention(config)
        model.load_state_dict(load_file(str(weights)))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(
            f"The image model in {folder} could not be read ({type(exc).__name__}: {exc}). "
            "Retrain it with `python -m attnviz.train`."
        ) from exc
    model.eval().to(device)
    return ImageModel(
        name=label,
        kind="cnn-attention",
        model=model,
        classes=tuple(card["classes"]),
        input_size=(config.image_size, config.image_size),
        grid=(config.grid, config.grid),
        device=device,
        card=card,
    )


def _load_vit(name: str, device: torch.device) -> ImageModel:
    from transformers import AutoConfig, AutoModelForImageClassification

    try:
        config = AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"Could not load image model {name!r}: not a folder written by `python -m attnviz.train`, and not "
            f"a Hugging Face model this machine can reach ({exc}). Use the bundled model ({BUNDLED_IMAGE_MODEL})."
        ) from exc
    if config.model_type not in ("vit", "deit"):
        raise ModelLoadError(
            f"{name!r} is a {config.model_type!r} model; attnviz reads attention from ViT-style classifiers "
            f"(vit, deit) with a class token and a patch grid. Use the bundled model ({BUNDLED_IMAGE_MODEL})."
        )
    try:
        model = AutoModelForImageClassification.from_pretrained(name, attn_implementation="eager")
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Could not load the weights of {name!r}: {exc}") from exc
    model.eval().to(device)
    size = config.image_size if isinstance(config.image_size, int) else config.image_size[0]
    patch = config.patch_size if isinstance(config.patch_size, int) else config.patch_size[0]
    mean, std = _vit_normalisation(name)
    classes = tuple(config.id2label[i] for i in range(config.num_labels))
    return ImageModel(
        name=name,
        kind="vit",
        model=model,
        classes=classes,
        input_size=(size, size),
        grid=(size // patch, size // patch),
        device=device,
        mean=mean,
        std=std,
    )


def _vit_normalisation(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The processor's mean and std when the model ships one, else ViT's default (0.5, 0.5)."""
    try:
        from transformers import AutoImageProcessor

        proc = AutoImageProcessor.from_pretrained(name)
        return tuple(proc.image_mean), tuple(proc.image_std)
    except (OSError, ValueError, AttributeError, TypeError):
        return (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
