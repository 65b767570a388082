"""Attention as files: ``.npz`` for programs, CSV for spreadsheets."""

from __future__ import annotations

import csv
import io

import numpy as np

from attnviz.export.csv_cells import text_cells
from attnviz.text.extraction import TextAttention
from attnviz.text.views import AttentionView


def attention_npz(ta: TextAttention) -> bytes:
    """Everything needed to redraw any view: weights ``[layers, heads, n, n]`` and token metadata."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        weights=ta.weights,
        tokens=np.array(ta.tokens, dtype=str),
        special=ta.special,
        segment=ta.segment,
        word_index=ta.word_index,
        words=np.array(ta.words, dtype=str),
        text=np.array(ta.text),
        text_pair=np.array(ta.text_pair or ""),
        model=np.array(ta.model_name),
    )
    return buf.getvalue()


def head_csv(view: AttentionView, layer: int, head: int) -> bytes:
    """One head of the current view as a long table: one row per (query, key) pair.

    Token and word cells that a spreadsheet would run as formulas get a leading ``'`` (:mod:`attnviz.export.csv_cells`).
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["layer", "head", "query_index", "query", "key_index", "key", "weight"])
    w = view.weights[layer, head]
    queries, keys = text_cells(view.query_tokens), text_cells(view.key_tokens)
    for i, q in enumerate(queries):
        for j, k in enumerate(keys):
            writer.writerow(
                [layer, head, int(view.query_positions[i]), q, int(view.key_positions[j]), k, f"{w[i, j]:.6f}"]
            )
    return out.getvalue().encode("utf-8")
