"""Views of a long input's attention, built from one head or one layer at a time.

At 8,192 tokens a head's ``[n, n]`` matrix is 268 MB and the model's 270 heads 72 GB: nothing
here holds more than one block of query rows (``BLOCK_VALUES`` floats, 16 MB) plus what is
drawn. Each function reads :meth:`attnviz.TextAttention.head` (or a layer's row blocks), which
a short input answers from its held ``weights`` and a long one computes on demand, so every
function serves both and gives the same numbers.

- :func:`pooled_head`: one head pooled to screen resolution (max or mean over blocks of tokens).
- :func:`zoom_window`: the exact cells of a query range x key range, as an
  :class:`~attnviz.AttentionView` the ordinary matrix figure draws with token labels.
- :func:`strongest_from`: one query's strongest keys, the rest counted.
- :func:`strongest_edges`: a head's strongest (query, key) pairs over the whole input.
- :func:`pooled_layer`: every head of one layer, pooled (the all-heads mosaic).
- :func:`sweep`: every layer and head once, in query blocks, with progress and a stop: the pooled
  model overview and the head statistics (:class:`~attnviz.maths.head_statistics.StreamedHeadStatistics`)
  from the same blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnviz.errors import InputError
from attnviz.maths.head_statistics import StatisticsStopped, StreamedHeadStatistics
from attnviz.maths.pooling import PooledMatrix, RowPooling, StrongestKeys, strongest_keys
from attnviz.text.extraction import TextAttention
from attnviz.text.recorded_attention import BLOCK_VALUES
from attnviz.text.views import AttentionView

#: Bins a side of a pooled head: one bin per token up to 256 tokens, so short inputs are exact.
HEAD_BINS = 256
#: Bins a side of each head in the all-heads mosaic, and kept by the sweep of every head (the model
#: overview's figure pools them again to its thumbnails; a layer's mosaic then reads them at once).
LAYER_BINS = 128
#: Largest zoom window a side: exact cells with token labels and hover.
ZOOM_MAX = 256

__all__ = [
    "HEAD_BINS",
    "ZOOM_MAX",
    "PooledHead",
    "Sweep",
    "pooled_head",
    "pooled_layer",
    "strongest_edges",
    "strongest_from",
    "sweep",
    "zoom_window",
]


@dataclass(frozen=True)
class PooledHead:
    """One head pooled; ``tokens`` are the positions' labels (without the first token when it
    was hidden, in which case position 0 of ``pooled`` is token 1 of the input)."""

    pooled: PooledMatrix
    tokens: list[str]
    layer: int
    head: int
    hide_first: bool


def _check_head(ta: TextAttention, layer: int, head: int) -> None:
    if not 0 <= layer < ta.n_layers:
        raise InputError(f"Layer {layer} is out of range: {ta.model_name} has {ta.n_layers} layers.")
    if not 0 <= head < ta.n_heads:
        raise InputError(f"Head {head} is out of range: each layer has {ta.n_heads} heads.")


def _head_rows(ta: TextAttention, layer: int, head: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, rows [m, n])`` over every query of one head, one block at a time."""
    n = ta.n_tokens
    step = max(1, BLOCK_VALUES // max(1, n))
    for a in range(0, n, step):
        yield a, ta.head(layer, head, queries=slice(a, min(n, a + step)))


def _without_first(start: int, rows: np.ndarray) -> tuple[int, np.ndarray]:
    """Rows with the first token's row and column dropped and each row divided by what it had left
    (:func:`attnviz.maths.decoder_heads.hide_first_token`, one block at a time)."""
    if start == 0:
        rows = rows[1:]
    else:
        start -= 1
    rest = rows[:, 1:]
    left = rest.sum(axis=-1, keepdims=True)
    return start, np.divide(rest, left, out=np.zeros_like(rest), where=left > 0)


def pooled_head(
    ta: TextAttention, layer: int, head: int, *, bins: int = HEAD_BINS, how: str = "max", hide_first: bool = False
) -> PooledHead:
    """One head's ``[n, n]`` weights pooled to at most ``bins x bins`` cells (exact when n <= bins).

    ``how``: ``"max"`` (a cell is the largest weight of its block: sharp heads stay visible) or
    ``"mean"``. ``hide_first``: a decoder's first token (its attention sink) dropped and each row
    renormalised over the rest, as the short views' "Hide the first token" does.
    """
    _check_head(ta, layer, head)
    n = ta.n_tokens - (1 if hide_first else 0)
    if n < 1:
        raise InputError("Nothing is left to show once the first token is hidden: the input has one token.")
    pooling = RowPooling(n, n, bins, bins, how)
    for start, rows in _head_rows(ta, layer, head):
        if hide_first:
            start, rows = _without_first(start, rows)
        if len(rows):
            pooling.add(start, rows)
    tokens = list(ta.tokens[1:] if hide_first else ta.tokens)
    return PooledHead(pooling.result(), tokens, layer, head, hide_first)


def zoom_window(ta: TextAttention, layer: int, head: int, queries: slice, keys: slice) -> AttentionView:
    """The exact weights of queries ``queries`` x keys ``keys`` of one head (each at most
    :data:`ZOOM_MAX` long), as a one-layer, one-head :class:`AttentionView` whose positions are
    the input's (so a decoder's invisible cells are known)."""
    _check_head(ta, layer, head)
    q0, q1, _ = queries.indices(ta.n_tokens)
    k0, k1, _ = keys.indices(ta.n_tokens)
    if q1 <= q0 or k1 <= k0:
        raise InputError("The zoom window is empty: pick a first token before the last.")
    if q1 - q0 > ZOOM_MAX or k1 - k0 > ZOOM_MAX:
        raise InputError(f"A zoom window is at most {ZOOM_MAX} x {ZOOM_MAX} tokens.")
    weights = ta.head(layer, head, queries=slice(q0, q1))[:, k0:k1]  # (q, k)
    return AttentionView(
        query_tokens=list(ta.tokens[q0:q1]),
        key_tokens=list(ta.tokens[k0:k1]),
        weights=np.ascontiguousarray(weights[None, None]),  # (1, 1, q, k)
        query_positions=np.arange(q0, q1),
        key_positions=np.arange(k0, k1),
        description=f"layer {layer}, head {head}: queries {q0}–{q1 - 1}, keys {k0}–{k1 - 1}",
        model_name=ta.model_name,
        causal=ta.causal,
    )


def strongest_from(ta: TextAttention, layer: int, head: int, query: int, k: int = 20) -> StrongestKeys:
    """The ``k`` keys query token ``query`` attends to most in one head; the rest summed."""
    _check_head(ta, layer, head)
    if not 0 <= query < ta.n_tokens:
        raise InputError(f"Token {query} is out of range: the input has {ta.n_tokens} tokens.")
    return strongest_keys(ta.head(layer, head, queries=slice(query, query + 1))[0], k)


@dataclass(frozen=True)
class StrongestEdges:
    """A head's ``k`` largest weights over every (query, key): positions and weights, strongest
    first; ``rest_mass`` is what every other pair holds (the head's total is n, one per row)."""

    queries: np.ndarray
    keys: np.ndarray
    weights: np.ndarray
    rest_mass: float
    rest_count: int


def strongest_edges(
    ta: TextAttention, layer: int, head: int, k: int = 50, *, skip_first: bool = False
) -> StrongestEdges:
    """The ``k`` strongest (query, key) pairs of one head, found one block of rows at a time.

    ``skip_first``: leave out the key at position 0 (a decoder's sink would otherwise take every
    place); rows are not renormalised, so the weights are the model's.
    """
    _check_head(ta, layer, head)
    if k < 0:
        raise InputError(f"k must be 0 or more, got {k}.")
    first = 1 if skip_first else 0
    best_q = np.empty(0, dtype=np.int64)
    best_k = np.empty(0, dtype=np.int64)
    best_w = np.empty(0, dtype=np.float32)
    total, count = 0.0, 0
    for start, rows in _head_rows(ta, layer, head):
        # A view, no copy: a decoder's keys after the block's last query are exactly 0, skipped.
        seen = rows[:, first : min(rows.shape[1], start + len(rows)) if ta.causal else rows.shape[1]]
        total += float(seen.sum(dtype=np.float64))
        count += int(np.count_nonzero(seen))
        if k == 0 or seen.size == 0:
            continue
        # Only weights that can still be among the k strongest are looked at: above the k-th so far
        # (a tie loses: its position is later), and at least the k-th largest of the block's row
        # maxima when that is higher (k of the block's weights are that large; a tie may win).
        floor, strict = (best_w[-1] if len(best_w) == k else 0.0), True
        peaks = seen.max(axis=1)
        if np.count_nonzero(peaks > floor) >= k:
            kth_peak = np.partition(peaks, len(peaks) - k)[len(peaks) - k]
            if kth_peak > floor:
                floor, strict = kth_peak, False
        qi, ki = np.divmod(np.flatnonzero(seen > floor if strict else seen >= floor), seen.shape[1])
        best_q = np.concatenate([best_q, qi + start])
        best_k = np.concatenate([best_k, ki + first])
        best_w = np.concatenate([best_w, seen[qi, ki]])
        order = np.lexsort((best_k, best_q, -best_w))[:k]  # strongest first; ties to the earlier position
        best_q, best_k, best_w = best_q[order], best_k[order], best_w[order]
    return StrongestEdges(best_q, best_k, best_w, total - float(best_w.sum(dtype=np.float64)), count - len(best_w))


def _layer_blocks(ta: TextAttention, layer: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, block [heads, m, n])`` over every query of one layer."""
    if ta.holds_weights:
        yield 0, ta.weights[layer]
    else:
        for a, _, block in ta.recorded.row_blocks(layer):
            yield a, block


def pooled_layer(ta: TextAttention, layer: int, *, bins: int = LAYER_BINS, how: str = "max") -> PooledMatrix:
    """Every head of ``layer`` pooled to at most ``bins x bins``: values ``(heads, b, b)``."""
    _check_head(ta, layer, 0)
    n = ta.n_tokens
    pooling = RowPooling(n, n, bins, bins, how, leading=(ta.n_heads,))
    for start, block in _layer_blocks(ta, layer):
        pooling.add(start, block)
    return pooling.result()


@dataclass(frozen=True)
class Sweep:
    """Every head, computed once: ``overview`` pooled ``(layers, heads, b, b)`` and ``statistics``
    (the same table as :func:`attnviz.head_stats`)."""

    overview: PooledMatrix
    statistics: pd.DataFrame


def sweep(
    ta: TextAttention,
    *,
    bins: int = LAYER_BINS,
    how: str = "max",
    progress: Callable[[int, int], None] | None = None,
    stop=None,
) -> Sweep:
    """Every layer's and head's weights once, one block of query rows at a time.

    Args:
        progress: called as ``progress(layers_done, n_layers)``.
        stop: a ``threading.Event``; once set, :class:`~attnviz.maths.head_statistics.StatisticsStopped`
            is raised before the next block.
    """
    n, n_layers, n_heads = ta.n_tokens, ta.n_layers, ta.n_heads
    stats = StreamedHeadStatistics(n_layers, n_heads, list(ta.tokens), ta.special, ta.token_ids, causal=ta.causal)
    layers, blocks_done = [], 0
    for layer in range(n_layers):
        pooling = RowPooling(n, n, bins, bins, how, leading=(n_heads,))
        for start, block in _layer_blocks(ta, layer):
            if stop is not None and stop.is_set():
                raise StatisticsStopped(blocks_done)
            pooling.add(start, block)
            stats.add(layer, start, block)
            blocks_done += 1
        layers.append(pooling.result())
        if progress is not None:
            progress(layer + 1, n_layers)
    first = layers[0]
    overview = PooledMatrix(np.stack([p.values for p in layers]), first.query_edges, first.key_edges, how)
    return Sweep(overview, stats.table())
