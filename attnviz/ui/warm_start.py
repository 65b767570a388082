"""Warm starts: the app's modules imported and the bundled models loaded once per server
process, in the background, while the first visitor's home page draws.

Streamlit runs no app code before the first request, so the router (app.py) calls :func:`start`
on every run and the first one starts a daemon thread. The thread first imports the app's
modules (:data:`APP_MODULES`: PyTorch, transformers and captum behind them take 5 s on an idle
machine, 17 s on two busy cores), then loads the bundled models in the order the pages need
them: the text encoder (text page, worked example, head statistics), the image model, then the
decoder (converted once from its GGUF if this machine has never done it).

Before those imports the thread imports Plotly (:data:`CHART_MODULES`, under a second), so that a
page waiting for the rest (:func:`wait_for_imports`) can already draw one empty chart: the browser
then fetches and compiles Plotly's 4.7 MB script on its own core while the server imports PyTorch,
instead of after, when the page's first real chart arrives (2-4 s on two busy cores).

Once the modules are imported, and again once the models are loaded, the server's objects are moved
out of the garbage collector's sight (``gc.freeze``, when :func:`start` makes the warm start):
Streamlit runs a full collection after every script run (``runner.postScriptGC``), and with PyTorch,
transformers and the models in memory that walked ~600,000 objects each time, 0.25 s on an idle
core and 0.8 s on two busy ones, after every click; frozen, it takes under a millisecond and still
collects what each run leaves behind.

Meanwhile the home page needs none of that (:func:`light_run`): the router draws it at once
with what it knows, and a fragment on it redraws the facts every second until the imports and
then the models are done. The worked example's toy mode, its default, needs only Plotly and numpy:
the thread imports it (:data:`LIGHT_MODULES`) right after Plotly, and a first visit there draws its
charts while PyTorch is imported. Every other page waits for the imports (never importing them in a
second thread at the same time, see :func:`wait_for_imports`) and then for its own model only.

The models are loaded through the app's own cached loaders (``attnviz.ui.cache.text_model`` /
``image_model``), so a page later finds each in ``st.cache_resource``; a page that asks for a
model while the thread is loading it waits on the per-key lock that Streamlit's cache holds while
it computes a value (``compute_value_lock``), then gets the same object: no model is loaded twice.
``st.cache_resource`` works from a thread without a ScriptRunContext in Streamlit 1.67: a global
cache needs no session, and the loader's spinner becomes a no-op (Streamlit logs "missing
ScriptRunContext" for it, which :func:`_not_from_the_loader` keeps out of the log for this thread).

``ATTNVIZ_WARM_START=0`` switches it off (the test suite does, so that no thread loads models
behind a test's monkeypatches): then every run imports what it needs, models load when a page first
needs one, and the home page loads the models it lists, as before.

This module imports nothing heavy (no torch): the router imports it before anything else.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import streamlit as st

from attnviz.errors import ModelLoadError
from attnviz.ui.safe import log, log_model_error

#: Set to 0 (or false, no, off) to switch warm starts off.
WARM_START_ENV = "ATTNVIZ_WARM_START"
THREAD_NAME = "attnviz-warm-start"
#: The Streamlit logger that warns about an element called from a thread without a script run.
_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"
#: What the router and the pages import, heaviest first (all of them import torch).
APP_MODULES = (
    "attnviz.ui.cache",
    "attnviz.ui.widgets",
    "attnviz.ui.links",
    "attnviz.ui.sentence",
    "attnviz.ui.text_page",
    "attnviz.ui.long_text",
    "attnviz.ui.image_page",
    "attnviz.ui.worked_page",
    "attnviz.ui.stats_page",
    "attnviz.ui.next_tokens_page",
    "attnviz.ui.state",
)

#: Imported first, alone: what :func:`wait_for_imports` draws its empty chart with. Plotly reads numpy,
#: pandas and PIL from ``sys.modules`` as it writes a figure, so they are whole before a page may draw one
#: (a pandas still being imported by this thread broke the chart: "partially initialized module").
CHART_MODULES = ("numpy", "pandas", "PIL.Image", "orjson", "plotly.graph_objects", "plotly.io", "plotly.tools")
#: Imported next, before PyTorch: what a first visit's page draws with while the rest is imported
#: (:func:`light_run`): the worked example's toy mode. None of it imports torch (a test holds it to that).
LIGHT_MODULES = ("attnviz.ui.worked_toy",)
#: The worked example's address, the one page besides home that has a light first run.
WORKED_PAGE = "worked_example"
#: Seconds between two looks at the warm start while a light run follows it (the home page's facts, a
#: light page's sidebar line).
REFRESH_S = 1.0


@dataclass(frozen=True)
class Planned:
    """One model the warm start loads: ``kind`` "text" or "image", its name, and what to call it."""

    kind: str
    name: str
    what: str


def bundled_plan() -> tuple[Planned, ...]:
    """The bundled models, in the order the pages need them."""
    from attnviz.image.loading import BUNDLED_IMAGE_MODEL
    from attnviz.text.bundled_decoder import BUNDLED_DECODER
    from attnviz.text.loading import BUNDLED_TEXT_MODEL

    return (
        Planned("text", BUNDLED_TEXT_MODEL, "text encoder"),
        Planned("image", BUNDLED_IMAGE_MODEL, "image model"),
        Planned("text", BUNDLED_DECODER, "decoder"),
    )


@dataclass(frozen=True)
class Progress:
    """Where one planned model is: "waiting", "loading", "ready" or "failed"."""

    state: str = "waiting"
    model: object | None = None
    problem: str | None = None  # why it failed, in words a visitor can read
    note: str = ""  # what the loading is doing now (the decoder's one-time conversion)
    started: float | None = None  # time.monotonic()
    seconds: float | None = None  # how long it took, once ready or failed


def enabled() -> bool:
    return os.environ.get(WARM_START_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _not_from_the_loader(record: logging.LogRecord) -> bool:
    return not (record.threadName == THREAD_NAME and "missing ScriptRunContext" in record.getMessage())


class WarmStart:
    """Imports ``modules``, then loads the models of ``plan()`` one after another, in a thread.

    ``loaders()`` returns ``{kind: (name, device) -> model}`` (the app's cached loaders) and
    ``device()`` the configured device, both asked after the imports; ``prepare(name, say)`` runs
    before a model's load (the decoder's conversion; ``say`` reports what it is doing).
    """

    def __init__(
        self,
        loaders: Callable[[], dict[str, Callable[[str, str], object]]],
        device: Callable[[], str],
        plan: Callable[[], tuple[Planned, ...]] = bundled_plan,
        modules: tuple[str, ...] = APP_MODULES,
        prepare: Callable[[str, Callable[[str], None]], None] | None = None,
        freeze_gc: bool = False,
    ):
        self._loaders = loaders
        self._device = device
        self._plan = plan
        self._modules = modules
        self._prepare = prepare
        self._freeze_gc = freeze_gc
        self._lock = threading.Lock()
        self.imported = threading.Event()  # set when the imports are over (done or failed)
        self.charts_imported = threading.Event()  # set when CHART_MODULES are (done or failed)
        self.light_imported = threading.Event()  # set when LIGHT_MODULES are (done or failed)
        self.begun = time.monotonic()
        self.device: str | None = None
        self._progress: dict[Planned, Progress] = {}
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)

    def start(self) -> WarmStart:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every model (at most ``timeout`` s); True when the thread has finished."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _set(self, planned: Planned, **changes) -> None:
        with self._lock:
            self._progress[planned] = replace(self._progress[planned], **changes)

    def _run(self) -> None:
        try:
            _import_chart_modules()
        except Exception:  # never in the way of the rest: the page draws without its early chart
            log.exception("warm start: importing Plotly failed")
        finally:
            self.charts_imported.set()
        try:
            for name in LIGHT_MODULES:
                importlib.import_module(name)
        except Exception:  # never in the way of the rest: such a page waits for every import instead
            log.exception("warm start: importing the light pages' modules failed")
        else:
            self.light_imported.set()
        try:
            for name in self._modules:
                importlib.import_module(name)
            loaders, self.device, plan = self._loaders(), self._device(), self._plan()
        except Exception:  # a bug: every page imports on its own and shows it there
            log.exception("warm start: importing the app's modules failed")
            return
        finally:
            log.info("warm start: modules imported in %.1f s", time.monotonic() - self.begun)
            self.imported.set()
        with self._lock:
            self._progress = {p: Progress() for p in plan}
        self._freeze()
        for planned in plan:
            self._load(planned, loaders[planned.kind])
        self._freeze()

    def _freeze(self) -> None:
        """What exists now lives as long as the process: keep it out of every later full collection."""
        if self._freeze_gc:
            gc.freeze()

    def _load(self, planned: Planned, loader: Callable[[str, str], object]) -> None:
        started = time.monotonic()
        self._set(planned, state="loading", started=started)
        try:
            if self._prepare is not None:
                self._prepare(planned.name, lambda note: self._set(planned, note=note))
            model = loader(planned.name, self.device)
        except ModelLoadError as exc:
            log_model_error(planned.name, exc)
            self._set(planned, state="failed", problem=str(exc), seconds=time.monotonic() - started)
        except Exception as exc:  # a bug: the pages still load on demand, and say so there
            log.exception("unexpected error while loading the %s %r in the background", planned.what, planned.name)
            self._set(
                planned,
                state="failed",
                problem=f"unexpected {type(exc).__name__}; the details are in the server log",
                seconds=time.monotonic() - started,
            )
        else:
            seconds = time.monotonic() - started
            self._set(planned, state="ready", model=model, note="", seconds=seconds)
            log.info("warm start: %s %r ready in %.1f s", planned.what, planned.name, seconds)

    def progress(self, kind: str, name: str) -> Progress | None:
        """Where the planned model ``(kind, name)`` is, or None if the warm start does not load it."""
        with self._lock:
            for planned, progress in self._progress.items():
                if (planned.kind, planned.name) == (kind, name):
                    return progress
        return None

    def states(self) -> list[tuple[Planned, Progress]]:
        with self._lock:
            return list(self._progress.items())

    def finished(self) -> bool:
        return not self._thread.is_alive() and self.imported.is_set()

    def summary(self, seconds: bool = True) -> str | None:
        """One line on what is still loading ("Loading models in the background: text encoder
        ready, image model loading (3 s), decoder waiting"), or None once nothing is. Without
        ``seconds`` for a line that is not redrawn while it shows."""
        now = time.monotonic()
        if not self.imported.is_set():
            took = f" ({now - self.begun:.0f} s)" if seconds else ""
            return f"Starting: importing PyTorch and transformers{took}…"
        states = self.states()
        if self.finished() or all(p.state in ("ready", "failed") for _, p in states):
            return None
        parts = []
        for planned, p in states:
            if p.state == "loading":
                part = f"{planned.what} loading" + (f" ({now - (p.started or now):.0f} s)" if seconds else "")
                if p.note:
                    part += f": {p.note}"
            elif p.state == "failed":
                part = f"{planned.what} unavailable"
            else:
                part = f"{planned.what} {p.state}"
            parts.append(part)
        return "Loading models in the background: " + ", ".join(parts) + "."


_current: WarmStart | None = None
_current_lock = threading.Lock()


def _prepare_decoder(name: str, say: Callable[[str], None]) -> None:
    """The bundled decoder's one-time conversion (about 30 s), its steps reported; nothing for others."""
    from attnviz.text import bundled_decoder

    if name == bundled_decoder.BUNDLED_DECODER and not bundled_decoder.looks_converted():
        bundled_decoder.converted_folder(progress=say)


def _app_loaders() -> dict[str, Callable[[str, str], object]]:
    from attnviz.ui.cache import image_model, text_model

    return {"text": text_model, "image": image_model}


def _configured_device() -> str:
    from attnviz.ui.cache import configured_device

    return configured_device()  # outside a script run: the setting, read on the spot


def start() -> WarmStart | None:
    """Start the warm start once per server process (the router calls this on every run); returns
    it, or None when ``ATTNVIZ_WARM_START`` switches it off."""
    global _current
    if not enabled():
        return None
    with _current_lock:
        if _current is None:
            logging.getLogger(_CONTEXT_LOGGER).addFilter(_not_from_the_loader)
            _current = WarmStart(_app_loaders, _configured_device, prepare=_prepare_decoder, freeze_gc=True).start()
        return _current


def current() -> WarmStart | None:
    """The running (or finished) warm start of this process, or None (switched off, or not started yet)."""
    return _current if enabled() else None


def importing() -> bool:
    """The warm start is still importing the app's modules."""
    ws = current()
    return ws is not None and not ws.imported.is_set()


def light_run(url_path: str) -> bool:
    """Draw the page now, without the app's modules, because they are still being imported (the
    first visits after a server start) and this page can do without them: the home page, or the
    worked example in toy mode opened without a link (a link may ask for real mode, and links are
    read by the full run). Skipped meanwhile: widget state kept across pages (the home page has no
    widget; the toy's tables keep their edits in their own session entry) and the address following
    the widgets. A page that is not light waits for the imports (:func:`wait_for_imports`)."""
    if not importing():
        return False
    if url_path == "":
        return True
    ws = current()
    if url_path != WORKED_PAGE or st.query_params or ws is None:
        return False
    # The warm start imports the toy mode first, in its own thread: waiting for that keeps every
    # import in that one thread (see wait_for_imports).
    ws.light_imported.wait(30)
    if not ws.light_imported.is_set():
        return False
    from attnviz.ui.worked_toy import in_toy_mode  # imported already, by the warm start's thread

    return in_toy_mode()


def _import_chart_modules() -> None:
    """Plotly, and what it imports the first time it writes a figure, before anything else."""
    for name in CHART_MODULES:
        importlib.import_module(name)
    import plotly.graph_objects as go
    import plotly.io

    plotly.io.to_json(_empty_chart(go), validate=False)


def _empty_chart(go):
    """A 10-pixel chart with nothing in it (``go``: plotly.graph_objects)."""
    hidden = dict(visible=False, fixedrange=True)
    return go.Figure(layout=dict(height=10, margin=dict(l=0, r=0, t=0, b=0), xaxis=hidden, yaxis=hidden))


def wait_for_imports() -> None:
    """Until the warm start has imported the app's modules (at once if it has, or is off).

    A script that imported them itself at the same time would block on the same module locks
    anyway, and two threads importing overlapping modules in another order can meet a partly
    initialised module; waiting keeps the imports to one thread. Meanwhile, once Plotly is imported
    (by the warm start, first), an empty chart makes the browser load Plotly's script; it is removed
    when the page starts."""
    ws = current()
    if ws is not None and not ws.imported.is_set():
        with st.spinner("Starting: importing PyTorch and transformers, once after a server start…"):
            slot = st.empty()
            if ws.charts_imported.wait(10) and not ws.imported.is_set():
                import plotly.graph_objects as go  # imported already, by the warm start's thread

                slot.plotly_chart(_empty_chart(go), config={"staticPlot": True, "displayModeBar": False})
            ws.imported.wait()
            slot.empty()


def follow_imports() -> None:
    """In a light run of a page other than home: the sidebar line on the imports, redrawn every
    ``REFRESH_S`` seconds (a fragment), and one full run of the page once they are done, which draws
    the models' line instead and keeps the page's widgets as every full run does. Without it the line
    said "Starting: importing PyTorch" until the visitor's next click."""
    with st.sidebar:
        st.fragment(_importing_line, run_every=REFRESH_S)()


def _importing_line() -> None:
    ws = current()
    if ws is None or not importing():
        st.rerun()  # a full run, without this timer
    st.caption(ws.summary(seconds=False) or "")


def show_loading(url_path: str) -> None:
    """A line in the sidebar while the app is starting or bundled models are loading (nothing waits
    for it), as they are when the page starts. Not on the home page, which shows it live instead."""
    ws = current()
    line = ws.summary(seconds=False) if ws is not None and url_path != "" else None
    if line:
        st.sidebar.caption(line)
