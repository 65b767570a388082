"""The files of a CNN-attention model folder, and where the bundled one lives.

Shared by the loader and the training script, so that loading a model never imports training.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

#: The bundled model, ``assets/image-model`` in the repository (read at call time: tests point it elsewhere).
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "assets" / "image-model"
WEIGHTS_FILE, CARD_FILE = "model.safetensors", "model_card.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
