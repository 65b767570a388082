"""attnviz: the router. Run with `streamlit run app.py`."""

from pathlib import Path

import streamlit as st

from attnviz.ui import warm_start
from attnviz.ui.layout import compact_top
from attnviz.ui.safe import configure_logging

#: The tab icon ships with the app: a ":material/..." page icon is fetched from fonts.gstatic.com on every
#: page load, and fails offline (scripts/draw_icon.py draws it).
ICON = Path(__file__).resolve().parent / "assets" / "icon.png"
st.set_page_config(page_title="attnviz", page_icon=ICON, layout="wide")
configure_logging()  # what visitors are not shown goes to the server log
# Once per server process: the app's modules are imported and the bundled models loaded in the background.
warm_start.start()
page = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/text.py", title="Text attention", icon=":material/text_fields:"),
        st.Page("pages/image.py", title="Image attention", icon=":material/image:"),
        st.Page("pages/train_images.py", title="Train on your images", icon=":material/model_training:"),
        st.Page("pages/worked_example.py", title="Worked example", icon=":material/calculate:"),
        st.Page("pages/head_stats.py", title="Head statistics", icon=":material/query_stats:"),
        st.Page("pages/next_tokens.py", title="Next tokens", icon=":material/keyboard_double_arrow_right:"),
    ]
)
if warm_start.light_run(page.url_path):
    # The first visits after a server start, to the home page or the worked example's toy mode: they need
    # neither PyTorch nor a model, so they draw now (attnviz.ui.warm_start); the home page follows the
    # imports and the models on its own, the others in a sidebar line, and run once more when they are done.
    compact_top()
    if page.url_path:
        warm_start.follow_imports()
    page.run()
else:
    warm_start.wait_for_imports()  # at once, except in the first seconds after a server start

    from attnviz.ui.cache import read_device
    from attnviz.ui.image_page import KEPT as IMAGE_PAGE_CHOICES
    from attnviz.ui.links import follow as follow_link
    from attnviz.ui.long_text import KEPT as LONG_TEXT_CHOICES
    from attnviz.ui.next_tokens_page import KEPT as NEXT_TOKENS_PAGE_CHOICES
    from attnviz.ui.sentence import KEPT as SENTENCE_CHOICES
    from attnviz.ui.state import keep_widget_state
    from attnviz.ui.stats_page import KEPT as STATS_PAGE_CHOICES
    from attnviz.ui.text_page import KEPT as TEXT_PAGE_CHOICES
    from attnviz.ui.worked_page import KEPT as WORKED_PAGE_CHOICES

    read_device()  # once per run, before the page: a bad ATTNVIZ_DEVICE is one warning on every page
    # A sentence typed or a choice made on one page survives a visit to another.
    keep_widget_state(
        (
            *SENTENCE_CHOICES,
            *TEXT_PAGE_CHOICES,
            *LONG_TEXT_CHOICES,
            *IMAGE_PAGE_CHOICES,
            *WORKED_PAGE_CHOICES,
            *STATS_PAGE_CHOICES,
            *NEXT_TOKENS_PAGE_CHOICES,
        )
    )
    compact_top()  # room for each page's figure on a 1280 x 720 projector
    follow_link(page.url_path)  # a shared link opens its view; the address follows the widgets
    warm_start.show_loading(page.url_path)  # a sidebar line while bundled models are still loading; it never waits
    page.run()
