"""Attention matrices pooled to screen resolution, built one block of query rows at a time.

At 8,192 tokens one head's ``[n, n]`` matrix is 268 MB: it is never drawn, and never held,
whole. The model yields the weights a block of query rows at a time (rows ``start..start+m``,
every key); :class:`RowPooling` folds each block into a ``bins_q x bins_k`` grid and forgets it,
so memory is one block plus the grid. Two poolings:

- ``"max"``: a cell is the largest weight in its block of tokens. A sharp head (one key per
  query, a previous-token diagonal) stays visible however many tokens share a pixel.
- ``"mean"``: a cell is the average weight over *every* cell of its block, so ``mean x cells``
  is the block's attention mass. A decoder's invisible cells (keys after the query, exactly 0
  in its weights) count as 0: a block on the diagonal is diluted by the keys its queries could
  not see. Use :func:`visible_bins` to tell a bin with no visible cell from a bin of weight 0.

Bins are contiguous runs of positions, as equal as possible (:func:`bin_edges`); with fewer
tokens than bins every bin is one token and pooling changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

HOWS = ("max", "mean")


def bin_edges(n: int, bins: int) -> np.ndarray:
    """``min(bins, n) + 1`` strictly increasing int64 edges from 0 to ``n``; sizes differ by at most 1.

    Bin ``i`` holds positions ``edges[i] .. edges[i + 1] - 1``. ``n == 0`` gives ``[0]`` (no bin).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    b = min(int(bins), int(n))
    if b == 0:
        return np.zeros(1, dtype=np.int64)
    # floor(i * n / b) in integers: no rounding surprises, and n / b >= 1 makes it strictly increasing.
    return (np.arange(b + 1, dtype=np.int64) * int(n)) // b


def _check_how(how: str) -> str:
    if how not in HOWS:
        raise ValueError(f"how must be one of {HOWS}, got {how!r}")
    return how


def _check_edges(edges: np.ndarray, name: str) -> np.ndarray:
    edges = np.asarray(edges, dtype=np.int64)
    if edges.ndim != 1 or edges.size < 2 or edges[0] != 0 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"{name} must start at 0 and increase strictly, got {edges!r}")
    return edges


@dataclass(frozen=True)
class PooledMatrix:
    """An attention matrix (or a stack of them) pooled into blocks of tokens.

    ``values[..., i, j]`` summarises the block of queries ``query_edges[i] .. query_edges[i+1]-1``
    and keys ``key_edges[j] .. key_edges[j+1]-1``:

    - ``how == "max"``: the largest weight in the block;
    - ``how == "mean"``: the block's total weight divided by its number of cells, every cell
      counted, a decoder's invisible cells (exactly 0) included as 0.

    A bin whose cells a decoder's queries cannot see at all holds 0 in both cases:
    :func:`visible_bins` says which.
    """

    values: np.ndarray  # float32 (..., bq, bk)
    query_edges: np.ndarray  # int64 (bq + 1,)
    key_edges: np.ndarray  # int64 (bk + 1,)
    how: str

    def __post_init__(self) -> None:
        _check_how(self.how)
        bq, bk = len(self.query_edges) - 1, len(self.key_edges) - 1
        if self.values.shape[-2:] != (bq, bk):
            raise ValueError(f"values {self.values.shape} do not match {bq} x {bk} bins")

    @property
    def n_queries(self) -> int:
        return int(self.query_edges[-1])

    @property
    def n_keys(self) -> int:
        return int(self.key_edges[-1])

    @property
    def cells(self) -> np.ndarray:
        """int64 ``(bq, bk)``: how many query x key cells each bin holds."""
        return np.outer(np.diff(self.query_edges), np.diff(self.key_edges))


class RowPooling:
    """Pools a ``(*leading, n_queries, n_keys)`` stack of matrices that arrives in row blocks.

    >>> pooling = RowPooling(n, n, 256, 256, "max", leading=(n_heads,))
    >>> for start, rows in blocks:   # rows: (n_heads, m, n), in order; a block may split a bin
    ...     pooling.add(start, rows)
    >>> pooled = pooling.result()    # PooledMatrix, values (n_heads, 256, 256)

    Memory: one block reduced over keys (``(*leading, m, bins_k)`` float64) plus the grid.
    """

    def __init__(
        self,
        n_queries: int,
        n_keys: int,
        bins_q: int,
        bins_k: int,
        how: str,
        leading: tuple[int, ...] = (),
    ) -> None:
        self.how = _check_how(how)
        if n_queries < 1 or n_keys < 1:
            raise ValueError(f"need at least one query and one key, got {n_queries} x {n_keys}")
        self.n_queries, self.n_keys = int(n_queries), int(n_keys)
        self.leading = tuple(int(d) for d in leading)
        self.query_edges = bin_edges(self.n_queries, bins_q)
        self.key_edges = bin_edges(self.n_keys, bins_k)
        shape = (*self.leading, len(self.query_edges) - 1, len(self.key_edges) - 1)
        # Max: weights are float32, so a float32 running max is exact. Mean: float64 sums.
        self._acc = np.full(shape, -np.inf, np.float32) if how == "max" else np.zeros(shape, np.float64)
        self._next = 0

    @property
    def rows_done(self) -> int:
        return self._next

    def add(self, start: int, rows: np.ndarray) -> None:
        """Fold query rows ``start .. start + m - 1`` (``rows``: ``(*leading, m, n_keys)``) in.

        Blocks must come in order, without gaps or overlaps: ``start`` is the number of rows
        already added.
        """
        rows = np.asarray(rows)
        if start != self._next:
            raise ValueError(f"rows must arrive in order: expected start {self._next}, got {start}")
        if rows.shape[:-2] != self.leading or rows.ndim != len(self.leading) + 2 or rows.shape[-1] != self.n_keys:
            raise ValueError(f"rows {rows.shape} do not match (*{self.leading}, m, {self.n_keys})")
        m = rows.shape[-2]
        if m == 0:
            return
        stop = start + m
        if stop > self.n_queries:
            raise ValueError(f"rows {start}..{stop - 1} run past {self.n_queries} queries")
        key_starts = self.key_edges[:-1]
        # 1. over keys: (*leading, m, bk)
        if self.how == "max":
            by_key = np.maximum.reduceat(rows, key_starts, axis=-1)
        else:
            by_key = np.add.reduceat(rows, key_starts, axis=-1, dtype=np.float64)
        # 2. over the block's rows, one segment per query bin the block touches.
        q = self.query_edges
        first = int(np.searchsorted(q, start, side="right")) - 1
        last = int(np.searchsorted(q, stop - 1, side="right")) - 1
        seg_starts = np.maximum(q[first : last + 1], start) - start  # (last - first + 1,)
        target = self._acc[..., first : last + 1, :]
        if self.how == "max":
            np.maximum(target, np.maximum.reduceat(by_key, seg_starts, axis=-2), out=target)
        else:
            target += np.add.reduceat(by_key, seg_starts, axis=-2)
        self._next = stop

    def result(self) -> PooledMatrix:
        """The pooled stack; every query row must have been added."""
        if self._next != self.n_queries:
            raise ValueError(f"only {self._next} of {self.n_queries} query rows were added")
        if self.how == "max":
            values = self._acc.copy()
        else:
            cells = np.outer(np.diff(self.query_edges), np.diff(self.key_edges))
            values = (self._acc / cells).astype(np.float32)
        return PooledMatrix(values, self.query_edges.copy(), self.key_edges.copy(), self.how)


def pool(matrix: np.ndarray, bins_q: int, bins_k: int, how: str) -> PooledMatrix:
    """Pool ``matrix`` ``(..., n_queries, n_keys)`` at once (one block, through :class:`RowPooling`)."""
    matrix = np.asarray(matrix)
    if matrix.ndim < 2:
        raise ValueError(f"need a matrix, got shape {matrix.shape}")
    *leading, n_q, n_k = matrix.shape
    pooling = RowPooling(n_q, n_k, bins_q, bins_k, how, leading=tuple(leading))
    pooling.add(0, matrix)
    return pooling.result()


def coarsen(pm: PooledMatrix, bins_q: int, bins_k: int) -> PooledMatrix:
    """Pool a pooled matrix again, to at most ``bins_q x bins_k`` bins, exactly.

    The new bins are runs of old bins (:func:`bin_edges` over the old bins), so the result is
    what pooling the full matrix with those token edges gives: the max of maxes, and for
    ``"mean"`` the sums (mean x cells) added and divided by the new block's cells.
    """
    qi = bin_edges(len(pm.query_edges) - 1, bins_q)
    ki = bin_edges(len(pm.key_edges) - 1, bins_k)
    q_edges, k_edges = pm.query_edges[qi], pm.key_edges[ki]
    if pm.how == "max":
        values = np.maximum.reduceat(np.maximum.reduceat(pm.values, ki[:-1], axis=-1), qi[:-1], axis=-2)
    else:
        sums = pm.values.astype(np.float64) * pm.cells
        sums = np.add.reduceat(np.add.reduceat(sums, ki[:-1], axis=-1), qi[:-1], axis=-2)
        values = sums / np.outer(np.diff(q_edges), np.diff(k_edges))
    return PooledMatrix(values.astype(np.float32), q_edges, k_edges, pm.how)


class StrongestKeys(NamedTuple):
    """The top keys of one query row, and what the other keys hold."""

    indices: np.ndarray  # int64 (k',), key positions, strongest first
    values: np.ndarray  # (k',) their weights, descending
    rest_mass: float  # total weight of every other key
    rest_count: int  # how many other keys have a weight > 0


def strongest_keys(row: np.ndarray, k: int) -> StrongestKeys:
    """The ``k`` keys with the largest weight in ``row`` (one query's weights over the keys).

    Only keys with weight > 0 are candidates and counted: a decoder's keys after the query are
    exactly 0 and never visible, so they are neither listed nor counted in ``rest_count``
    (neither is a visible key whose weight underflowed to exactly 0; it holds no mass either).
    ``len(indices) == min(k, keys with weight > 0)``; ties go to the earlier position.
    ``rest_mass`` is the summed weight of the positive keys not listed, ``rest_count`` their number,
    so ``values.sum() + rest_mass == row.sum()``.
    """
    row = np.asarray(row)
    if row.ndim != 1:
        raise ValueError(f"need one row, got shape {row.shape}")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    positive = np.flatnonzero(row > 0)
    k = min(int(k), positive.size)
    if k == 0:
        candidates = positive[:0]
    elif k < positive.size:  # O(n) preselection; only the top k are sorted
        # Keep every key tied with the k-th largest, so the tie rule below stays exact.
        kth = np.partition(row[positive], positive.size - k)[positive.size - k]
        candidates = positive[row[positive] >= kth]
    else:
        candidates = positive
    order = np.lexsort((candidates, -row[candidates].astype(np.float64)))[:k]
    indices = candidates[order].astype(np.int64)
    rest = np.ones(row.shape, dtype=bool)
    rest[indices] = False
    rest &= row > 0
    return StrongestKeys(indices, row[indices], float(row[rest].sum(dtype=np.float64)), int(rest.sum()))


def visible_bins(query_edges: np.ndarray, key_edges: np.ndarray) -> np.ndarray:
    """bool ``(bq, bk)``: which bins of a causal matrix hold at least one visible cell.

    Query and key positions are row and column numbers of the same sequence; a query at position
    ``q`` sees the keys ``<= q``. A bin is visible when its first key is at or before its last query.
    """
    q = _check_edges(query_edges, "query_edges")
    k = _check_edges(key_edges, "key_edges")
    return k[None, :-1] <= (q[1:, None] - 1)
