"""Files of a long input's views: a pooled head, a head's strongest pairs and one token's rollout, as CSV."""

from __future__ import annotations

import csv
import io

import numpy as np

from attnviz.export.csv_cells import text_cells
from attnviz.maths.pooling import PooledMatrix


def pooled_csv(pm: PooledMatrix, tokens: list[str], *, layer: int, head: int) -> bytes:
    """A 2-D pooled head as a long table: one row per (query bin, key bin) with its token ranges."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        ["layer", "head", "query_first", "query_last", "key_first", "key_last", pm.how, "first_query_token"]
    )
    firsts = text_cells([tokens[int(a)] for a in pm.query_edges[:-1]])
    qe, ke = pm.query_edges, pm.key_edges
    for i in range(len(qe) - 1):
        for j in range(len(ke) - 1):
            value = float(pm.values[i, j])
            writer.writerow([layer, head, qe[i], qe[i + 1] - 1, ke[j], ke[j + 1] - 1, f"{value:.6g}", firsts[i]])
    return out.getvalue().encode("utf-8")


def edges_csv(
    tokens: list[str], queries: np.ndarray, keys: np.ndarray, weights: np.ndarray, *, layer: int, head: int
) -> bytes:
    """A head's strongest (query, key) pairs, strongest first."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["layer", "head", "query_index", "query", "key_index", "key", "weight"])
    q_cells = text_cells([tokens[int(q)] for q in queries])
    k_cells = text_cells([tokens[int(k)] for k in keys])
    for q, k, w, qc, kc in zip(queries, keys, weights, q_cells, k_cells, strict=True):
        writer.writerow([layer, head, int(q), qc, int(k), kc, f"{float(w):.6f}"])
    return out.getvalue().encode("utf-8")


def rollout_row_csv(tokens: list[str], row: np.ndarray, *, query: int) -> bytes:
    """One token's rollout over every input token (a long input's rollout view)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["from_index", "to_index", "to_token", "share"])
    for j, (token, value) in enumerate(zip(text_cells(tokens), row, strict=True)):
        writer.writerow([query, j, token, f"{float(value):.6g}"])
    return out.getvalue().encode("utf-8")
