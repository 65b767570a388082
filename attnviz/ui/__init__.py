"""Streamlit glue: cached loaders and shared widgets. The only part of attnviz that imports streamlit."""
