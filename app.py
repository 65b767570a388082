"""attnviz: the router. Run with `streamlit run app.py`."""

import streamlit as st

from attnviz.ui.state import keep_widget_state
from attnviz.ui.text_page import KEPT as TEXT_PAGE_CHOICES

st.set_page_config(page_title="attnviz", page_icon=":material/visibility:", layout="wide")
keep_widget_state(TEXT_PAGE_CHOICES)  # a sentence typed on one page survives a visit to another
st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/text.py", title="Text attention", icon=":material/text_fields:"),
    ]
).run()
