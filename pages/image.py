"""Image attention: where a small CNN-attention model looks, beside Grad-CAM and Integrated Gradients."""

import streamlit as st

from attnviz.ui.router import require_router

# First, before the imports below (PyTorch behind them: 5-10 s after a server start): a first visit straight to
# this page's address runs this file alone, and the rerun through app.py starts the warm start sooner.
require_router()

from attnviz.ui import faithfulness_panel  # noqa: E402
from attnviz.ui import image_drawing as draw  # noqa: E402
from attnviz.ui import image_page as page  # noqa: E402


def main() -> None:
    """The page; it returns early rather than calling st.stop(): a run stopped before the views (the
    fragments below) leaves the views of the run before it on the page."""
    st.title("Image attention")
    model = page.load_model()
    if model is None:
        return
    draw.page_caption(model)
    # The image first (on the left: read and tabbed to first), then what the model made of it.
    image_column, map_column = st.columns([2, 3])
    with image_column:
        picked = page.pick_image()
        result = page.run(model, picked) if picked is not None else None
        if result is None:
            return
        target = page.choose_target(result.attention, picked)
        draw.render_domain_note(result.attention)
        draw.render_predictions(result.attention, target)
    # Three views that rerun alone (fragments): a map control reruns only those its value changes.
    with map_column:
        draw.overlay_view(model, result, picked, target)
    draw.heads_view(result)
    draw.compare_view(model, result, picked, target)
    faithfulness_panel.image_panel(model, result, picked, target)


main()
