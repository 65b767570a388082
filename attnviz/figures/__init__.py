"""Figure builders: a result container in, a ``plotly.graph_objects.Figure`` out.

They never call Streamlit, so a notebook user can ``.show()`` them.

The names below are imported on first use: the attention figures import the text wing, and with it
PyTorch, while the worked example's figures (:mod:`attnviz.figures.steps`) need only Plotly and are
drawn in toy mode before PyTorch is imported (:mod:`attnviz.ui.worked_toy`).
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_EXPORTS = {
    "head_lines": "attnviz.figures.lines",
    "head_matrix": "attnviz.figures.matrix",
    "is_clickable": "attnviz.figures.matrix",
    "token_heads": "attnviz.figures.matrix",
    "layer_heads": "attnviz.figures.mosaic",
    "model_overview": "attnviz.figures.mosaic",
    "sink_map": "attnviz.figures.sinks",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # once: later look-ups do not come back here
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
