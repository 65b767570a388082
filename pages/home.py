"""Home: what attnviz does, where it runs, and the way to each page."""

import streamlit as st

from attnviz.ui.home_page import home_facts
from attnviz.ui.router import require_router

require_router()

st.title("attnviz")
st.markdown(
    "See where attention models look: every layer and head of a BERT-family encoder or a decoder "
    "language model (the bundled SmolLM2, GPT-2, Llama, ...) for your sentence, where a small "
    "CNN-attention model looks in your image, the Q/K/V maths of one head worked through on real "
    "numbers, what each head does across a corpus, and what a decoder writes next and why."
)
st.page_link(
    "pages/text.py", label="Text attention: every layer and head for your sentence", icon=":material/text_fields:"
)
st.page_link(
    "pages/image.py", label="Image attention: heatmaps over your image, beside Grad-CAM", icon=":material/image:"
)
st.page_link(
    "pages/train_images.py",
    label="Train on your images: a .zip of class folders, then see where the model looks",
    icon=":material/model_training:",
)
st.page_link(
    "pages/worked_example.py",
    label="Worked example: one head's Q/K/V maths, step by step",
    icon=":material/calculate:",
)
st.page_link(
    "pages/head_stats.py",
    label="Head statistics: what each head attends to, rollout and attributions",
    icon=":material/query_stats:",
)
st.page_link(
    "pages/next_tokens.py",
    label="Next tokens: what a decoder predicts and generates, and where each step looked",
    icon=":material/keyboard_double_arrow_right:",
)

home_facts()  # where it runs, and the models: never waiting for what loads in the background
st.caption("attnviz is also a Python library: `import attnviz` (see the README).")
