"""What a decoder's heads do: per-head scores on causal attention, and the first token hidden.

Every function takes ``weights`` shaped ``[layers, heads, n, n]`` from a decoder (query i sees
keys 0..i only; each row sums to 1) and returns one score per head, ``[layers, heads]``
float64, the mean over the query rows that the score is defined on (NaN where there is none).

Row 0 sees only itself, so its attention is fixed (``w[0, 0] = 1``) and tells nothing about the
head: every score leaves it out. With ``V_i = {0, ..., i}`` the keys visible from row i:

====================== ============================================================ ==================
score                  per query row i                                              rows averaged
====================== ============================================================ ==================
previous token         ``w[i, i-1]``                                                i ≥ 1
duplicate token        ``Σ w[i, j]`` over ``j < i`` with ``ids[j] = ids[i]``         rows with such a j
induction              ``Σ w[i, j+1]`` over ``j+1 < i`` with ``ids[j] = ids[i]``     rows with such a j
first-token mass       ``w[i, 0]`` (the attention sink)                             i ≥ 1
special-token mass     ``Σ w[i, j]`` over special keys j                            i ≥ 1
self                   ``w[i, i]``                                                  i ≥ 1
local mass             ``Σ w[i, j]`` over ``i - window ≤ j ≤ i``                    i > window
mean distance          ``Σ w[i, j] (i - j)``                                        i ≥ 1
entropy                ``H_i = -Σ w[i, j] ln w[i, j]``                              i ≥ 1
uniform entropy        ``ln(i + 1) = ln |V_i|`` (the most row i can reach)          i ≥ 1
====================== ============================================================ ==================

The induction score is the one of Olsson et al., "In-context Learning and Induction Heads"
(Transformer Circuits Thread, 2022), as TransformerLens computes it: on a sequence
``[A B C ... | A B C ...]`` an induction head at the second ``B`` attends to the ``C`` that
followed the first ``B``. On random tokens repeated twice the only earlier occurrence of token k
of the second copy is token k of the first, so the score is the mean of the stripe
``w[n + k, k + 1]`` that TransformerLens averages (:mod:`attnviz.text.induction` runs that probe).
The key right after an earlier occurrence may be the query itself (``"a a"``: the token after
the first ``a`` is the second); it is left out, so that a head attending to itself never scores
as induction.

Broadness (:func:`entropy_fraction`) is entropy relative to the number of visible keys: a causal
row i can reach at most ``ln(i + 1)``, not ``ln n``, so the fraction is
``Σ_i H_i / Σ_i ln(i + 1)`` over rows i ≥ 1 (1 for uniform attention over the visible keys).

Token identity: two tokens are the same token when their ids are equal; a negative id matches
nothing (for tokens whose identity is unknown).
"""

from __future__ import annotations

import numpy as np

from attnviz.errors import InputError

#: Default window of :func:`local_mass`: the token itself and the 3 before it.
LOCAL_WINDOW = 3


def _check(weights) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise InputError(f"Decoder head scores need weights shaped [layers, heads, n, n], got {w.shape}.")
    return w


def _ids(token_ids, n: int) -> np.ndarray:
    ids = np.asarray(token_ids)
    if ids.shape != (n,) or not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"token_ids must be {n} integers, one per token, got shape {ids.shape} ({ids.dtype}).")
    return ids.astype(np.int64)


def query_rows(n: int, start: int = 0, m: int | None = None) -> np.ndarray:
    """``[m]`` int: the query positions ``start .. start+m-1`` of a block of rows (all n rows
    when ``m`` is None and ``start`` is 0)."""
    m = n - start if m is None else m
    if start < 0 or m < 0 or start + m > n:
        raise InputError(f"A block of rows {start}..{start + m} does not fit in {n} tokens.")
    return np.arange(start, start + m)


def duplicate_mask(token_ids, start: int = 0, m: int | None = None) -> np.ndarray:
    """Boolean ``[m, n]`` for query rows ``start .. start+m`` (default: all, ``[n, n]``): ``[r, j]``
    is True when ``j < i`` and token j is token i again, with ``i = start + r``."""
    ids = np.asarray(token_ids, dtype=np.int64)
    i = query_rows(len(ids), start, m)
    q = ids[i][:, None]
    return (q == ids[None, :]) & (q >= 0) & (np.arange(len(ids))[None, :] < i[:, None])


def induction_mask(token_ids, start: int = 0, m: int | None = None) -> np.ndarray:
    """Boolean ``[m, n]`` for query rows ``start .. start+m`` (default: all, ``[n, n]``): ``[r, k]``
    is True when key ``k < i`` follows an earlier occurrence of token i (``ids[k - 1] = ids[i]``),
    with ``i = start + r``."""
    dup = duplicate_mask(token_ids, start, m)
    return _after_copies(dup, query_rows(dup.shape[1], start, m))


def _after_copies(dup: np.ndarray, i: np.ndarray) -> np.ndarray:
    """:func:`induction_mask` from the :func:`duplicate_mask` ``dup`` of the query positions ``i``."""
    mask = np.zeros(dup.shape, dtype=bool)
    mask[:, 1:] = dup[:, :-1]  # the key after each earlier occurrence
    return mask & (np.arange(dup.shape[1])[None, :] < i[:, None])  # never the query itself


def local_window_mask(n: int, window: int = LOCAL_WINDOW, start: int = 0, m: int | None = None) -> np.ndarray:
    """Boolean ``[m, n]`` for query rows ``start .. start+m`` (default: all, ``[n, n]``): ``[r, j]``
    is True for ``i - window ≤ j ≤ i``, with ``i = start + r``."""
    if window < 0:
        raise InputError(f"The local window must be 0 or more tokens, got {window}.")
    i, j = query_rows(n, start, m)[:, None], np.arange(n)[None, :]
    return (j <= i) & (j >= i - window)  # i - window <= j <= i, without an (m, n) array of offsets


def uniform_entropy(n: int) -> np.ndarray:
    """``[n]``: ``ln(i + 1)``, the entropy of attending equally to the i + 1 keys row i sees."""
    return np.log(np.arange(1, n + 1, dtype=np.float64))


def row_entropy(weights) -> np.ndarray:
    """``[layers, heads, n]``: ``H_i = -Σ_j w[i, j] ln w[i, j]`` in nats (0·ln 0 = 0)."""
    w = np.asarray(_check(weights), dtype=np.float64)
    return -(w * np.log(np.clip(w, 1e-30, None))).sum(axis=-1)


def masked_row_mass(weights, mask: np.ndarray) -> np.ndarray:
    """``[layers, heads, n]``: each row's attention on the keys that ``mask`` ``[n, n]`` marks."""
    w = _check(weights)
    out = np.empty(w.shape[:3], dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    for l in range(w.shape[0]):  # one layer at a time: float64 copies of every layer are large
        out[l] = np.einsum("hij,ij->hi", np.asarray(w[l], dtype=np.float64), m)
    return out


def mean_over_rows(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``[layers, heads]``: the mean of ``values`` ``[layers, heads, n]`` over the rows marked in
    ``rows`` ``[n]`` (NaN when none is)."""
    rows = np.asarray(rows, dtype=bool)
    if not rows.any():
        return np.full(values.shape[:2], np.nan)
    return values[..., rows].mean(axis=-1)


def _from_row_1(n: int) -> np.ndarray:
    rows = np.ones(n, dtype=bool)
    rows[:1] = False
    return rows


def previous_token_score(weights) -> np.ndarray:
    """``[layers, heads]``: mean over rows i ≥ 1 of ``w[i, i-1]``."""
    w = _check(weights)
    n = w.shape[-1]
    idx = np.arange(1, n)
    return mean_over_rows(np.asarray(w[..., idx, idx - 1], dtype=np.float64), np.ones(n - 1, dtype=bool))


def duplicate_token_score(weights, token_ids) -> np.ndarray:
    """``[layers, heads]``: mean over rows with an earlier occurrence of their token of the
    attention on those occurrences; ``token_ids`` ``[n]`` ints."""
    w = _check(weights)
    mask = duplicate_mask(_ids(token_ids, w.shape[-1]))
    return mean_over_rows(masked_row_mass(w, mask), mask.any(axis=1))


def induction_score(weights, token_ids) -> np.ndarray:
    """``[layers, heads]``: mean over rows with an earlier occurrence of their token of the
    attention on the tokens right after those occurrences (Olsson et al. 2022; see the module
    docstring); ``token_ids`` ``[n]`` ints."""
    w = _check(weights)
    mask = induction_mask(_ids(token_ids, w.shape[-1]))
    return mean_over_rows(masked_row_mass(w, mask), mask.any(axis=1))


def first_token_mass(weights) -> np.ndarray:
    """``[layers, heads]``: the attention sink, mean over rows i ≥ 1 of ``w[i, 0]``."""
    w = _check(weights)
    n = w.shape[-1]
    return mean_over_rows(np.asarray(w[..., :, 0], dtype=np.float64), _from_row_1(n))


def special_token_mass(weights, special) -> np.ndarray:
    """``[layers, heads]``: mean over rows i ≥ 1 of the attention on the keys that ``special``
    ``[n]`` (bool) marks."""
    w = _check(weights)
    n = w.shape[-1]
    special = np.asarray(special, dtype=bool)
    if special.shape != (n,):
        raise InputError(f"special must have one flag per token ({n}), got shape {special.shape}.")
    return mean_over_rows(masked_row_mass(w, np.broadcast_to(special, (n, n))), _from_row_1(n))


def local_mass(weights, window: int = LOCAL_WINDOW) -> np.ndarray:
    """``[layers, heads]``: mean over rows ``i > window`` of the attention on keys
    ``i - window .. i``. Rows i ≤ window see only keys inside the window (their local mass is 1
    whatever the head does), so they are left out."""
    w = _check(weights)
    n = w.shape[-1]
    rows = np.arange(n) > window
    return mean_over_rows(masked_row_mass(w, local_window_mask(n, window)), rows)


def entropy_fraction(weights) -> np.ndarray:
    """``[layers, heads]``: ``Σ_i H_i / Σ_i ln(i + 1)`` over rows i ≥ 1, the entropy relative to
    the most the visible keys allow (1: uniform over them; 0: one key). NaN when n < 2."""
    w = _check(weights)
    n = w.shape[-1]
    if n < 2:
        return np.full(w.shape[:2], np.nan)
    return row_entropy(w)[..., 1:].sum(axis=-1) / uniform_entropy(n)[1:].sum()


def hide_first_token(weights) -> np.ndarray:
    """The attention with the first token taken out: ``[layers, heads, n, n]`` ->
    ``[layers, heads, n-1, n-1]``, same dtype, a new array.

    Row 0 and column 0 are dropped, and each remaining row is divided by what it had left,
    ``1 - w[i, 0]``, so that it again sums to 1 over its visible keys 1..i: the sink is hidden
    and the rest is shown in proportion. So:

    - the old row 1, whose only key left is itself, becomes exactly 1 on itself (whatever it put
      on the first token);
    - a row that had all its attention on the first token has nothing left to share out: it
      comes back as zeros (a row that sums to 0, not an invented distribution);
    - a row that put 99.9 % on the first token is drawn from its last 0.1 %: read the result
      with :func:`first_token_mass` (or ``weights[..., 1:, 0]``) beside it.
    """
    w = _check(weights)
    # In the input's own float type: a float64 copy of a decoder's 512-token attention is 570 MB.
    dtype = w.dtype if np.issubdtype(w.dtype, np.floating) else np.float64
    rest = np.asarray(w[..., 1:, 1:], dtype=dtype)  # (L, H, n-1, n-1), a view when no cast is needed
    left = rest.sum(axis=-1, keepdims=True)  # (L, H, n-1, 1): what each row kept
    return np.divide(rest, left, out=np.zeros(rest.shape, dtype=dtype), where=left > 0)


#: Values of one chunk of rows that :func:`row_statistics` works on at once (1 MB of float32, in cache).
_CHUNK_VALUES = 1 << 18
#: A mask with at most this share of its cells set is summed from its cells, else row by row.
_SPARSE_SHARE = 1 / 16


def _cells(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The set cells ``(rows, cols)`` of a bool ``[m, n]`` mask, or None when more than
    :data:`_SPARSE_SHARE` of them are set."""
    flat = np.flatnonzero(mask)
    return None if flat.size > _SPARSE_SHARE * mask.size else np.divmod(flat, mask.shape[1])


def _cell_sums(wl: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``[heads, m]`` float64: each row's weights ``wl`` ``[heads, m, n]`` summed over the cells
    ``(rows[t], cols[t])`` of a sparse mask."""
    n_heads, m, _ = wl.shape
    index = (np.arange(n_heads)[:, None] * m + rows[None, :]).ravel()
    return np.bincount(index, weights=wl[:, rows, cols].ravel(), minlength=n_heads * m).reshape(n_heads, m)


def _dense_row_sums(wl: np.ndarray, i: np.ndarray, masks: dict, out: dict) -> None:
    """Fill ``out`` (name -> ``[heads, m]`` float64) with each row's entropy, mean distance and mass
    on each of ``masks`` (name -> bool ``[m, n]``), from ``wl`` ``[heads, m, n]``, the rows of the
    query positions ``i`` ``[m]`` (consecutive).

    A few rows at a time, so that the temporaries stay in cache. Products are taken in the weights'
    own precision (a weight times a 0/1 mask is exact; times a distance, or ``w ln w``, within an
    ulp or two, and every term has the same sign) and summed in float64. The keys after a chunk's
    last query hold 0 in a decoder's weights and are skipped, after a check: any weight there is
    counted.
    """
    n_heads, m, n = wl.shape
    step = max(1, _CHUNK_VALUES // max(1, n_heads * n))
    buffer = np.empty(n_heads * step * n, dtype=wl.dtype)
    keys = np.arange(n, dtype=np.float32)  # positions < 2**24 are exact in float32
    for a in range(0, m, step):
        b = min(m, a + step)
        seen = min(n, int(i[b - 1]) + 1)  # keys 0 .. seen-1: what the chunk's rows see when causal
        if seen < n and wl[:, a:b, seen:].any():
            seen = n
        rows = wl[:, a:b, :seen]
        work = buffer[: rows.size].reshape(rows.shape)
        np.log(np.maximum(rows, 1e-30, out=work), out=work)  # 0·ln 0 = 0: clipped zeros are multiplied by 0
        out["entropy"][:, a:b] = -np.multiply(work, rows, out=work).sum(axis=-1, dtype=np.float64)
        distance = np.maximum(i[a:b, None].astype(np.float32) - keys[:seen], 0)  # (b - a, seen): i - j where visible
        out["mean_distance"][:, a:b] = np.multiply(rows, distance, out=work).sum(axis=-1, dtype=np.float64)
        for name, mask in masks.items():
            out[name][:, a:b] = np.multiply(rows, mask[a:b, :seen], out=work).sum(axis=-1, dtype=np.float64)


def row_statistics(
    weights, token_ids, special, window: int = LOCAL_WINDOW, start: int = 0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every score above before the mean over rows: name -> (values ``[layers, heads, m]``,
    rows ``[m]`` bool, the rows the mean is over). Sums over rows add up across inputs
    (:class:`attnviz.maths.head_statistics.DecoderHeadTotals`) and across blocks of rows
    (:class:`attnviz.maths.head_statistics.StreamedHeadStatistics`).

    ``weights`` is ``[layers, heads, m, n]``: the query rows ``start .. start+m`` of an input of
    n tokens, every key (the whole attention when ``start`` is 0 and m = n). ``token_ids`` and
    ``special`` are ``[n]``. Only ``(m, n)`` masks are built, never ``(n, n)`` ones for m < n.

    Names: ``entropy``, ``uniform_entropy``, ``first_mass``, ``special_mass``, ``self_mass``,
    ``prev_mass``, ``duplicate_mass``, ``induction_mass``, ``local_mass``, ``mean_distance``.
    """
    w = np.asarray(weights)
    if w.ndim != 4:
        raise InputError(f"Decoder head scores need weights shaped [layers, heads, m, n], got {w.shape}.")
    n_layers, n_heads, m, n = w.shape
    i = query_rows(n, start, m)  # (m,): the query positions
    r = np.arange(m)  # (m,): the rows of the block
    ids = _ids(token_ids, n)
    special = np.asarray(special, dtype=bool)
    if special.shape != (n,):
        raise InputError(f"special must have one flag per token ({n}), got shape {special.shape}.")
    from_1 = i >= 1
    dup = duplicate_mask(ids, start, m)  # (m, n)
    ind = _after_copies(dup, i)
    masks = {
        "special_mass": np.broadcast_to(special, (m, n)),
        "duplicate_mass": dup,
        "induction_mass": ind,
        "local_mass": local_window_mask(n, window, start, m),
    }
    # A sparse mask (most are: a few earlier copies, a few local keys) is summed from its cells,
    # a dense one with the entropy and the distance, a cache-sized chunk of rows at a time.
    cells = {name: _cells(masks[name]) for name in ("duplicate_mass", "induction_mass", "local_mass")}
    specials = np.flatnonzero(special)
    if specials.size <= _SPARSE_SHARE * n:  # a few special keys: their columns of every row
        cells["special_mass"] = (np.repeat(r, specials.size), np.tile(specials, m))
    cells = {name: rows_cols for name, rows_cols in cells.items() if rows_cols is not None}
    dense = {name: mask for name, mask in masks.items() if name not in cells}
    out = {name: np.empty((n_layers, n_heads, m)) for name in ("entropy", "mean_distance", *masks)}
    for l in range(n_layers):  # one layer at a time
        wl = w[l] if w.dtype in (np.float32, np.float64) else np.asarray(w[l], dtype=np.float64)  # (H, m, n)
        _dense_row_sums(wl, i, dense, {name: out[name][l] for name in ("entropy", "mean_distance", *dense)})
        for name, (rows, cols) in cells.items():
            out[name][l] = _cell_sums(wl, rows, cols)
    prev = np.zeros((n_layers, n_heads, m))
    prev[..., from_1] = w[..., r[from_1], i[from_1] - 1]
    return {
        "entropy": (out["entropy"], from_1),
        "uniform_entropy": (np.broadcast_to(np.log(i + 1.0), (n_layers, n_heads, m)), from_1),
        "first_mass": (np.asarray(w[..., :, 0], dtype=np.float64), from_1),
        "special_mass": (out["special_mass"], from_1),
        "self_mass": (np.asarray(w[..., r, i], dtype=np.float64), from_1),
        "prev_mass": (prev, from_1),
        "duplicate_mass": (out["duplicate_mass"], dup.any(axis=1)),
        "induction_mass": (out["induction_mass"], ind.any(axis=1)),
        "local_mass": (out["local_mass"], i > window),
        "mean_distance": (out["mean_distance"], from_1),
    }
