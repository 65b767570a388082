"""Facts the home page shows: device and models."""

from __future__ import annotations

import pandas as pd
import torch

from attnviz.device import DEVICE_ENV, device_label
from attnviz.image_model import BUNDLED_IMAGE_MODEL
from attnviz.text_model import BUNDLED_TEXT_MODEL
from attnviz.ui.image_models import image_model
from attnviz.ui.image_page import model_name as image_model_name
from attnviz.ui.models import current_text_model_name, device_name, text_model
from attnviz.ui.safe import md_escape


def runtime_summary() -> str:
    device = torch.device(device_name())
    return (
        f"Models run on the **{md_escape(device_label(device))}** (`{device}`), chosen as CUDA, then Apple MPS, "
        f"then CPU; set `{DEVICE_ENV}` to override. PyTorch {md_escape(torch.__version__)}."
    )


def loaded_models() -> pd.DataFrame:
    """The text and image models this session uses (loaded now if needed, so the table tells the truth)."""
    name = current_text_model_name()
    rows = []
    try:
        tm = text_model(name, device_name())
        rows.append(
            {
                "kind": "text",
                "model": name,
                "bundled": name == BUNDLED_TEXT_MODEL,
                "layers": tm.n_layers,
                "heads": tm.n_heads,
                "max tokens": tm.max_tokens,
                "status": "loaded",
            }
        )
    except Exception as exc:  # shown, not raised: the home page must always render
        rows.append(
            {
                "kind": "text",
                "model": name,
                "bundled": name == BUNDLED_TEXT_MODEL,
                "layers": None,
                "heads": None,
                "max tokens": None,
                "status": f"failed: {exc}",
            }
        )
    rows.append(_image_row())
    return pd.DataFrame(rows)


def _image_row() -> dict:
    name = image_model_name()
    row = {"kind": "image", "model": name, "bundled": name == BUNDLED_IMAGE_MODEL, "max tokens": None}
    try:
        im = image_model(name, device_name())
    except Exception as exc:  # shown, not raised: the home page must always render
        return {**row, "layers": None, "heads": None, "status": f"failed: {exc}"}
    grid = f"{im.grid[0]}x{im.grid[1]} grid + class token"
    return {
        **row,
        "layers": im.n_layers,
        "heads": im.n_heads,
        "max tokens": 1 + im.grid[0] * im.grid[1],
        "status": f"loaded ({grid})",
    }
