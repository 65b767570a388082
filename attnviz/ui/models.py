"""Models and results cached across reruns and users.

Models are cached once per (name, device) with ``st.cache_resource``: one copy shared by
every session, never mutated. Attention results are cached per (model, device, text, pair)
in a bounded ``st.cache_data``; keys are primitives only (DESIGN.md: tensors cannot be hashed).
"""

from __future__ import annotations

import streamlit as st

from attnviz.device import pick_device
from attnviz.errors import InputError
from attnviz.text_extraction import TextAttention, text_attention
from attnviz.text_model import BUNDLED_TEXT_MODEL, TextModel, load_text_model

#: Session-state key of the text model the user has loaded.
TEXT_MODEL_KEY = "text_model_name"


def device_name() -> str:
    """Where models run; a bad ATTNVIZ_DEVICE falls back to the CPU with a visible warning."""
    try:
        return str(pick_device())
    except InputError as exc:
        st.warning(f"{exc} Using the CPU.", icon="⚠️")
        return "cpu"


@st.cache_resource(show_spinner="Loading the text model…", max_entries=4)
def text_model(name: str, device: str) -> TextModel:
    return load_text_model(name, device=device)


# 8 entries: a 512-token result of a bert-base-sized model pickles to 151 MB.
@st.cache_data(show_spinner="Running the model…", max_entries=8)
def cached_text_attention(name: str, device: str, text: str, text_pair: str | None) -> TextAttention:
    return text_attention(text_model(name, device), text, text_pair)


def current_text_model_name() -> str:
    return st.session_state.get(TEXT_MODEL_KEY, BUNDLED_TEXT_MODEL)
