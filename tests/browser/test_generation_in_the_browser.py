"""In the browser: pick the bundled decoder, type a prompt, generate 5 tokens, step through them."""

from __future__ import annotations

import pytest

import attnviz
from tests.browser.live_app import wait_idle
from tests.browser.page_tools import (
    assert_no_errors,
    chart_titles,
    open_page,
    screenshot,
    submit_text_area,
    wait_for_text,
)

pytestmark = pytest.mark.bundled

PROMPT = "The cat sat on the mat. The dog sat on the"


def test_generate_five_tokens_and_step_through_them(live_app, page, page_events, bundled_decoder):
    expected = attnviz.generate(bundled_decoder, PROMPT, max_new_tokens=5)
    open_page(page, live_app.url("next_tokens"), charts=False)
    wait_for_text(page, "need a decoder language model")
    page.get_by_role("button", name="Use bundled SmolLM2-135M-Instruct (decoder)").click()
    wait_idle(page, timeout_ms=180_000)
    submit_text_area(page, "Sentence", PROMPT)
    page.wait_for_selector(".js-plotly-plot")  # the next-token bars

    box = page.get_by_label("New tokens", exact=True)
    box.fill("5")
    box.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Generate").click()
    wait_for_text(page, "5 new tokens, greedy")
    wait_idle(page)
    assert page.get_by_label("Generated text").input_value() == expected.text

    # Step through with the keyboard: each step names the token it chose, and the every-head chart follows.
    slider = page.get_by_role("slider")
    for step in range(expected.n_generated):
        wait_for_text(page, f"Step {step + 1} chose “{expected.generated_tokens[step].replace(chr(10), '↵')}”")
        assert any(t.startswith("From ") for t in chart_titles(page))
        if step < expected.n_generated - 1:
            slider.focus()
            slider.press("ArrowRight")
            wait_idle(page)
    assert_no_errors(page)
    page_events.assert_clean()
    screenshot(page, "next-tokens-generation")
