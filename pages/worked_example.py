"""Worked example: one attention head's Q/K/V maths, step by step, on toy numbers or the loaded model."""

import streamlit as st

from attnviz.ui import worked_page as page
from attnviz.ui.router import require_router
from attnviz.ui.widgets import text_model_picker

require_router()
page.follow_link()

st.title("Worked example: one attention head, step by step")
st.caption("Every number below is computed from the inputs, none is typed; in real mode the page proves it.")
if page.mode_picker() == page.TOY_MODE:
    page.toy_view()
else:
    tm = text_model_picker()
    if tm is None:
        st.stop()
    page.real_view(tm, page.real_sentence())
