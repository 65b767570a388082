"""Facts the home page shows: device and models."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from attnviz.device import DEVICE_ENV, device_label
from attnviz.errors import ModelLoadError
from attnviz.image.loading import BUNDLED_IMAGE_MODEL
from attnviz.text.loading import BUNDLED_TEXT_MODELS
from attnviz.ui.cache import configured_device, image_model, text_model
from attnviz.ui.notices import show_notice
from attnviz.ui.safe import log, log_model_error, md_escape, message_markdown
from attnviz.ui.widgets import current_image_model_name, current_text_model_name


def runtime_summary() -> str:
    device = torch.device(configured_device())
    return (
        f"Models run on the **{md_escape(device_label(device))}** (`{device}`), chosen as CUDA, then Apple MPS, "
        f"then CPU; set `{DEVICE_ENV}` to override. PyTorch {md_escape(torch.__version__)}."
    )


def loaded_models() -> pd.DataFrame:
    """The text and image models this session uses (loaded now if needed, so the table tells the truth).

    A model that cannot be loaded never stops the page: its row says "unavailable" and why, a
    warning above the table names it, and the server log gets the details.
    """
    name = current_text_model_name()
    row = {"kind": "text", "model": name, "bundled": name in BUNDLED_TEXT_MODELS}
    tm, problem = _load("text", name, text_model)
    if tm is None:
        rows = [{**row, "layers": None, "heads": None, "max tokens": None, "status": f"unavailable: {problem}"}]
    else:
        rows = [{**row, "layers": tm.n_layers, "heads": tm.n_heads, "max tokens": tm.max_tokens, "status": _status(tm)}]
    rows.append(_image_row())
    return pd.DataFrame(rows)


def _load(kind: str, name: str, loader):
    """(model, None), or (None, why) with a warning on the page and a record in the log."""
    try:
        return loader(name, configured_device()), None
    except ModelLoadError as exc:
        log_model_error(name, exc)
        why = str(exc)
    except Exception as exc:  # a bug: the home page must still render
        log.exception("unexpected error while loading the %s model %r for the home page", kind, name)
        why = f"unexpected {type(exc).__name__}; the details are in the server log"
    st.warning(message_markdown(f"The {kind} model {name!r} is unavailable: {why}"), icon=":material/back_hand:")
    return None, why


def _image_row() -> dict:
    name = current_image_model_name()
    row = {"kind": "image", "model": name, "bundled": name == BUNDLED_IMAGE_MODEL, "max tokens": None}
    im, problem = _load("image", name, image_model)
    if im is None:
        return {**row, "layers": None, "heads": None, "status": f"unavailable: {problem}"}
    grid = f"{im.grid[0]}x{im.grid[1]} grid + class token"
    return {
        **row,
        "layers": im.n_layers,
        "heads": im.n_heads,
        "max tokens": 1 + im.grid[0] * im.grid[1],
        "status": f"{_status(im)} ({grid})",
    }


def _status(model) -> str:
    """Where a loaded model runs now; after a GPU out-of-memory it is the CPU, and its notice shows."""
    show_notice(model)
    return f"loaded, runs on {model.device}"
