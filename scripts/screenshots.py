"""Take the README's screenshots: start the app, open each view in headless Chromium.

    python scripts/screenshots.py [--out docs/screenshots]

Needs Debian's chromium (/usr/bin/chromium) and Playwright for Python (requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWS = {
    "text-single-head": "Single head",
    "text-layer-heads": "All heads of a layer",
    "text-overview": "Model overview",
    "text-head-lines": "Head lines",
    "text-from-token": "From one token",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_app(port: int):
    """The real app in a subprocess, ready when /_stcore/health answers."""
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            with contextlib.suppress(OSError):
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            time.sleep(0.5)
        else:
            raise RuntimeError("the app did not start within 90 s")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def wait_idle(page) -> None:
    """Until Streamlit's script has finished and the charts have had a moment to draw."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')", timeout=60_000)
    page.wait_for_timeout(700)


def whole_page(page, path: Path, max_height: int = 3200) -> None:
    """Screenshot the whole page: Streamlit scrolls inside its main block, so ``full_page`` alone
    captures only the viewport; grow the viewport to the content's height first."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]'); return m ? m.scrollHeight : 1000; }"
    )
    page.set_viewport_size({"width": 1400, "height": int(min(max_height, max(1000, height)))})
    wait_idle(page)
    page.screenshot(path=path)
    page.set_viewport_size({"width": 1400, "height": 1000})
    print("wrote", path)


def image_page(page, url: str, out: Path) -> None:
    page.goto(f"{url}/image")
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    page.get_by_text("Demo image", exact=True).first.wait_for()
    wait_idle(page)
    whole_page(page, out / "image-page.png")
    # Click a grid cell (row 2, column 5 of 8) of the overlay: where does that patch attend?
    box = page.locator(".js-plotly-plot").first.locator(".nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 5.5 / 8, box["y"] + box["height"] * 2.5 / 8)
    wait_idle(page)
    page.wait_for_timeout(1500)
    page.screenshot(path=out / "image-patch.png")
    print("wrote", out / "image-patch.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    out = Path(parser.parse_args().out)
    out.mkdir(parents=True, exist_ok=True)
    with running_app(free_port()) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/")
        page.wait_for_selector("[data-testid=stDataFrame]", timeout=90_000)
        wait_idle(page)
        page.screenshot(path=out / "home.png")
        page.goto(f"{url}/text")
        page.wait_for_selector(".js-plotly-plot", timeout=90_000)
        wait_idle(page)
        for name, label in VIEWS.items():
            page.get_by_text(label, exact=True).click()
            wait_idle(page)
            page.screenshot(path=out / f"{name}.png", full_page=True)
            print("wrote", out / f"{name}.png")
        image_page(page, url, out)
        browser.close()


if __name__ == "__main__":
    main()
