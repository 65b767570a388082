"""Helpers for the AppTest page tests: start the app, read its plotly charts."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"
TIMEOUT = 120


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if page is not None:
        at.switch_page(page)
    at.run()
    return at


def charts(at: AppTest) -> list:
    return list(at.get("plotly_chart"))


def figure(chart) -> dict:
    """The figure JSON that Streamlit sends for a plotly chart element."""
    return json.loads(chart.proto.spec)


def decode(value) -> np.ndarray:
    """A plotly JSON array: a plain list or a typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict) and "bdata" in value:
        arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            arr = arr.reshape([int(s) for s in str(value["shape"]).split(",")])
        return arr
    return np.asarray(value, dtype=float)


def heatmap_z(chart) -> np.ndarray:
    traces = [t for t in figure(chart)["data"] if t.get("type") == "heatmap"]
    assert len(traces) == 1
    return decode(traces[0]["z"])


def trace_types(chart) -> list[str]:
    return [t.get("type", "scatter") for t in figure(chart)["data"]]


def assert_clean(at: AppTest) -> None:
    """No exception and no error box (errors are how the pages report bugs)."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def start_clean(page: str) -> AppTest:
    """``page`` opened in a fresh session, checked to have drawn without an error."""
    at = start(page)
    assert_clean(at)
    return at


def chart(at: AppTest, key: str):
    """The one plotly chart drawn with widget key ``key``."""
    found = [c for c in charts(at) if c.key == key]
    assert len(found) == 1, f"no single chart {key!r} among {[c.key for c in charts(at)]}"
    return found[0]
