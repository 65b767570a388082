"""attnviz: the router. Run with `streamlit run app.py`."""

import streamlit as st

st.set_page_config(page_title="attnviz", page_icon=":material/visibility:", layout="wide")
st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/text.py", title="Text attention", icon=":material/text_fields:"),
    ]
).run()
