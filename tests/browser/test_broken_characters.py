"""Half of a UTF-16 surrogate pair in a text box, in real Chromium.

Nothing a test can type makes one (Playwright sends well-formed text), but JavaScript can, and
so can a paste of text cut in the middle of an emoji. Before the page's guard, the browser sent
it as bad UTF-8, the server closed the connection, and the page silently stopped following its
widgets: the new sentence was never shown, and neither was anything clicked after it.
"""

from __future__ import annotations

from tests.browser.live_app import wait_idle
from tests.browser.page_tools import open_page, wait_for, wait_for_text

#: Puts "The dog ran", a lone U+D800 and " home." into the text area labelled ``label``, the way
#: a paste does (an input event), and applies it with Ctrl+Enter afterwards.
TYPE_LONE_HALF_JS = """(label) => {
  const box = [...document.querySelectorAll('textarea')].find((t) => t.getAttribute('aria-label') === label);
  const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value').set;
  set.call(box, 'The dog ran' + String.fromCharCode(0xd800) + ' home.');
  box.dispatchEvent(new Event('input', {bubbles: true}));
}"""
NOTICE = "the mark put in place of a character that could not be read"
#: The script answers a sentence in well under this (the page is warm); a dead connection never does.
WAIT_MS = 45_000
WORDS_TITLE_JS = (
    "() => [...document.querySelectorAll('.js-plotly-plot .gtitle')].some((t) => t.textContent.includes('words'))"
)


def put_lone_half(page, label: str = "Sentence") -> None:
    box = page.get_by_label(label, exact=True)
    box.click()
    page.evaluate(TYPE_LONE_HALF_JS, label)
    box.press("Control+Enter")
    wait_idle(page)


def test_text_page_says_a_character_was_lost_and_keeps_following_its_widgets(live_app, page, page_events):
    open_page(page, live_app.url("text"))
    put_lone_half(page)
    wait_for_text(page, NOTICE, timeout_ms=WAIT_MS)
    assert page.get_by_label("Sentence", exact=True).input_value() == "The dog ran\ufffd home."
    # The connection is alive: the next click still redraws the chart.
    page.get_by_text("words", exact=True).first.click()
    wait_for(page, WORDS_TITLE_JS, timeout_ms=WAIT_MS)
    page_events.assert_clean()


def test_worked_example_real_mode_says_a_character_was_lost(live_app, page, page_events):
    open_page(page, live_app.url("worked_example"), charts=False)
    page.get_by_text("Real model", exact=True).click()
    wait_idle(page)
    put_lone_half(page)
    wait_for_text(page, NOTICE, timeout_ms=WAIT_MS)
    wait_for_text(page, "Same numbers as the model", timeout_ms=WAIT_MS)
    page_events.assert_clean()
