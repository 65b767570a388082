"""Partial reruns (attnviz.ui.fragments): a view is an ``st.fragment`` that draws the same whether the page
runs whole or the view reruns alone, and the hooks that follow a partial rerun run after each of its runs.

AppTest reruns the whole script on every widget change (a fragment's own rerun happens only in a
browser session), so that the view reruns alone is measured in the browser by
``benchmarks/interaction_latency.py`` (bytes and time per interaction), and the pages' browser tests
check what the views draw after such reruns."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _app():
    import streamlit as st

    from attnviz.ui import fragments

    st.session_state["page_runs"] = st.session_state.get("page_runs", 0) + 1
    fragments.after_partial_rerun(
        "test_partial_reruns", lambda: st.session_state.__setitem__("hooks", st.session_state.get("hooks", 0) + 1)
    )

    @fragments.view("test_view")
    def view(label: str) -> None:
        st.session_state["view_runs"] = st.session_state.get("view_runs", 0) + 1
        head = st.selectbox("Head", range(3), key="head")
        st.markdown(f"{label}: head {head}, partial {fragments.in_partial_rerun()}")

    st.selectbox("Input", ["a", "b"], key="input")
    view(f"input {st.session_state['input']}")


def test_a_view_keeps_its_state_and_its_hooks_follow_every_run():
    at = AppTest.from_function(_app).run()
    assert (at.session_state["page_runs"], at.session_state["view_runs"]) == (1, 1)
    assert at.session_state["hooks"] == 1  # after every run of the view (the share box must be filled on full runs)
    assert at.markdown[0].value == "input a: head 0, partial False"

    at.selectbox(key="head").set_value(2).run()
    assert at.markdown[0].value.startswith("input a: head 2")

    # The input is outside the view: the page reruns, and the view with it, keeping its head.
    at.selectbox(key="input").set_value("b").run()
    assert at.markdown[0].value == "input b: head 2, partial False"
    assert at.session_state["hooks"] == 3
