"""Facts the home page shows: device and models."""

from __future__ import annotations

import pandas as pd
import torch

from attnviz.device import DEVICE_ENV, device_label
from attnviz.text_model import BUNDLED_TEXT_MODEL
from attnviz.ui.models import current_text_model_name, device_name, text_model
from attnviz.ui.safe import md_escape


def runtime_summary() -> str:
    device = torch.device(device_name())
    return (
        f"Models run on the **{md_escape(device_label(device))}** (`{device}`), chosen as CUDA, then Apple MPS, "
        f"then CPU; set `{DEVICE_ENV}` to override. PyTorch {md_escape(torch.__version__)}."
    )


def loaded_models() -> pd.DataFrame:
    """The text model this session uses (loaded now if needed, so the table tells the truth)."""
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
    return pd.DataFrame(rows)
