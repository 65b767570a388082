"""Session state beyond one page: the keys several pages share, and widget values kept alive.

Shared keys live here, not in a page module, so that no ui page module imports another.

Streamlit deletes a widget's value at the end of any run that does not draw it: visiting the
home page would forget the sentence, an empty sentence would reset the layer. Assigning the
value back to itself at the start of every run makes it the user's value, which Streamlit
keeps; the widget picks it up again when it is next drawn.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

# ---------------------------------------------------------------- keys that several pages share

#: The sentence, second sentence and pair mode that the text and head-statistics pages share
#: (attnviz.ui.sentence draws them); the worked example offers the sentence too.
TEXT, PAIR, PAIR_ON = "text_input", "text_pair_input", "pair_mode"
#: The text page's layer, head and view, which the worked example sets to open its head there.
LAYER, HEAD, VIEW = "layer", "head", "view"
SINGLE_HEAD = "Single head"  # the text page's first view


def show_head_on_text_page(text: str, layer: int, head: int) -> None:
    """Set the text page's sentence (one, no pair), layer, head and view: its single-head matrix.

    From a callback (the only moment a widget's value may change); then switch to the text page.
    """
    st.session_state[TEXT] = text
    st.session_state[PAIR_ON] = False
    st.session_state[LAYER] = layer
    st.session_state[HEAD] = head
    st.session_state[VIEW] = SINGLE_HEAD


#: Set by a click that opens a head on the text page; the page acts on it (st.switch_page cannot
#: run inside a callback).
GOTO_TEXT = "_attnviz_goto_text"


def open_head_on_text_page(layer: int, head: int) -> None:
    """From a callback: the text page's layer and head (single-head view, the sentence as it is),
    and a note for :func:`follow_goto` to switch there."""
    st.session_state[LAYER] = layer
    st.session_state[HEAD] = head
    st.session_state[VIEW] = SINGLE_HEAD
    st.session_state[GOTO_TEXT] = True


def follow_goto() -> None:
    """Switch to the text page when a click asked for it (see :func:`open_head_on_text_page`)."""
    if st.session_state.pop(GOTO_TEXT, False):
        st.switch_page("pages/text.py")


# ---------------------------------------------------------------- kept values


def keep_default(key: str, value) -> None:
    """A kept widget's first value, given through Session State rather than the widget's ``value``.

    keep_widget_state assigns kept values through the Session State API; a widget that also
    gets a default ``value`` makes Streamlit log a warning about the two sources.
    """
    st.session_state.setdefault(key, value)


def keep_widget_state(keys: Iterable[str]) -> None:
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
