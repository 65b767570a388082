"""Worked example: one attention head's Q/K/V maths, step by step, on toy numbers or the loaded model."""

import streamlit as st

from attnviz.ui.router import require_router

# First, before the imports below (PyTorch behind real mode's: 5-10 s after a server start): a first visit
# straight to this page's address runs this file alone, and the rerun through app.py starts the warm start sooner.
require_router()

from attnviz.ui import worked_toy as toy  # noqa: E402  (no PyTorch: toy mode draws while it is imported)

st.title("Worked example: one attention head, step by step")
st.caption("Every number below is computed from the inputs, none is typed; in real mode the page proves it.")
if toy.mode_picker() == toy.TOY_MODE:
    toy.toy_view()
else:
    from attnviz.ui import worked_page as page
    from attnviz.ui.widgets import text_model_picker

    page.follow_link()
    tm = text_model_picker()
    if tm is not None:  # no st.stop(): a stopped run leaves the last run's views (fragments) on the page
        page.real_view(tm, page.real_sentence())
