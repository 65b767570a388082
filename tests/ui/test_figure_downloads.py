"""The shared Figure control: three buttons and a paper-ready switch; files made on the click, or once
per format when they must survive reruns."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _script_lazy():
    import streamlit as st

    from attnviz.ui.figure_downloads import figure_downloads

    calls = st.session_state.setdefault("calls", [])
    figure_downloads(lambda fmt, paper: calls.append((fmt, paper)) or b"x", stem="f", key="fig")


def _script_kept():
    import streamlit as st

    from attnviz.ui.figure_downloads import figure_downloads

    calls = st.session_state.setdefault("calls", [])
    keep = st.session_state.setdefault("keep", {})
    figure_downloads(lambda fmt, paper: calls.append((fmt, paper)) or fmt.encode(), stem="f", key="fig", keep=keep)


def test_three_buttons_and_a_switch_and_nothing_is_rendered_on_a_rerun():
    at = AppTest.from_function(_script_lazy).run()
    buttons = list(at.get("download_button"))
    assert [b.label for b in buttons] == ["PNG", "SVG", "PDF"]
    assert all(b.proto.deferred_file_id for b in buttons)  # made on the click, not now
    paper = at.toggle(key="fig_paper")
    assert paper.label == "Paper-ready" and "colour bar" in paper.help and not paper.value
    paper.set_value(True).run()
    at.run()
    assert at.session_state["calls"] == []


def test_kept_files_are_made_once_per_format_and_paper_setting():
    at = AppTest.from_function(_script_kept).run()
    assert sorted(at.session_state["calls"]) == [("pdf", False), ("png", False), ("svg", False)]
    buttons = list(at.get("download_button"))
    assert all(not b.proto.deferred_file_id and b.proto.ignore_rerun for b in buttons)
    at.run()
    assert len(at.session_state["calls"]) == 3  # a rerun makes nothing again
    at.toggle(key="fig_paper").set_value(True).run()
    assert sorted(at.session_state["calls"][3:]) == [("pdf", True), ("png", True), ("svg", True)]
