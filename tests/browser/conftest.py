"""Browser tests: ONE real app (``streamlit run app.py``) and ONE headless Chromium for the session,
a fresh browser context (fresh Streamlit session) per test.

They fail, never skip, when Playwright or Chromium is missing: the README's test command
installs what they need. The app's log goes to ``test-output/screenshots/streamlit.log`` and
its last lines are added to the report of any failing test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.browser.live_app import SCREENSHOTS, VIEWPORT, LiveApp, launch_chromium, missing_browser

LOG = SCREENSHOTS / "streamlit.log"
_APP: list[LiveApp] = []  # the session's app, for the failure report


@pytest.fixture(scope="session")
def live_app():
    problem = missing_browser()
    if problem:
        pytest.fail(problem, pytrace=False)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # Offline: a model name typed in the sidebar must fail at once, not wait on a hub.
    with LiveApp(log_path=LOG, env={"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}) as app:
        _APP.append(app)
        yield app
        _APP.remove(app)


@pytest.fixture(scope="session")
def browser(live_app):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()


@dataclass
class PageEvents:
    """What the page did that it must not: uncaught script errors and dialogs (alert, confirm...)."""

    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.page_errors, f"uncaught errors in the page: {self.page_errors}"
        assert not self.dialogs, f"the page opened dialogs: {self.dialogs}"


@pytest.fixture
def page_events() -> PageEvents:
    return PageEvents()


@pytest.fixture
def page(browser, page_events):
    """A new page in a new context (its own cookies, so its own Streamlit session)."""
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.set_default_timeout(120_000)
    tab.on("pageerror", lambda exc: page_events.page_errors.append(str(exc)))

    def on_dialog(dialog):
        page_events.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    yield tab
    context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _APP:
        report.sections.append((f"streamlit log, last lines ({_APP[0].log_path})", _APP[0].log_tail(80)))
