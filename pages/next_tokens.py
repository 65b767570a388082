"""Next tokens (decoders): the most likely next tokens after any token of the prompt, and generation
stepped through token by token with where each step looked."""

import streamlit as st

from attnviz.ui.router import require_router

# First, before the imports below (PyTorch behind them: 5-10 s after a server start): a first visit straight to
# this page's address runs this file alone, and the rerun through app.py starts the warm start sooner.
require_router()

from attnviz.ui import next_tokens_page as page  # noqa: E402
from attnviz.ui import sentence  # noqa: E402
from attnviz.ui.widgets import text_model_picker  # noqa: E402


def main() -> None:
    """The page; it returns early rather than calling st.stop(): a run stopped before the views (the
    fragments) leaves the views of the run before it on the page."""
    st.title("Next tokens")
    tm = text_model_picker()
    if tm is None or page.needs_decoder(tm):
        return
    text, _ = sentence.sentence_inputs(causal=True)
    ta = sentence.run_model(tm, text, None)
    if ta is None:
        return
    sentence.truncation_notice(ta)
    page.next_token_section(tm, ta)
    page.generation_form(text)
    gen = page.generation_result(tm, text)
    if gen is not None:
        page.step_through(gen)


main()
