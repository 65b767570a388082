"""Deletion and insertion curves of an importance map, on arrays only (RISE, Petsiuk et al. 2018).

An explanation gives each of ``n`` removable *units* (tokens, grid cells) an importance. Its
**deletion** curve removes the units most important first and follows the model's target score;
a faithful map makes it fall fast (a low area is good). Its **insertion** curve starts from the
input with every unit removed and puts the units back, most important first; a faithful map makes
it rise fast (a high area is good). How a unit is removed is the model wing's business; here a
curve point is only a boolean mask ``removed [n]``.

Counts. The curve has ``steps + 1`` points at fractions ``f_i = i / steps``. Deletion removes
``k_i = round(f_i · n)`` units (half up, in integers: ``(2·i·n + steps) // (2·steps)``).
Insertion puts back ``n - k_{steps-i}`` units at point i, i.e. it removes the ``k_{steps-i}`` least
important ones; this equals ``round(f_i · n)`` except at exact halves, and it makes insertion with
an order the same masks as deletion with the reversed order, so that the random baseline's
deletion and insertion curves share their forward passes. Ties in importance go to the earlier
unit (a stable sort), so every order is reproducible.

Curves are divided by the full input's score, so point 0 of deletion (and the last point of
insertion) is exactly 1 and areas are comparable across inputs; the area is the trapezoid rule
over the fractions 0..1.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from attnviz.errors import InputError


def fractions(steps: int) -> np.ndarray:
    """``[steps + 1]`` float64 fractions 0, 1/steps, ..., 1."""
    return np.arange(steps + 1, dtype=np.float64) / steps


def removed_counts(n_units: int, steps: int) -> np.ndarray:
    """``[steps + 1]`` int: units deletion removes at each fraction, ``round(f · n)`` half up."""
    i = np.arange(steps + 1, dtype=np.int64)
    return (2 * i * n_units + steps) // (2 * steps)


def order_of(importance) -> np.ndarray:
    """Units most important first; ties (and NaN, taken as least important) in position order."""
    x = np.asarray(importance, dtype=np.float64).ravel()
    x = np.where(np.isnan(x), -np.inf, x)
    return np.argsort(-x, kind="stable")


def deletion_masks(order: np.ndarray, steps: int) -> np.ndarray:
    """bool ``[steps + 1, n]``: True where a unit is removed at each point of the deletion curve."""
    n = order.size
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.arange(n)  # rank 0 = most important
    return ranks[None, :] < removed_counts(n, steps)[:, None]


def insertion_masks(order: np.ndarray, steps: int) -> np.ndarray:
    """bool ``[steps + 1, n]``: True where a unit is still removed at each point of the insertion curve
    (point 0: everything removed; the last point: nothing)."""
    return deletion_masks(order[::-1], steps)[::-1]


def auc(curve, steps_fractions: np.ndarray | None = None) -> float:
    """Area under a curve over ``[0, 1]`` by the trapezoid rule (equally spaced points by default)."""
    y = np.asarray(curve, dtype=np.float64)
    x = fractions(y.size - 1) if steps_fractions is None else np.asarray(steps_fractions, dtype=np.float64)
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def random_orders(n_units: int, count: int, seed: int) -> np.ndarray:
    """``[count, n]`` int: ``count`` random orders of the units, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_units) for _ in range(count)]) if count else np.empty((0, n_units), int)


def order_importance(order: np.ndarray) -> np.ndarray:
    """An importance ``[n]`` that :func:`order_of` turns back into ``order`` (n for the first unit ... 1)."""
    n = order.size
    importance = np.empty(n, dtype=np.float64)
    importance[order] = np.arange(n, 0, -1)
    return importance


def leave_one_out(full_score: float, without: np.ndarray) -> np.ndarray:
    """Leave-one-out importance ``[n]``: the full input's score minus the score with that one unit removed."""
    return float(full_score) - np.asarray(without, dtype=np.float64)


def recency(n_units: int) -> np.ndarray:
    """Position baseline of a decoder: the later a unit, the more important (``[n]``: 0, 1, ..., n-1)."""
    return np.arange(n_units, dtype=np.float64)


def nearness(positions) -> np.ndarray:
    """Position baseline of an encoder: the nearer to [CLS] (position 0), the more important."""
    return -np.asarray(positions, dtype=np.float64)


def centre_nearness(grid: tuple[int, int]) -> np.ndarray:
    """Centre baseline of an image grid, ``[rows * cols]`` row by row: minus each cell's distance to the centre."""
    rows, cols = grid
    r, c = np.mgrid[0:rows, 0:cols]
    return -np.hypot(r + 0.5 - rows / 2, c + 0.5 - cols / 2).ravel()


class MaskScores:
    """The target score of each removal mask, each distinct mask computed once.

    ``scores(masks, compute)`` looks every row of ``masks`` (bool ``[m, n]``, True = removed) up
    and calls ``compute`` (bool ``[m', n]`` -> float ``[m']``) for the rows it has not seen, in
    batches of ``batch`` rows. Every method's curves share the 0 % and 100 % points, leave-one-out
    shares the curves' single-removal points, and the random baseline's insertion shares its
    deletion's masks: the cache makes each a single forward pass. ``seconds`` adds up the time
    spent in ``compute``.
    """

    def __init__(self, n_units: int, batch: int = 64, progress: Callable[[int], None] | None = None):
        self.n = int(n_units)
        self.batch = max(1, int(batch))
        self._known: dict[bytes, float] = {}
        self.seconds = 0.0
        self.computed = 0
        self._progress = progress

    def __contains__(self, mask) -> bool:
        return np.asarray(mask, dtype=bool).tobytes() in self._known

    def missing(self, masks: np.ndarray) -> np.ndarray:
        """The distinct rows of ``masks`` not computed yet, ``[m', n]``."""
        masks = np.asarray(masks, dtype=bool).reshape(-1, self.n)
        seen, rows = set(), []
        for row in masks:
            key = row.tobytes()
            if key not in self._known and key not in seen:
                seen.add(key)
                rows.append(row)
        return np.array(rows, dtype=bool).reshape(-1, self.n)

    def scores(self, masks, compute: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        import time

        masks = np.asarray(masks, dtype=bool)
        flat = masks.reshape(-1, self.n)
        todo = self.missing(flat)
        for start in range(0, len(todo), self.batch):
            block = todo[start : start + self.batch]
            began = time.perf_counter()
            values = np.asarray(compute(block), dtype=np.float64).reshape(-1)
            self.seconds += time.perf_counter() - began
            if values.size != len(block):
                raise RuntimeError(f"compute returned {values.size} scores for {len(block)} masks")
            for row, value in zip(block, values, strict=True):
                self._known[row.tobytes()] = float(value)
            self.computed += len(block)
            if self._progress is not None:
                self._progress(len(block))
        out = np.array([self._known[row.tobytes()] for row in flat], dtype=np.float64)
        return out.reshape(masks.shape[:-1])


def check_settings(steps, random_orders_count, seed) -> None:
    """InputError unless ``steps`` is 2..1000, ``random_orders`` 0..1000 and ``seed`` an integer."""
    for name, value, low in (("steps", steps, 2), ("random_orders", random_orders_count, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= 1000:
            raise InputError(f"{name} must be a whole number from {low} to 1000, not {value!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed must be a whole number, not {seed!r}.")


def chosen_methods(methods, names: tuple[str, ...]) -> list[str]:
    """``methods`` checked against ``names`` (None: all of them), in ``names``' order."""
    if methods is None:
        return list(names)
    if isinstance(methods, str):
        methods = [methods]
    unknown = [m for m in methods if m not in names]
    if unknown:
        raise InputError(f"Unknown method {unknown[0]!r}: choose from {', '.join(map(repr, names))}.")
    return [m for m in names if m in set(methods)]
