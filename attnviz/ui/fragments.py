"""Partial reruns: a view that reruns alone when one of its own widgets changes (``st.fragment``).

A page's script runs whole when its input changes (the sentence, the model, the mode); a change
inside a view (layer, head, view, query token, a worked-example step control) reruns only that
view's fragment, so the page's title, sidebar, inputs and every other view are neither rebuilt
nor re-sent. State shared between fragments stays where it was, in ``st.session_state``.

What a full run does before the page and a fragment rerun skips (the address bar and the share box
following the widgets, :mod:`attnviz.ui.links`) registers itself with :func:`after_partial_rerun`; this module
imports no page module, so page modules may use it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

_AFTER: dict[str, Callable[[], None]] = {}


def after_partial_rerun(name: str, hook: Callable[[], None]) -> None:
    """Run ``hook`` at the end of every run of a view, partial or not (one hook per ``name``)."""
    _AFTER[name] = hook


def in_partial_rerun() -> bool:
    """True while a fragment reruns on its own (not as part of the page's full run)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def view(key: str):
    """``st.fragment(key=key)`` around a view, and the registered hooks after each of its runs.

    The key lets a widget's callback elsewhere rerun this view alone (``st.rerun(key)``).
    """

    def wrap(func):
        @functools.wraps(func)
        def body(*args, **kwargs):
            result = func(*args, **kwargs)
            # On full runs too: a fragment may fill a container made outside it (the sidebar's share
            # box) in a partial rerun only if it also filled it during the last full run.
            for hook in list(_AFTER.values()):
                hook()
            return result

        return st.fragment(body, key=key)

    return wrap
