"""Notices about where a model runs: the GPU ran out of memory and it moved to the CPU.

A model's ``notice`` (set by :func:`attnviz.device.move_to_cpu`) is shared by every session,
since the model is. Each page shows it once per run:

* where the page first uses the model, ``with device_notice(model):`` shows a notice set in an
  earlier run (or by another session) before the block, and one set by the block after it;
* later uses in the same run, ``with device_notice(model, earlier=False):``, show it only if
  that block set it (the fallback happened there).

A bad ``ATTNVIZ_THREADS`` is reported with the earlier notices (the default was used instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from attnviz.device import thread_setting_problem
from attnviz.ui.safe import md_escape


def show_notice(model) -> None:
    notice = getattr(model, "notice", None)
    if notice:
        st.warning(md_escape(notice), icon=":material/hourglass_top:")


@contextmanager
def device_notice(model, *, earlier: bool = True) -> Iterator[None]:
    """Show ``model``'s GPU fallback notice around a block that runs it (see the module docstring)."""
    before = getattr(model, "notice", None)
    if earlier:
        if before:
            show_notice(model)
        problem = thread_setting_problem()
        if problem:
            st.warning(md_escape(problem), icon=":material/warning:")
    try:
        yield
    except Exception:  # not Streamlit's stop/rerun signals (BaseException): no st.* call while they pass
        _show_if_new(model, before)
        raise
    _show_if_new(model, before)


def _show_if_new(model, before: str | None) -> None:
    if not before and getattr(model, "notice", None):
        show_notice(model)
