"""The worked example's numbers as files: every intermediate of one head (NPZ), one matrix (CSV)."""

from __future__ import annotations

import csv
import io

import numpy as np

from attnviz.export.csv_cells import text_cells
from attnviz.maths.qkv import OneHead


def steps_npz(head: OneHead, tokens: list[str], **meta) -> bytes:
    """Every intermediate of one head as ``.npz`` (load with ``numpy.load``); ``meta``: strings or numbers."""
    buf = io.BytesIO()
    arrays = {name: getattr(head, name) for name in OneHead.__dataclass_fields__ if name != "scale"}
    extra = {k: np.array(v) for k, v in meta.items()}
    np.savez_compressed(buf, **arrays, scale=np.array(head.scale), tokens=np.array(tokens, dtype=str), **extra)
    return buf.getvalue()


def matrix_csv(m: np.ndarray, row_labels: list[str], col_labels: list[str]) -> bytes:
    """A matrix as CSV with a header row and a label column; ``-inf`` is written as ``-inf``.

    Labels that a spreadsheet would run as formulas get a leading ``'`` (:mod:`attnviz.export.csv_cells`);
    the numbers are written as numbers, so ``-0.5`` stays ``-0.5``.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["", *text_cells(col_labels)])
    for label, row in zip(text_cells(row_labels), np.asarray(m), strict=True):
        writer.writerow([label, *(repr(float(v)) for v in row)])
    return out.getvalue().encode("utf-8")
