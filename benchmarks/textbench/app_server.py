"""The real app under ``streamlit run app.py``, on a free port, with its log in ``benchmarks/out/``.

The start/stop code is shared with the browser tests and the other browser scripts:
``tests/browser/live_app.py``.
"""

from __future__ import annotations

from pathlib import Path

# The package's __init__ has put the repository root on sys.path.
from tests.browser.live_app import LiveApp, free_port

LOG_DIR = Path(__file__).resolve().parents[1] / "out"  # git-ignored


class App(LiveApp):
    """The real app under ``streamlit run``, on a free port, stopped by its own process group."""

    def __init__(self):
        port = free_port()
        super().__init__(log_path=LOG_DIR / f"streamlit-{port}.log", port=port)
