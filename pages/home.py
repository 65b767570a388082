"""Home: what attnviz does, where it runs, and the way to each page."""

import streamlit as st

from attnviz.ui.home import loaded_models, runtime_summary
from attnviz.ui.router import require_router

require_router()

st.title("attnviz")
st.markdown(
    "See where attention models look. Type a sentence and inspect the attention of every "
    "layer and head of a BERT-family encoder: one head's matrix, all heads side by side, "
    "the whole model at a glance, token-to-token lines, and the attention from one token."
)
st.page_link(
    "pages/text.py", label="Text attention: every layer and head for your sentence", icon=":material/text_fields:"
)

st.subheader("Where it runs")
st.markdown(runtime_summary())
st.subheader("Models")
st.dataframe(loaded_models(), hide_index=True, width="stretch")
st.caption("attnviz is also a Python library: `import attnviz` (see the README).")
