"""Train on your own images: a .zip of class folders (or a server folder), trained in the background."""

import streamlit as st

from attnviz.ui import image_training as training
from attnviz.ui.router import require_router

require_router()

st.title("Train on your own images")
training.intro()
setup = training.choose_data()
training.start(setup)
training.watch()
training.show_result()
