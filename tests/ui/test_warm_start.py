"""Warm starts (attnviz.ui.warm_start): the bundled models load once, in the background, through the
app's own cached loaders; a page that asks meanwhile gets the same object; the home page never waits.

The models are fakes (counted, and held back on an event) behind the real ``st.cache_resource``
loaders of ``attnviz.ui.cache``: what is tested is who loads what, how often, and who waits.
"""

from __future__ import annotations

import sys
import threading

import pytest
from streamlit.testing.v1 import AppTest

from attnviz.image.loading import BUNDLED_IMAGE_MODEL
from attnviz.text.bundled_decoder import BUNDLED_DECODER
from attnviz.text.loading import BUNDLED_TEXT_MODEL
from attnviz.ui import cache, warm_start
from tests.pages.apptest_helpers import APP, TIMEOUT, assert_clean, start

DEVICE = "warm-start-test"  # a device no other test uses: these cache keys are this file's own


class Loads:
    """Fake ``load_text_model`` / ``load_image_model``: each call counted; the encoder's held back
    until ``release`` is set."""

    def __init__(self):
        self.calls: list[str] = []
        self.lock = threading.Lock()
        self.encoder_started = threading.Event()
        self.release = threading.Event()

    def text(self, name, device):
        with self.lock:
            self.calls.append(name)
        if name == BUNDLED_TEXT_MODEL:
            self.encoder_started.set()
            assert self.release.wait(30)
        return object()

    def image(self, name, device):
        with self.lock:
            self.calls.append(name)
        return object()


@pytest.fixture
def loads(monkeypatch):
    fake = Loads()
    monkeypatch.setattr(cache, "load_text_model", lambda name, device: fake.text(name, device))
    monkeypatch.setattr(cache, "load_image_model", lambda name, device: fake.image(name, device))
    yield fake
    fake.release.set()
    for name in (BUNDLED_TEXT_MODEL, BUNDLED_DECODER):
        cache.text_model.clear(name, DEVICE)
    cache.image_model.clear(BUNDLED_IMAGE_MODEL, DEVICE)


def test_each_bundled_model_loads_once_and_a_page_asking_meanwhile_gets_the_same_object(loads):
    ws = warm_start.WarmStart(
        lambda: {"text": cache.text_model, "image": cache.image_model}, lambda: DEVICE, modules=()
    )
    ws.start()
    assert loads.encoder_started.wait(30)
    assert ws.progress("text", BUNDLED_TEXT_MODEL).state == "loading"
    assert ws.progress("image", BUNDLED_IMAGE_MODEL).state == "waiting"

    # A page asks for the encoder while the warm start loads it: it waits, it does not load a second one.
    got = []
    page = threading.Thread(target=lambda: got.append(cache.text_model(BUNDLED_TEXT_MODEL, DEVICE)))
    page.start()
    page.join(0.5)
    assert page.is_alive(), "the page must wait for the model being loaded, not load its own"
    assert loads.calls == [BUNDLED_TEXT_MODEL]

    loads.release.set()
    page.join(30)
    assert ws.join(30)
    encoder = ws.progress("text", BUNDLED_TEXT_MODEL).model
    assert got == [encoder] and encoder is not None
    # In the order the pages need them, each once; later pages find them in the cache.
    assert loads.calls == [BUNDLED_TEXT_MODEL, BUNDLED_IMAGE_MODEL, BUNDLED_DECODER]
    assert cache.text_model(BUNDLED_TEXT_MODEL, DEVICE) is encoder
    assert cache.text_model(BUNDLED_DECODER, DEVICE) is ws.progress("text", BUNDLED_DECODER).model
    assert cache.image_model(BUNDLED_IMAGE_MODEL, DEVICE) is ws.progress("image", BUNDLED_IMAGE_MODEL).model
    assert len(loads.calls) == 3
    assert [p.state for _, p in ws.states()] == ["ready"] * 3
    assert ws.summary() is None and ws.finished()


def test_a_model_that_fails_is_reported_and_the_rest_still_load(loads):
    from attnviz.errors import ModelLoadError

    def image(name, device):
        raise ModelLoadError("The bundled image model's weights are damaged: reinstall attnviz.")

    loads.release.set()
    ws = warm_start.WarmStart(lambda: {"text": cache.text_model, "image": image}, lambda: DEVICE, modules=()).start()
    assert ws.join(30)
    failed = ws.progress("image", BUNDLED_IMAGE_MODEL)
    assert failed.state == "failed" and "damaged" in failed.problem
    assert ws.progress("text", BUNDLED_DECODER).state == "ready"
    assert loads.calls == [BUNDLED_TEXT_MODEL, BUNDLED_DECODER]


def test_the_router_starts_it_once_per_process_and_the_switch_turns_it_off(monkeypatch):
    fake = Loads()
    fake.release.set()
    monkeypatch.setattr(warm_start, "_current", None)
    monkeypatch.setattr(warm_start, "_app_loaders", lambda: {"text": fake.text, "image": fake.image})
    monkeypatch.setattr(warm_start, "_prepare_decoder", lambda name, say: None)
    monkeypatch.setattr(warm_start.gc, "freeze", lambda: None)  # not this test process's objects
    monkeypatch.setenv(warm_start.WARM_START_ENV, "0")
    assert warm_start.start() is None and warm_start.current() is None
    assert not warm_start.light_run("")

    monkeypatch.setenv(warm_start.WARM_START_ENV, "1")
    first = warm_start.start()
    assert warm_start.start() is first and warm_start.current() is first
    assert first.join(60)
    assert fake.calls == [BUNDLED_TEXT_MODEL, BUNDLED_IMAGE_MODEL, BUNDLED_DECODER]
    assert first.device == cache.configured_device()


def _no_model(*args):
    raise AssertionError(f"the home page asked for a model: {args}")


@pytest.fixture
def warm_home(monkeypatch):
    """The app with warm starts on, and every model loader of the home page refusing to be called."""
    monkeypatch.setenv(warm_start.WARM_START_ENV, "1")
    monkeypatch.setattr(cache, "text_model", _no_model)
    monkeypatch.setattr(cache, "image_model", _no_model)


def test_the_home_page_draws_while_the_app_is_still_importing(warm_home, monkeypatch):
    ws = warm_start.WarmStart(dict, lambda: "cpu")  # never started: still "importing"
    monkeypatch.setattr(warm_start, "_current", ws)
    at = start()
    assert_clean(at)
    assert [t.value for t in at.title] == ["attnviz"]
    assert len(at.get("page_link")) == 6
    assert not at.dataframe
    assert any(c.value.startswith("Starting: importing PyTorch") for c in at.caption)


def test_the_worked_example_draws_its_toy_mode_while_the_app_is_still_importing(warm_home, monkeypatch):
    ws = warm_start.WarmStart(dict, lambda: "cpu")  # never started: still importing PyTorch
    ws.light_imported.set()  # ... but the toy mode's modules are in
    monkeypatch.setattr(warm_start, "_current", ws)
    at = start("pages/worked_example.py")
    assert_clean(at)
    charts = at.get("plotly_chart")
    assert len(charts) >= 7 and all(c.key.startswith("worked_") for c in charts)  # every step's chart
    assert at.radio(key="worked_mode").value == "Toy numbers"
    assert any(c.value.startswith("Starting: importing PyTorch") for c in at.sidebar.caption)
    assert not at.sidebar.expander  # the share box (links, the heavy path) comes with the full run

    # The imports are done: the next run (the sidebar line's timer asks for it) is a full one.
    ws.imported.set()
    at.run()
    assert_clean(at)
    assert not any("importing PyTorch" in c.value for c in at.sidebar.caption)
    assert len(at.get("plotly_chart")) == len(charts)
    assert [e.label for e in at.sidebar.expander] == ["Share this view"]  # the full run's share box


def test_the_light_pages_import_no_pytorch():
    """What a light first run draws with (LIGHT_MODULES) imports neither torch nor transformers: it is
    imported, and drawn, while they are (a fresh interpreter, so that nothing else imported them)."""
    import subprocess

    code = (
        "import sys, importlib; from attnviz.ui import warm_start; "
        "[importlib.import_module(m) for m in warm_start.CHART_MODULES + warm_start.LIGHT_MODULES]; "
        "print(sorted(m for m in ('torch', 'transformers', 'captum') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_the_home_page_lists_models_loading_in_the_background_without_waiting(warm_home, monkeypatch):
    fake = Loads()
    ws = warm_start.WarmStart(
        lambda: {"text": fake.text, "image": fake.image}, warm_start._configured_device, modules=()
    ).start()
    monkeypatch.setattr(warm_start, "_current", ws)
    try:
        assert fake.encoder_started.wait(30)
        at = start()
        assert_clean(at)
        table = at.dataframe[0].value
        assert table["model"].tolist() == [BUNDLED_TEXT_MODEL, BUNDLED_IMAGE_MODEL]
        assert table["status"].tolist() == ["loading in the background"] * 2
        assert any("text encoder loading" in c.value and "image model waiting" in c.value for c in at.caption)
        assert fake.calls == [BUNDLED_TEXT_MODEL]  # the warm start's own load, nothing from the page
    finally:
        fake.release.set()
        assert ws.join(30)


def test_a_page_waiting_for_the_imports_draws_an_empty_chart_meanwhile_and_removes_it(monkeypatch):
    """Plotly is imported first and whole (with the numpy and pandas it reads), so a waiting page draws
    one empty chart (the browser fetches Plotly's script while the server imports PyTorch); the page
    then draws without it."""
    fake = Loads()
    fake.release.set()
    imports_done = threading.Event()

    def loaders():  # runs after the imports; the warm start counts as importing until it returns
        assert imports_done.wait(30)
        return {"text": fake.text, "image": fake.image}

    drawn = []
    empty_chart = warm_start._empty_chart
    monkeypatch.setattr(warm_start, "_empty_chart", lambda go: drawn.append(1) or empty_chart(go))
    monkeypatch.setattr(warm_start, "_prepare_decoder", lambda name, say: None)
    monkeypatch.setenv(warm_start.WARM_START_ENV, "1")
    ws = warm_start.WarmStart(loaders, lambda: DEVICE, modules=())
    monkeypatch.setattr(warm_start, "_current", ws)
    ws.start()
    try:
        assert ws.charts_imported.wait(30) and not ws.imported.is_set()
        assert all(name in sys.modules for name in warm_start.CHART_MODULES)
        threading.Timer(1.0, imports_done.set).start()  # the page's run waits for this meanwhile
        # Opened by a link: a link may ask for real mode, so even toy mode waits for the whole app.
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
        at.switch_page("pages/worked_example.py")
        at.query_params["mode"] = "Toy numbers"
        at.run()
        assert_clean(at)
        assert len(drawn) == 2, "the warm start's own test figure, then the page's empty chart"
        charts = at.get("plotly_chart")
        assert charts and all(c.key and c.key.startswith("worked_") for c in charts), "the empty chart is gone"
    finally:
        imports_done.set()
        assert ws.join(30)
        for name in (BUNDLED_TEXT_MODEL, BUNDLED_DECODER):
            cache.text_model.clear(name, DEVICE)
        cache.image_model.clear(BUNDLED_IMAGE_MODEL, DEVICE)


def test_what_the_warm_start_imported_and_loaded_is_kept_out_of_later_collections(monkeypatch):
    """Streamlit collects garbage after every run; the imported modules and the models are frozen
    (after the imports, then after the models), so that a click does not walk them all again."""
    fake = Loads()
    fake.release.set()
    frozen = []
    monkeypatch.setattr(warm_start.gc, "freeze", lambda: frozen.append(list(fake.calls)))
    monkeypatch.setattr(warm_start, "_prepare_decoder", lambda name, say: None)
    loaders = lambda: {"text": fake.text, "image": fake.image}  # noqa: E731
    ws = warm_start.WarmStart(loaders, lambda: DEVICE, modules=(), freeze_gc=True).start()
    assert ws.join(30)
    assert frozen == [[], [BUNDLED_TEXT_MODEL, BUNDLED_IMAGE_MODEL, BUNDLED_DECODER]]
    unfrozen = warm_start.WarmStart(loaders, lambda: DEVICE, modules=()).start()  # tests and notebooks
    assert unfrozen.join(30) and len(frozen) == 2

    monkeypatch.setattr(warm_start, "_current", None)
    monkeypatch.setattr(warm_start, "_app_loaders", loaders)
    monkeypatch.setenv(warm_start.WARM_START_ENV, "1")
    assert warm_start.start().join(30) and len(frozen) == 4, "the app's warm start freezes"
