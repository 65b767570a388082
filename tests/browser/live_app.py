"""The real app in a subprocess and a headless Chromium to look at it.

Shared by the browser tests (``tests/browser``), ``scripts/screenshots.py`` and the browser
benchmarks (``benchmarks/page_draw.py``, ``benchmarks/textbench``): one way to start
``streamlit run app.py`` on a free port, wait for it, stop it, and launch Chromium.

    from tests.browser.live_app import LiveApp, launch_chromium, wait_idle, whole_page

    with LiveApp(log_path=Path("test-output/app.log")) as app, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(app.url("text"))

Scripts outside ``tests/`` put the repository root on ``sys.path`` first (``tests`` is a
namespace package; pytest has ``pythonpath = ["."]``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Where the browser tests write screenshots and the app's log (git-ignored).
SCREENSHOTS = ROOT / "test-output" / "screenshots"
#: Debian's chromium package; Playwright drives it (no ``playwright install`` download here).
CHROMIUM = os.environ.get("ATTNVIZ_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
#: How to get what the browser needs (said by every message about a missing piece).
INSTALL_HINT = (
    "Run the README's test command, `pip install -r requirements-test.txt && python -m pytest`, which "
    "installs Playwright for Python; Chromium is Debian's `chromium` package (`apt-get install -y chromium`, "
    "giving /usr/bin/chromium; set ATTNVIZ_CHROMIUM to use another binary)."
)
#: Seconds the app may take to answer /_stcore/health (a cold start on 2 busy cores is slow).
START_TIMEOUT = 180


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveApp:
    """``streamlit run app.py`` on a free port, its output in ``log_path``, stopped by its own process group.

    ``env``: extra environment variables for the app (e.g. ``HF_HUB_OFFLINE=1``).
    """

    def __init__(self, log_path: Path | str | None = None, port: int | None = None, env: dict | None = None):
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else ROOT / "test-output" / f"streamlit-{self.port}.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "") -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def log_tail(self, lines: int = 60) -> str:
        """The last lines of the app's log, for a failure message."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return f"(no log at {self.log_path}: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> LiveApp:
        cmd = [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.headless", "true",
            "--server.port", str(self.port),
            "--browser.gatherUsageStats", "false",
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        deadline = time.time() + START_TIMEOUT
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self._close()
                raise RuntimeError(
                    f"streamlit exited with code {self.proc.returncode}; log {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.base_url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok" and self.proc.poll() is None:  # ours, not another server on the port
                        return self
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"the app did not start within {START_TIMEOUT} s; log {self.log_path}:\n{self.log_tail()}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this process started, nothing else
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


@contextlib.contextmanager
def running_app(port: int | None = None, log_path: Path | str | None = None, env: dict | None = None) -> Iterator[str]:
    """The app's base URL (``http://127.0.0.1:PORT``) while it runs; see :class:`LiveApp`."""
    with LiveApp(log_path=log_path, port=port, env=env) as app:
        yield app.base_url


def missing_browser() -> str | None:
    """Why the browser cannot run here (Playwright or Chromium missing), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"Playwright for Python is not installed ({exc}). {INSTALL_HINT}"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"No Chromium at {CHROMIUM}. {INSTALL_HINT}"
    return None


def launch_chromium(playwright, **options):
    """Headless Chromium (Debian's binary) from a started ``sync_playwright()``."""
    problem = missing_browser()
    if problem:
        raise RuntimeError(problem)
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, **options)


#: Idle: Streamlit's script is not running (no status widget) and no element is still a skeleton
#: (its code loading, e.g. Plotly's on first use).
IDLE_JS = "() => !document.querySelector('[data-testid=stStatusWidget], [data-testid=stSkeleton]')"


def wait_idle(page, timeout_ms: int = 120_000, settle_ms: int = 700) -> None:
    """Until the script has finished (no status widget, no skeleton) and the charts have had a moment to draw."""
    page.wait_for_timeout(300)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)
    page.wait_for_timeout(settle_ms)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms)


def whole_page(page, path: Path | str, max_height: int = 4000, width: int = 1400) -> Path:
    """Screenshot the whole page: Streamlit scrolls inside its main block, so ``full_page`` alone
    captures only the viewport; grow the viewport to the content's height first."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]'); return m ? m.scrollHeight : 1000; }"
    )
    page.set_viewport_size({"width": width, "height": int(min(max_height, max(1000, height)))})
    wait_idle(page)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path)
    page.set_viewport_size(VIEWPORT)
    return path
