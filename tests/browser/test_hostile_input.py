"""Hostile text in every place a visitor can put text, in real Chromium against the real app.

Script, HTML, Markdown and LaTeX typed as a sentence, a model name, a corpus line or a file
name must show as the literal characters (in Plotly tick labels and hover labels, in messages)
and never run, open a dialog, or create an element (an ``<img>``, a bold or italic element, a
link, a KaTeX formula) on the page.
"""

from __future__ import annotations

import html
import io
import re

import pytest

from attnviz.figures.labels import plot_text
from tests.browser.live_app import wait_idle
from tests.browser.page_tools import (
    ZWSP,
    alerts,
    assert_no_errors,
    axis_labels,
    hover_text,
    open_page,
    plot_point,
    screenshot,
    submit_text_area,
    tick_texts,
    upload,
    wait_for,
    wait_for_labels,
    wait_for_text,
    wait_for_title,
)

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
MARKDOWN = "**bold** _it_ [link](http://x)"
LATEX = r"$\frac{a}{b}$ $$x^2$$"
BOLD = "<b>bold</b>"
LONG = "a" * 300  # one word: the tokenizer makes it [UNK] (over 100 characters), word labels shorten it
HOSTILE = [SCRIPT, IMG, MARKDOWN, LATEX, BOLD, LONG]
IDS = ["script", "img-onerror", "markdown", "latex", "b-tag", "long-word"]
HOSTILE_FILE = "<img src=x onerror=alert(1)> **b** $x$.png"

# Everything the hostile strings would create if they were taken as HTML, Markdown or LaTeX.
INJECTED_JS = r"""
() => {
  const found = [];
  if (typeof window.__pwned !== 'undefined') found.push('window.__pwned is set');
  const some = (sel, why) => { const n = document.querySelectorAll(sel).length; if (n) found.push(`${n} x ${why}`); };
  some('img[src="x"]', 'img src=x');
  some('[onerror]', 'element with an onerror attribute');
  some('a[href^="http://x"]', 'link to http://x');
  some('mjx-container, .MathJax, .js-plotly-plot .math-group', 'MathJax formula');
  for (const s of document.querySelectorAll('script')) {
    if (s.textContent.includes('__pwned')) found.push('script element from user text');
  }
  for (const e of document.querySelectorAll('b, strong, em, i')) {
    const t = e.textContent.trim();
    if (['bold', 'it', 'x', 'b'].includes(t)) found.push(`<${e.tagName.toLowerCase()}>${t}`);
  }
  for (const a of document.querySelectorAll('.katex annotation')) {
    if (a.textContent.includes('frac{a}') || a.textContent.includes('x^2')) found.push(`KaTeX: ${a.textContent}`);
  }
  return found;
}
"""


def assert_not_injected(page) -> None:
    found = page.evaluate(INJECTED_JS)
    assert not found, f"user text was interpreted: {found}"


def label(token: str) -> str:
    """What a Plotly label shows for ``token``: the literal text (escaped for Plotly, then unescaped
    by it), shortened like every label; the zero-width spaces that keep labels unique removed."""
    return html.unescape(plot_text(token)).replace(ZWSP, "")


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from attnviz.text.loading import bundled_model_dir

    return AutoTokenizer.from_pretrained(str(bundled_model_dir()), trust_remote_code=False)


def tokens_of(tokenizer, text: str, pair: str | None = None) -> list[str]:
    ids = tokenizer(text, pair)["input_ids"] if pair is not None else tokenizer(text)["input_ids"]
    return tokenizer.convert_ids_to_tokens(ids)


def wait_for_tokens(page, tokens: list[str]) -> None:
    """Until the page caption gives the number of tokens and the matrix rows are labelled with them."""
    wait_for_text(page, f"{len(tokens)} tokens · ", "[data-testid=stCaptionContainer]")
    wait_for_labels(page, "y", [label(t) for t in tokens])


def hover_cell(page, row: int, col: int) -> str:
    page.mouse.move(1, 1)  # off the chart: the previous hover label goes away
    wait_for(page, "() => !document.querySelector('.hoverlayer .hovertext')", timeout_ms=10_000)
    x, y = plot_point(page, 0, col, row)
    page.mouse.move(x, y)
    wait_for(page, "() => !!document.querySelector('.hoverlayer .hovertext')", timeout_ms=10_000)
    return hover_text(page)


def first_content(tokens: list[str]) -> int:
    return next(i for i, t in enumerate(tokens) if t not in ("[CLS]", "[SEP]"))


def test_text_page_shows_hostile_sentences_literally(live_app, page, page_events, tokenizer):
    open_page(page, live_app.url("text"))
    for text, name in zip(HOSTILE, IDS, strict=True):
        expected = tokens_of(tokenizer, text)
        submit_text_area(page, "Sentence", text)
        # Every query token is a row label, as the literal text.
        wait_for_tokens(page, expected)
        assert page.get_by_label("Sentence", exact=True).input_value() == text
        assert tick_texts(page, "y") == [label(t) for t in expected], name
        keys = tick_texts(page, "x")
        assert set(keys) <= {label(t) for t in expected}, name
        # The hover names the query and key tokens literally too.
        row = first_content(expected)
        col = len(expected) - 2  # the last token before [SEP]
        hover = hover_cell(page, row, col)
        assert f"query: {label(expected[row])}" in hover, (name, hover)
        assert f"key: {label(expected[col])}" in hover, (name, hover)
        assert_no_errors(page)
        assert_not_injected(page)
        if text == SCRIPT:
            assert {"<", "script", ">", "/"} <= set(keys), keys
            screenshot(page, "hostile-text")
        if text == BOLD:
            assert keys == ["[CLS]", "<", "b", ">", "bold", "<", "/", "b", ">", "[SEP]"]
    page_events.assert_clean()


def test_text_page_hostile_pair_and_word_labels(live_app, page, page_events, tokenizer):
    open_page(page, live_app.url("text"))
    submit_text_area(page, "Sentence", SCRIPT)
    page.get_by_text("Second sentence (pair mode)", exact=True).click()
    wait_idle(page)
    pair = f"{BOLD} {MARKDOWN} {LATEX}"
    submit_text_area(page, "Second sentence", pair)
    expected = tokens_of(tokenizer, SCRIPT, pair)
    wait_for_tokens(page, expected)
    assert tick_texts(page, "y") == [label(t) for t in expected]
    # Hover a cell whose query is in the first sentence and key in the second.
    row, col = expected.index("script"), expected.index("bold")
    hover = hover_cell(page, row, col)
    assert "query: script" in hover and "key: bold" in hover, hover
    assert_no_errors(page)
    assert_not_injected(page)
    screenshot(page, "hostile-pair")

    # Whole words: the 300-letter word is one label, shortened; its hover is literal too.
    page.get_by_text("Second sentence (pair mode)", exact=True).click()
    wait_idle(page)
    submit_text_area(page, "Sentence", f"{LONG} {BOLD}")
    page.locator("[data-testid=stSidebar]").get_by_text("words", exact=True).click()
    wait_for_title(page, "Layer 0 · head 0 (words)")
    rows = tick_texts(page, "y")
    assert rows[1] == label(LONG) == "a" * 23 + "…", rows
    assert rows[2:] == ["<", "b", ">", "bold", "<", "/", "b", ">", "[SEP]"], rows
    hover = hover_cell(page, 1, 5)
    assert f"query: {label(LONG)}" in hover and "key: bold" in hover, hover
    assert_no_errors(page)
    assert_not_injected(page)
    page_events.assert_clean()


@pytest.mark.parametrize("path", ["text", "image"])
def test_hostile_model_names_are_shown_literally(live_app, page, page_events, path):
    open_page(page, live_app.url(path))
    sidebar = page.locator("[data-testid=stSidebar]")
    for name in HOSTILE:
        sidebar.get_by_label("Another model", exact=True).fill(name)
        sidebar.get_by_role("button", name="Load", exact=True).click()
        # The message names the model as typed (quoted as Python's repr quotes it). What a
        # person sees is compared: md_escape's zero-width spaces (which stop "--" becoming a
        # dash and "http://" a link) are invisible, so they are taken out first.
        wait_for(
            page,
            "names => [...document.querySelectorAll('[data-testid=stAlertContentWarning]')]"
            ".some((w) => names.some((n) => w.textContent.replaceAll('\\u200b', '').includes(n)))",
            [name, repr(name)],
        )
        wait_idle(page)
        assert page.locator("[data-testid=stException]").count() == 0
        assert not alerts(page, "Error")
        assert_not_injected(page)
        # The current (bundled) model stays in place: the page still draws its charts.
        assert page.locator(".js-plotly-plot").count() >= 1
    screenshot(page, f"hostile-model-name-{path}")
    page_events.assert_clean()


def test_worked_example_real_mode_hostile_sentences(live_app, page, page_events, tokenizer):
    open_page(page, live_app.url("worked_example"))
    page.get_by_text("Real model", exact=True).click()
    wait_for_text(page, "Same numbers as the model")
    wait_idle(page)
    for text in HOSTILE:
        expected = tokens_of(tokenizer, text)
        submit_text_area(page, "Sentence", text)
        # The matrices label their rows with the literal tokens (the first 24 unless "show all" is on).
        wait_for_labels(page, "y", [label(t) for t in expected], prefix=min(len(expected), 24))
        # The page starts on the head's strongest off-diagonal weight: whichever query that is, its
        # text appears literally in the sentence "Following the weight of query “…” (i = …)".
        wait_for_text(page, "Following the weight of query “")
        shown = re.search(r"Following the weight of query “(.*?)” \(i = (\d+)\)", page.inner_text("body"), re.S)
        assert shown is not None and shown.group(1) == expected[int(shown.group(2))]
        wait_for_text(page, f"over the {len(expected)} × {len(expected)} weights")
        wait_idle(page)
        assert_no_errors(page)
        assert_not_injected(page)
        if text == SCRIPT:
            screenshot(page, "hostile-worked-example")
    page_events.assert_clean()


def test_head_stats_hostile_corpus_and_file_name(live_app, page, page_events):
    open_page(page, live_app.url("head_stats"))
    page.get_by_text("Corpus file", exact=True).click()
    wait_for_text(page, "Upload a corpus")
    file_name = "<b>corpus</b> **x** $y$ <img src=x onerror=alert(1)>.txt"
    upload(page, file_name, "\n".join(HOSTILE).encode("utf-8"), "text/plain")
    # Every line is a sentence (the long word is one unknown token, not a blank line).
    wait_for_text(page, f"{file_name}: {len(HOSTILE)} sentences", "[data-testid=stCaptionContainer]")
    wait_idle(page)
    assert not [a for a in alerts(page, "Info") if "blank" in a], alerts(page, "Info")
    assert_no_errors(page)
    assert_not_injected(page)
    screenshot(page, "hostile-head-stats")
    page_events.assert_clean()


def test_head_stats_attribution_of_a_hostile_sentence(live_app, page, page_events, tokenizer):
    open_page(page, live_app.url("head_stats"))
    text = f"{SCRIPT} {BOLD}"
    submit_text_area(page, "Sentence", text)
    page.get_by_text("Attention vs attribution", exact=True).click()
    wait_for_text(page, "Do they agree?")
    wait_idle(page)
    # The token axis of the attribution chart (Plotly may skip some labels when they crowd).
    expected = {label(t) for t in tokens_of(tokenizer, text)}
    tokens = [t for t in axis_labels(page, 0) if t in expected]
    assert {"<", "script", ">"} <= set(tokens), axis_labels(page, 0)
    assert_no_errors(page)
    assert_not_injected(page)
    page_events.assert_clean()


def _png() -> bytes:
    from attnviz.image import generated_shapes

    buf = io.BytesIO()
    generated_shapes.demo_samples()[0].image.save(buf, format="PNG")
    return buf.getvalue()


def test_image_upload_with_hostile_file_names(live_app, page, page_events):
    open_page(page, live_app.url("image"))
    page.get_by_text("Upload", exact=True).click()
    wait_for_text(page, "Upload an image, or switch to a demo image.")
    upload(page, HOSTILE_FILE, _png(), "image/png")
    wait_for_title(page, "Class token, layer 1")
    chip = page.locator("[data-testid=stFileChipName]").first.inner_text()
    assert chip.startswith("<img sr"), chip  # the name as text (Streamlit shortens long names in the middle)
    assert_no_errors(page)
    assert_not_injected(page)
    screenshot(page, "hostile-image")

    # A file that is not an image, with a hostile name: a message, no dialog, nothing injected.
    page.locator("[data-testid=stFileChipDeleteBtn] button").first.click()
    wait_for_text(page, "Upload an image, or switch to a demo image.")
    upload(page, "<script>alert(1)</script> <b>x</b>.png", b"not an image <script>alert(1)</script>", "image/png")
    wait_for_text(page, "This file is not an image attnviz can read", "[data-testid=stAlertContentWarning]")
    wait_idle(page)
    assert page.locator("[data-testid=stException]").count() == 0
    assert not alerts(page, "Error")
    assert_not_injected(page)
    page_events.assert_clean()
