"""Train on your own images: a .zip of class folders (or a server folder), trained in the background."""

import streamlit as st

from attnviz.ui.router import require_router

# First, before the imports below (PyTorch behind them: 5-10 s after a server start): a first visit straight to
# this page's address runs this file alone, and the rerun through app.py starts the warm start sooner.
require_router()

from attnviz.ui import image_training as training  # noqa: E402

st.title("Train on your own images")
training.intro()
setup = training.choose_data()
training.start(setup)
training.watch()
training.show_result()
