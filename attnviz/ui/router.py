"""Keep every visit going through the router in app.py.

Streamlit treats an app with a folder named ``pages/`` as an old-style (v1) multipage app
until the main script has called ``st.navigation`` once. If the first visitor after a server
start opens a page URL directly (say ``/text``), Streamlit runs ``pages/text.py`` on its own:
no router, no page config, a sidebar listing "app, home, text". We measured this on
streamlit 1.67. Each page calls :func:`require_router` first; in that state it switches
Streamlit to ``st.navigation`` mode and reruns, which runs app.py and then the same page.
"""

from __future__ import annotations

import streamlit as st


def require_router() -> None:
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without this class: nothing to repair
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()
