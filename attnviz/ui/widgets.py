"""Widgets shared by several pages: the text and image model pickers, the text-box guard."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import streamlit as st

from attnviz.device import device_label
from attnviz.errors import ModelLoadError
from attnviz.image.loading import BUNDLED_IMAGE_MODEL
from attnviz.model_source import check_model_name
from attnviz.text import bundled_decoder
from attnviz.text.loading import BUNDLED_TEXT_MODEL, TextModel
from attnviz.ui.cache import configured_device, image_model, text_model
from attnviz.ui.safe import log_model_error, md_escape, message_markdown, show_input_error
from attnviz.ui.text_boxes import guard_text_boxes

#: Session-state key of the text model the user has loaded.
TEXT_MODEL_KEY = "text_model_name"


@dataclass(frozen=True)
class ModelPicker:
    """One sidebar picker: a bundled model (a button each), or a typed name that loads or leaves
    the current one.

    ``current``, ``typed`` and ``error`` are session-state keys: the name in use, the text box,
    and the message of the last failed load (shown until the next success). ``others``: more
    bundled models, each ``(name, what it is)``; ``prepare``: called with the name before each
    load (the bundled decoder shows its one-time conversion there).
    """

    title: str
    bundled: str
    load: Callable[[str, str], object]  # (name, device) -> model; a cached loader
    current: str
    typed: str
    error: str
    placeholder: str
    help: str
    empty_message: str
    others: tuple[tuple[str, str], ...] = ()
    prepare: Callable[[str], None] | None = None

    def name(self) -> str:
        return st.session_state.get(self.current, self.bundled)

    def _load_typed(self) -> None:
        """Form callback: load the typed model; on failure keep the current one and say why."""
        name = st.session_state.get(self.typed, "").strip()
        if not name:
            st.session_state[self.error] = self.empty_message
            return
        try:
            # The server's policy first (ATTNVIZ_LOCAL_MODELS, ATTNVIZ_MODEL_DIRS, ATTNVIZ_HUB_MODELS):
            # a refused name never reaches a loader or its cache.
            self._check(name)
            if self.prepare is not None:
                self.prepare(name)
            self.load(name, configured_device())
        except ModelLoadError as exc:
            log_model_error(name, exc)
            st.session_state[self.error] = str(exc)
            return
        st.session_state[self.current] = name
        st.session_state.pop(self.error, None)

    def _check(self, name: str) -> None:
        """The policy, for any name that is not one of the bundled models (which always load)."""
        if name not in (self.bundled, *(other for other, _ in self.others)):
            check_model_name(name, self.bundled)

    check = _check  # a shared link names a model too (attnviz.ui.links)

    def _use_bundled(self, name: str | None = None) -> None:
        st.session_state[self.current] = name or self.bundled
        st.session_state.pop(self.error, None)

    def draw(self):
        """Draw the picker in the sidebar; returns the model in use, or None (with a message).

        Every page with a text box has a picker, so the picker installs the text-box guard too.
        """
        with st.sidebar:
            st.subheader(self.title)
            with st.form(f"{self.current}_form", border=False):
                st.text_input("Another model", key=self.typed, placeholder=self.placeholder, help=self.help)
                st.form_submit_button("Load", on_click=self._load_typed)
            st.button(f"Use bundled {self.bundled}", on_click=self._use_bundled, disabled=self.name() == self.bundled)
            for other, what in self.others:
                st.button(
                    f"Use bundled {other} ({what})",
                    on_click=partial(self._use_bundled, other),
                    disabled=self.name() == other,
                )
            if self.error in st.session_state:
                st.warning(message_markdown(st.session_state[self.error]), icon=":material/back_hand:")
            guard_text_boxes()  # last in the sidebar: its (empty) element takes a line of space
        name = self.name()
        try:
            self._check(name)  # a name kept in the session is checked again
            if self.prepare is not None:
                self.prepare(name)
            return self.load(name, configured_device())
        except ModelLoadError as exc:
            log_model_error(name, exc)
            show_input_error(exc)  # in the page itself: without a model there is nothing else to see
            return None


def prepare_bundled_decoder(name: str) -> None:
    """Before the bundled decoder's first load on this machine: convert its GGUF file (about 30 s)
    with the steps shown, instead of a bare spinner. Every later run finds the conversion on disk."""
    if name != bundled_decoder.BUNDLED_DECODER or bundled_decoder.looks_converted():
        return
    with st.status(f"Preparing {name} for its first use…", expanded=True) as status:
        bundled_decoder.converted_folder(progress=status.write)
        status.update(label=f"{name} is ready (converted once, kept on disk).", state="complete", expanded=False)


TEXT_MODEL_PICKER = ModelPicker(
    title="Text model",
    bundled=BUNDLED_TEXT_MODEL,
    load=text_model,
    current=TEXT_MODEL_KEY,
    typed="model_name_input",
    error="model_error",
    placeholder="bert-base-uncased or /path/to/folder",
    help="A BERT-style encoder or a decoder language model (GPT-2, Llama, Qwen2, Mistral, ...): a Hugging "
    "Face hub id (needs internet) or a local folder written by save_pretrained. The bundled models need neither.",
    empty_message="Type a hub id (e.g. bert-base-uncased, gpt2) or the path of a local model folder.",
    others=((bundled_decoder.BUNDLED_DECODER, "decoder"),),
    prepare=prepare_bundled_decoder,
)


current_text_model_name = TEXT_MODEL_PICKER.name

IMAGE_MODEL_PICKER = ModelPicker(
    title="Image model",
    bundled=BUNDLED_IMAGE_MODEL,
    load=image_model,
    current="image_model_name",
    typed="image_model_input",
    error="image_model_error",
    placeholder="my-model/ or google/vit-base-patch16-224",
    help="A folder written by `python -m attnviz.image.train --data ... --out ...`, or a Hugging Face "
    "ViT/DeiT classifier (hub id or folder). The bundled model needs neither.",
    empty_message="Type the path of a folder written by `python -m attnviz.image.train`, or a ViT hub id "
    "(needs internet).",
)
current_image_model_name = IMAGE_MODEL_PICKER.name


def text_model_picker() -> TextModel | None:
    """Sidebar model picker; returns the loaded model, or None (with a message) if it failed."""
    tm = TEXT_MODEL_PICKER.draw()
    if tm is not None:
        kind = "decoder" if tm.causal else "encoder"
        st.sidebar.caption(
            f"Loaded: {md_escape(tm.name)} ({kind}) · {tm.n_layers} layers × {tm.n_heads} heads · "
            f"runs on {device_label(tm.device)}"
        )
    return tm
