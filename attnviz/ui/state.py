"""Widget values that outlive the runs in which their widget is not drawn.

Streamlit deletes a widget's value at the end of any run that does not draw it: visiting the
home page would forget the sentence, an empty sentence would reset the layer. Assigning the
value back to itself at the start of every run makes it the user's value, which Streamlit
keeps; the widget picks it up again when it is next drawn.
"""

from __future__ import annotations

from collections.abc import Iterable

import streamlit as st


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
