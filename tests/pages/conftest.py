"""Fixtures of the page tests."""

from __future__ import annotations

import pytest
import streamlit as st

from attnviz.ui.safe import forget_logged_model_errors


def _forget_everything() -> None:
    st.cache_data.clear()
    st.cache_resource.clear()
    forget_logged_model_errors()


@pytest.fixture
def empty_caches():
    """Empty Streamlit's caches and the logged model errors before and after the test: a cached
    result would hide a broken function, and a broken model must not leak into other tests."""
    _forget_everything()
    yield
    _forget_everything()
