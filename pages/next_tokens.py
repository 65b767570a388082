"""Next tokens (decoders): the most likely next tokens after any token of the prompt, and generation
stepped through token by token with where each step looked."""

import streamlit as st

from attnviz.ui import next_tokens_page as page
from attnviz.ui import sentence
from attnviz.ui.router import require_router
from attnviz.ui.widgets import text_model_picker

require_router()

st.title("Next tokens")
tm = text_model_picker()
if tm is None or page.needs_decoder(tm):
    st.stop()
text, _ = sentence.sentence_inputs(causal=True)
ta = sentence.run_model(tm, text, None)
if ta is None:
    st.stop()
sentence.truncation_notice(ta)
page.next_token_section(tm, ta)
page.generation_form(text)
gen = page.generation_result(tm, text)
if gen is not None:
    page.step_through(gen)
