"""Head statistics: what each head does, over a sentence or a corpus; attention against attribution."""

import streamlit as st

from attnviz.ui.router import require_router

# First, before the imports below (PyTorch behind them: 5-10 s after a server start): a first visit straight to
# this page's address runs this file alone, and the rerun through app.py starts the warm start sooner.
require_router()

from attnviz.ui import sentence  # noqa: E402
from attnviz.ui import stats_page as page  # noqa: E402
from attnviz.ui.state import follow_goto  # noqa: E402
from attnviz.ui.widgets import text_model_picker  # noqa: E402


def main() -> None:
    """The page; it returns early rather than calling st.stop(): a run stopped before the views (the
    fragments) leaves the views of the run before it on the page."""
    follow_goto()  # a click on a head's cell opens it on the text page

    st.title("Head statistics")
    tm = text_model_picker()
    if tm is None:
        return
    section = page.section_picker()
    if section == page.HEADS and page.source_picker() == page.CORPUS:
        page.corpus_section(tm)
        return
    text, pair = sentence.sentence_inputs(causal=tm.causal)
    ta = sentence.run_model(tm, text, pair)
    if ta is None:
        return
    sentence.truncation_notice(ta)
    if section == page.HEADS:
        page.sentence_section(tm, ta)
    else:
        page.attention_vs_attribution_section(tm, ta, text, pair)


main()
