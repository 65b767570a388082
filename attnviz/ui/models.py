"""Models and results cached across reruns and users.

Models are cached once per (name, configured device) with ``st.cache_resource``: one object
shared by every session. It changes once at most: if the GPU runs out of memory it moves to the
CPU (``attnviz.device.falls_back_to_cpu``). Results are cached per (model, device, text, pair)
in bounded ``st.cache_data``; keys are primitives only (DESIGN.md: tensors cannot be hashed).

The ``device`` of a result key is where the model runs *now* (:func:`run_device`), not the
configured device: after a fallback every key says ``"cpu"``, so no result computed on the GPU
is mixed with the CPU's, while the cached functions keep using the one shared (moved) model
(:func:`shared_text_model`) instead of loading a second copy on the CPU.
"""

from __future__ import annotations

import streamlit as st

from attnviz.device import pick_device
from attnviz.errors import InputError
from attnviz.text.extraction import TextAttention, text_attention
from attnviz.text.loading import BUNDLED_TEXT_MODEL, TextModel, load_text_model

#: Session-state key of the text model the user has loaded.
TEXT_MODEL_KEY = "text_model_name"


def device_name() -> str:
    """Where models are configured to run; a bad ATTNVIZ_DEVICE falls back to the CPU with a visible warning."""
    try:
        return str(pick_device())
    except InputError as exc:
        st.warning(f"{exc} Using the CPU.", icon="⚠️")
        return "cpu"


def configured_device() -> str:
    """:func:`device_name` without the warning (for code inside cached functions)."""
    try:
        return str(pick_device())
    except InputError:
        return "cpu"


@st.cache_resource(show_spinner="Loading the text model…", max_entries=4)
def text_model(name: str, device: str) -> TextModel:
    return load_text_model(name, device=device)


def shared_text_model(name: str) -> TextModel:
    """The one shared model ``name``, wherever it runs now."""
    return text_model(name, configured_device())


def run_device(model) -> str:
    """Where ``model`` (a TextModel or ImageModel) runs now: the device part of result-cache keys."""
    return str(model.device)


# 8 entries: a 512-token result of a bert-base-sized model pickles to 151 MB.
@st.cache_data(show_spinner="Running the model…", max_entries=8)
def cached_text_attention(name: str, device: str, text: str, text_pair: str | None) -> TextAttention:
    """``device``: :func:`run_device` of the shared model (a key only; the shared model runs)."""
    return text_attention(shared_text_model(name), text, text_pair)


def current_text_model_name() -> str:
    return st.session_state.get(TEXT_MODEL_KEY, BUNDLED_TEXT_MODEL)
