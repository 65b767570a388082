"""Showing user text and errors without Markdown, HTML or LaTeX taking effect."""

from __future__ import annotations

import logging
import re

import streamlit as st

from attnviz.errors import InputError

log = logging.getLogger("attnviz")

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])")


def md_escape(text: str) -> str:
    """Backslash-escape everything Streamlit's Markdown (and its LaTeX) would interpret."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def show_input_error(error: InputError) -> None:
    """A message a person can act on, shown literally."""
    st.warning(md_escape(str(error)), icon="✋")


def show_unexpected(error: Exception, what: str) -> None:
    """A bug: short message on the page, full traceback in the server log."""
    log.exception("unexpected error while %s", what)
    st.error(
        f"Something went wrong while {what} ({type(error).__name__}). The details are in the server log; "
        "try another input, or reload the page.",
        icon="🐞",
    )
