"""Offline-clean: loading any page asks nothing of a server other than the app's own.

Hospital networks and air-gapped labs reach only the app. Streamlit fetches a ``:material/...:``
page icon from fonts.gstatic.com on every load (the tab icon is therefore shipped in
``assets/icon.png``); the Material icons of buttons and alerts come from the font Streamlit serves
itself. Every request of each page's load is recorded, and any to another origin is refused and
named; ``data:`` and ``blob:`` URLs are the page's own.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.browser.live_app import VIEWPORT, wait_idle
from tests.browser.page_tools import assert_no_errors

PAGES = ["", "text", "image", "worked_example", "head_stats", "next_tokens"]
LOCAL_SCHEMES = ("data", "blob")


def foreign(urls: list[str], base_url: str) -> list[str]:
    """The URLs that go anywhere but ``base_url``'s origin (scheme, host and port)."""
    own = urlsplit(base_url)
    hosts = {own.hostname, "127.0.0.1", "localhost"}
    out = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in LOCAL_SCHEMES:
            continue
        if parts.scheme.replace("ws", "http") != own.scheme or parts.hostname not in hosts or parts.port != own.port:
            out.append(url)
    return out


def test_foreign_is_what_leaves_the_origin():
    base = "http://127.0.0.1:8501"
    urls = [
        "http://127.0.0.1:8501/static/js/index.js",
        "ws://127.0.0.1:8501/_stcore/stream",
        "http://localhost:8501/favicon.png",
        "data:image/png;base64,AAAA",
        "blob:http://127.0.0.1:8501/1234",
        "https://fonts.gstatic.com/s/i/short-term/release/materialsymbolsrounded/visibility/default/24px.svg",
        "http://127.0.0.1:9999/other-app",
    ]
    assert foreign(urls, base) == urls[-2:]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p or "home")
def test_page_load_stays_on_the_apps_origin(live_app, browser, path):
    context = browser.new_context(viewport=VIEWPORT)
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    # Anything foreign is refused at once: the test must not wait on a network it may not have.
    context.route(
        "**/*",
        lambda route: route.continue_() if not foreign([route.request.url], live_app.base_url) else route.abort(),
    )
    page = context.new_page()
    page.set_default_timeout(180_000)
    try:
        page.goto(live_app.url(path))
        page.wait_for_selector("[data-testid=stMain] h1")
        wait_idle(page, timeout_ms=180_000)
        page.wait_for_timeout(1_000)  # the favicon and late fonts
        # The tab icon as the page sets it (a browser may fetch it outside the page's requests).
        icons = page.eval_on_selector_all("link[rel~=icon]", "els => els.map(e => e.href)")
        assert_no_errors(page, warnings=False)
    finally:
        context.close()
    assert requests, "no request recorded"
    assert icons, "the page sets no tab icon"
    assert not foreign(requests + icons, live_app.base_url), (
        f"requests outside {live_app.base_url}: {foreign(requests + icons, live_app.base_url)}"
    )
