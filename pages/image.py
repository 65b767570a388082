"""Image attention: where a small CNN-attention model looks, beside Grad-CAM and Integrated Gradients."""

import streamlit as st

from attnviz.ui import faithfulness_panel
from attnviz.ui import image_drawing as draw
from attnviz.ui import image_families as families
from attnviz.ui import image_page as page
from attnviz.ui.router import require_router

require_router()

st.title("Image attention")
model = page.load_model()
if model is None:
    st.stop()
draw.page_caption(model)
# The image first (on the left: read and tabbed to first), then what the model made of it.
image_column, map_column = st.columns([2, 3])
with image_column:
    picked = page.pick_image()
    result = page.run(model, picked) if picked is not None else None
    if result is not None:
        target = page.choose_target(result.attention, picked)
        draw.render_domain_note(result.attention)
        draw.render_predictions(result.attention, target)
if result is None:
    st.stop()
with map_column:
    choice = families.with_gradcam(model, result, picked, target, page.map_controls(result.attention))
    draw.render_main(result, choice, target, picked)
draw.render_heads(result, choice)
maps = page.gradient_maps(model, result, picked, target)
if maps is not None:
    draw.render_comparison(result, choice, target, maps, picked)
faithfulness_panel.image_panel(model, result, picked, target)
