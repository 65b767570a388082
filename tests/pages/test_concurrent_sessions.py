"""Eight sessions at once get exactly what eight sessions one after another get.

Four sessions open the head-statistics page's "Attention vs attribution" on four sentences
(captum's integrated gradients on the shared text model, beside other sessions' forward passes),
four open the image page on four demo images (Grad-CAM and Integrated Gradients on the shared
image model). The models are the app's own ``st.cache_resource`` objects, guarded by their
``lock``. Every chart's figure JSON, table, metric and text of each session must be identical.

AppTest in threads
------------------
Each ``AppTest.run()`` runs its script in a thread of its own with its own session state and
message queue, as the server does, but it also changes three things of the whole process
around every run, which is not safe when runs overlap (seen here with 8 threads):

* ``Runtime._instance``: set to a fresh mock at the start of each run and to ``None`` at its
  end, so a session still running after another finished has no runtime (download buttons,
  media files and cache message replay then behave differently, or raise);
* ``config.get_option``: patched with ``unittest.mock.patch`` around each run; overlapping
  patches are undone out of order, and a mock was left in place after the runs;
* ``PagesManager.uses_pages_directory``: reset to ``None`` (then ``True``: this repository has a
  ``pages/`` folder) by each run and set to ``False`` by ``st.navigation``, so a run took one or
  the other script path depending on its neighbours (3 of 8 runs took the other one).

:func:`apptests_in_threads` makes those three what the real server has while the eight run:
one runtime for every session (built as AppTest builds its mock), the option set once around
all the runs, and the script path every serial AppTest run takes. Nothing else is changed:
widgets, caches, models and locks are the app's own.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.pages.apptest_helpers import APP, TIMEOUT, assert_clean, charts

pytestmark = pytest.mark.bundled

TEXTS = [
    "The cat sat on the mat.",
    "A man is playing a guitar.",
    "Where did the dog sleep?",
    "Birds sing in the morning.",
]
DEMOS = [0, 2, 4, 7]  # circle, triangle, pentagon, ring
SESSIONS = [("text", t) for t in TEXTS] + [("image", d) for d in DEMOS]
STEPS = 16  # integration steps of the text attributions: the smallest choice, keeps the test short


def open_session(kind: str, which) -> AppTest:
    """A new session on its page, the input chosen before its first run (one run computes everything)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if kind == "text":
        at.switch_page("pages/head_stats.py")
        at.session_state["text_input"] = which
        at.session_state["stats_section"] = "Attention vs attribution"
        at.session_state["attr_steps"] = STEPS
    else:
        at.switch_page("pages/image.py")
        at.session_state["image_demo"] = which
    return at.run()


def shown(at: AppTest) -> dict:
    """What the session shows: every chart's figure JSON, table, metric and text."""
    assert_clean(at)
    return {
        "charts": [(c.key, c.proto.spec) for c in charts(at)],
        "tables": [d.value.to_json(orient="split", double_precision=15) for d in at.dataframe],
        "metrics": [(m.label, m.value) for m in at.metric],
        "markdown": [m.value for m in at.markdown],
        # The sidebar's "Share this view" box is left out: it holds no computed value, and under
        # apptests_in_threads the router's link step (app.py's follow_link) draws nothing, whereas a
        # serial AppTest run draws it (seen 2026-12-06; the page's own output is identical).
        "captions": [c.value for c in at.caption if not c.value.startswith("This address reopens this page")],
        "warnings": [w.value for w in at.warning],
    }


def expected_charts(kind: str) -> set[str]:
    return {"attribution_chart"} if kind == "text" else {"image_overlay"}


class WatchedLock:
    """The model's lock, counting the acquisitions that had to wait for another thread."""

    def __init__(self, lock):
        self._lock = lock
        self.waits = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        self.waits += 1  # only ever read after the threads are joined
        return self._lock.acquire(blocking, timeout)

    def release(self) -> None:
        self._lock.release()

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextmanager
def apptests_in_threads():
    """One runtime, one config patch and one script path for overlapping AppTest runs (module docstring)."""
    from streamlit.components.v2.component_manager import BidiComponentManager
    from streamlit.runtime import Runtime
    from streamlit.runtime.caching.storage.dummy_cache_storage import MemoryCacheStorageManager
    from streamlit.runtime.dataframe_source_manager import DataframeSourceManager
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
    from streamlit.runtime.scriptrunner import script_runner
    from streamlit.testing.v1 import app_test
    from streamlit.testing.v1.util import patch_config_options

    shared = MagicMock(spec=Runtime)
    shared.media_file_mgr = MediaFileManager(MemoryMediaFileStorage("/mock/media"))
    shared.dataframe_source_mgr = DataframeSourceManager()
    shared.cache_storage_manager = MemoryCacheStorageManager()
    components = BidiComponentManager()
    components.discover_and_register_components(start_file_watching=False)
    shared.bidi_component_registry = components

    class PerRunRuntime(Runtime):
        """Where AppTest's per-run ``Runtime._instance = ...`` assignments land instead."""

    with pytest.MonkeyPatch.context() as mp, patch_config_options({"global.appTest": True}):
        mp.setattr(app_test, "Runtime", PerRunRuntime)
        mp.setattr(Runtime, "_instance", shared)
        uses_pages = (Path(APP).parent / "pages").exists()  # what every serial AppTest run sees
        mp.setattr(script_runner, "PagesManager", SimpleNamespace(uses_pages_directory=uses_pages))
        yield


def run_serially() -> tuple[list[dict], float]:
    started = time.perf_counter()
    results = [shown(open_session(kind, which)) for kind, which in SESSIONS]
    return results, time.perf_counter() - started


def run_at_once() -> tuple[list[dict], float, list[tuple[float, float]]]:
    sessions: list[AppTest | BaseException | None] = [None] * len(SESSIONS)
    spans = [(0.0, 0.0)] * len(SESSIONS)
    go = threading.Barrier(len(SESSIONS))

    def session(i: int) -> None:
        go.wait()
        begin = time.perf_counter()
        try:
            sessions[i] = open_session(*SESSIONS[i])
        except BaseException as exc:  # reported below, with the session it belongs to
            sessions[i] = exc
        spans[i] = (begin, time.perf_counter())

    threads = [threading.Thread(target=session, args=(i,), name=f"session-{i}") for i in range(len(SESSIONS))]
    started = time.perf_counter()
    with apptests_in_threads():
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=4 * TIMEOUT)
    seconds = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads), "a session never finished"
    failed = {SESSIONS[i]: s for i, s in enumerate(sessions) if isinstance(s, BaseException)}
    assert not failed, failed
    return [shown(s) for s in sessions], seconds, spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of sessions that were running at the same moment."""
    events = sorted([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_eight_sessions_at_once_show_what_they_show_one_after_another():
    from attnviz.image.loading import BUNDLED_IMAGE_MODEL
    from attnviz.text.loading import BUNDLED_TEXT_MODEL
    from attnviz.ui.cache import configured_device, image_model, text_model

    # Warm up (imports, model loads), so that the serial and the concurrent runs do the same work.
    open_session("text", "Warm up.")
    open_session("image", 1)
    st.cache_data.clear()
    serial, serial_seconds = run_serially()
    for (kind, which), result in zip(SESSIONS, serial, strict=True):
        assert expected_charts(kind) <= {key for key, _ in result["charts"]}, (which, result["charts"])

    # The concurrent run must compute everything again, on the same shared models.
    st.cache_data.clear()
    tm = text_model(BUNDLED_TEXT_MODEL, configured_device())
    im = image_model(BUNDLED_IMAGE_MODEL, configured_device())
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tm, "lock", WatchedLock(tm.lock))
        mp.setattr(im, "lock", WatchedLock(im.lock))
        concurrent, concurrent_seconds, spans = run_at_once()
        text_waits, image_waits = tm.lock.waits, im.lock.waits

    print(
        f"\n8 sessions: one after another {serial_seconds:.1f} s, at once {concurrent_seconds:.1f} s; "
        f"at most {most_at_once(spans)} running together; waits for the text model's lock {text_waits}, "
        f"for the image model's {image_waits}"
    )
    for (kind, which), one, other in zip(SESSIONS, serial, concurrent, strict=True):
        for part in one:
            assert other[part] == one[part], f"{kind} session {which!r}: {part} differ"
    # They really overlapped: the sessions ran together and the models' locks were contended.
    assert most_at_once(spans) >= 4
    assert text_waits > 0 and image_waits > 0
