"""Figure builders: a result container in, a ``plotly.graph_objects.Figure`` out.

They never call Streamlit, so a notebook user can ``.show()`` them.
"""

from attnviz.figures.lines import head_lines
from attnviz.figures.matrix import head_matrix, is_clickable, token_heads
from attnviz.figures.mosaic import layer_heads, model_overview
from attnviz.figures.sinks import sink_map

__all__ = ["head_lines", "head_matrix", "is_clickable", "layer_heads", "model_overview", "sink_map", "token_heads"]
