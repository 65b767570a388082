"""A bug in the library is a short message on the page, never a traceback, and the app keeps working.

For each page, one library function the page calls on its default inputs is made to raise a
RuntimeError (everywhere attnviz holds it, so a move between modules does not hide it). The page must
show the generic message of ``attnviz.ui.safe.show_unexpected`` (the home page: its own warning,
since a model it cannot load must not stop it), send the traceback to the server log, and draw
normally on the next run once the function works again.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import pytest
import streamlit as st

import attnviz.ui
from attnviz.ui import worked_page
from tests.pages.apptest_helpers import assert_clean, charts, start

pytestmark = pytest.mark.bundled

FAULT = "injected fault for the test"


class InjectedFault(RuntimeError):
    pass


@pytest.fixture
def fresh_caches(empty_caches, caplog):
    """Empty caches (a cached result would hide the broken function), and the log at INFO."""
    caplog.set_level(logging.INFO, logger="attnviz")


def break_everywhere(monkeypatch, module: str, name: str) -> list[str]:
    """Make ``module.name`` raise InjectedFault wherever an attnviz module holds it; returns where."""
    for info in pkgutil.iter_modules(attnviz.ui.__path__, "attnviz.ui."):
        importlib.import_module(info.name)  # every module a page may reach is loaded, so none is missed
    original = getattr(importlib.import_module(module), name)

    def broken(*args, **kwargs):
        raise InjectedFault(FAULT)

    places = []
    for mod_name, mod in list(sys.modules.items()):
        if mod_name == "attnviz" or mod_name.startswith("attnviz."):
            for attr, value in list(vars(mod).items()):
                if value is original:
                    monkeypatch.setattr(mod, attr, broken)
                    places.append(f"{mod_name}.{attr}")
    assert places, f"{module}.{name} is held nowhere"
    return places


def logged_faults(caplog) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "attnviz" and r.exc_info and isinstance(r.exc_info[1], InjectedFault)
    ]


def assert_generic_message(at) -> None:
    assert not at.exception, [e.value for e in at.exception]  # no traceback element
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    (message,) = errors
    assert message.startswith("Something went wrong while ") and "(InjectedFault)" in message, message
    assert "server log" in message and FAULT not in message  # details go to the log, not to the visitor


def real_mode(at) -> None:
    at.radio(key=worked_page.MODE).set_value(worked_page.REAL_MODE).run()


#: (page, module, function the page calls with its default inputs, what to do on the page first)
CASES = [
    ("pages/text.py", "attnviz.text.extraction", "text_attention", None),
    ("pages/head_stats.py", "attnviz.text.extraction", "text_attention", None),
    ("pages/head_stats.py", "attnviz.maths.head_statistics", "head_stats", None),
    ("pages/image.py", "attnviz.image.extraction", "image_attention", None),
    ("pages/image.py", "attnviz.image.attribution", "gradcam", None),
    ("pages/worked_example.py", "attnviz.maths.toy_presets", "toy_steps", None),
    ("pages/worked_example.py", "attnviz.text.worked_example", "explain_head", real_mode),
]


def _params():
    for page, module, name, setup in CASES:
        yield pytest.param(page, module, name, setup, id=f"{page.split('/')[1][:-3]}-{name}")


@pytest.mark.parametrize("page, module, name, setup", list(_params()))
def test_a_library_bug_is_a_short_message_and_the_page_recovers(
    fresh_caches, monkeypatch, caplog, page, module, name, setup
):
    with monkeypatch.context() as patch:
        break_everywhere(patch, module, name)
        at = start(page)
        if setup is not None:
            setup(at)
        assert_generic_message(at)
        assert logged_faults(caplog), "the traceback must reach the server log"
    # The function works again (the broken result was not cached): the same session draws the page.
    at.run()
    assert_clean(at)
    assert charts(at), f"{page} drew no chart after the fault was gone"
    at.switch_page("pages/home.py").run()
    assert_clean(at)


def test_the_home_page_names_a_model_it_could_not_load_for_a_bug(fresh_caches, monkeypatch, caplog):
    """Home lists models; a bug while loading one is that row's status and a warning, and the page still renders."""
    with monkeypatch.context() as patch:
        break_everywhere(patch, "attnviz.image.loading", "load_image_model")
        at = start()
        assert_clean(at)  # no traceback, no error box
        warnings = [w.value for w in at.warning]
        assert len(warnings) == 1 and "unexpected InjectedFault" in warnings[0] and "server log" in warnings[0]
        table = at.dataframe[0].value
        image_row = table[table["kind"] == "image"].iloc[0]
        assert image_row["status"] == "unavailable: unexpected InjectedFault; the details are in the server log"
        assert table[table["kind"] == "text"].iloc[0]["status"].startswith("loaded")
        assert logged_faults(caplog)
    st.cache_resource.clear()
    at.run()
    assert_clean(at)
    assert not at.warning
    assert at.dataframe[0].value["status"].str.startswith("loaded").all()
