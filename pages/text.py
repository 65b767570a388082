"""Text attention: type a sentence (or a pair) and inspect every layer and head."""

import streamlit as st

from attnviz.ui.router import require_router

# First, before the imports below (PyTorch behind them: 5-10 s after a server start): a first visit straight to
# this page's address runs this file alone, and the rerun through app.py starts the warm start sooner.
require_router()

from attnviz.ui import faithfulness_panel, long_text, sentence  # noqa: E402
from attnviz.ui import text_page as page  # noqa: E402
from attnviz.ui.widgets import text_model_picker  # noqa: E402


def main() -> None:
    """The page; it returns early rather than calling st.stop(): a run stopped before the views (the
    fragments) leaves the views of the run before it on the page."""
    st.title("Text attention")
    tm = text_model_picker()
    if tm is None:
        return
    text, pair = sentence.sentence_inputs(causal=tm.causal)
    opts = page.options(is_pair=pair is not None, causal=tm.causal)
    ta = sentence.run_model(tm, text, pair)
    if ta is None:
        return
    sentence.truncation_notice(ta)
    page.page_caption(ta)
    if ta.holds_weights:
        view = page.attention_view(tm, ta, opts)
        page.render(tm, ta, view, opts)
    else:  # a long input: views computed a head at a time
        long_text.render(tm, ta, scale=opts.scale, hide_first=opts.hide_first)
    faithfulness_panel.text_panel(tm, ta)


main()
