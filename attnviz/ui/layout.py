"""Page layout shared by every page: room for the figures on a projector's 1280 x 720 screen."""

from __future__ import annotations

import streamlit as st

#: Streamlit leaves 6 rem above a page's title; at 720 pixels high that pushed the text page's
#: figure below the fold. A constant (no user text): DOMPurify keeps a <style> element.
_COMPACT_TOP = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; }
</style>"""


def compact_top() -> None:
    """Less empty space above each page's title (a style only: it takes no room itself)."""
    st.html(_COMPACT_TOP)
