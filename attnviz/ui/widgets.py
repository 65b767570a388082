"""Widgets shared by several pages."""

from __future__ import annotations

import streamlit as st

from attnviz.device import device_label
from attnviz.errors import ModelLoadError
from attnviz.text_model import BUNDLED_TEXT_MODEL, TextModel
from attnviz.ui.models import TEXT_MODEL_KEY, current_text_model_name, device_name, text_model
from attnviz.ui.safe import md_escape, show_input_error


def _load_other() -> None:
    """Form callback: load the typed model; on failure keep the current one and say why."""
    name = st.session_state.get("model_name_input", "").strip()
    if not name:
        st.session_state["model_error"] = "Type a hub id (e.g. bert-base-uncased) or the path of a local model folder."
        return
    try:
        text_model(name, device_name())
    except ModelLoadError as exc:
        st.session_state["model_error"] = str(exc)
        return
    st.session_state[TEXT_MODEL_KEY] = name
    st.session_state.pop("model_error", None)


def _use_bundled() -> None:
    st.session_state[TEXT_MODEL_KEY] = BUNDLED_TEXT_MODEL
    st.session_state.pop("model_error", None)


def text_model_picker() -> TextModel | None:
    """Sidebar model picker; returns the loaded model, or None (with a message) if it failed."""
    with st.sidebar:
        st.subheader("Text model")
        with st.form("text_model_form", border=False):
            st.text_input(
                "Another model",
                key="model_name_input",
                placeholder="bert-base-uncased or /path/to/folder",
                help="A BERT-style encoder: a Hugging Face hub id (needs internet) or a local folder "
                "written by save_pretrained. The bundled model needs neither.",
            )
            st.form_submit_button("Load", on_click=_load_other)
        st.button(
            f"Use bundled {BUNDLED_TEXT_MODEL}",
            on_click=_use_bundled,
            disabled=current_text_model_name() == BUNDLED_TEXT_MODEL,
        )
        if "model_error" in st.session_state:
            st.warning(md_escape(st.session_state["model_error"]), icon="✋")
        name = current_text_model_name()
        try:
            tm = text_model(name, device_name())
        except ModelLoadError as exc:
            show_input_error(exc)
            return None
        st.caption(
            f"Loaded: {md_escape(name)} · {tm.n_layers} layers × {tm.n_heads} heads · runs on {device_label(tm.device)}"
        )
    return tm
