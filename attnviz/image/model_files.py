"""The files of a CNN-attention model folder, and where the bundled one lives.

Shared by the loader and the training script, so that loading a model never imports training.
"""

from __future__ import annotations

from pathlib import Path

#: The bundled model, ``assets/image-model`` in the repository (read at call time: tests point it elsewhere).
BUNDLED_DIR = Path(__file__).resolve().parents[2] / "assets" / "image-model"
WEIGHTS_FILE, CARD_FILE = "model.safetensors", "model_card.json"
