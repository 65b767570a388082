"""Files for programs, spreadsheets, slides and papers: every NPZ and CSV writer and every figure (PNG, SVG,
PDF; :mod:`attnviz.export.figure_formats`), text and image.

``attnviz.export.attention_npz(ta)`` and ``attnviz.export.head_csv(view, layer, head)`` are the
public names; the writers live in ``attention_files`` (text attention), ``png`` (matplotlib
PNGs of each view, also reachable as ``attnviz.static``), ``rollout_files``, ``image_files`` and
``csv_cells`` (cells a spreadsheet will not run as formulas). Loaded lazily, so that importing
one writer does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"attention_npz": "attnviz.export.attention_files", "head_csv": "attnviz.export.attention_files"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'attnviz.export' has no attribute {name!r}")
