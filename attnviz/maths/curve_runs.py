"""Every curve of a scoreboard from one pool of forward passes, and each method's share of their time.

The model wings give :func:`run_curves` the importance of each method and a ``compute`` function
(removal masks ``[m, n]`` -> target scores ``[m]``, one batched forward pass); this module asks for
every mask that any curve needs, each distinct mask once (:class:`~attnviz.maths.deletion_curves.MaskScores`),
and returns the raw curves. Nothing here knows about models.

Seconds. A method's time is its importance map's time plus its share of the forward passes: each
distinct mask costs the average time of a computed mask, split evenly between the methods whose
curves use it (every method shares the 0 % and 100 % points; leave-one-out shares the single
removals).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attnviz.maths.deletion_curves import (
    MaskScores,
    deletion_masks,
    insertion_masks,
    order_importance,
    order_of,
    random_orders,
)


@dataclass(frozen=True)
class CurveRuns:
    """Raw target scores along the curves (``[steps + 1]`` per method) and the time shares."""

    deletion: dict[str, np.ndarray]
    insertion: dict[str, np.ndarray]
    seconds: dict[str, float]
    random_deletion: np.ndarray | None  # (R, S)
    random_insertion: np.ndarray | None  # (R, S)
    random_importance: np.ndarray | None  # (R, n)
    random_seconds: float


def run_curves(
    cache: MaskScores,
    compute: Callable[[np.ndarray], np.ndarray],
    *,
    importance: dict[str, np.ndarray],
    steps: int,
    random_count: int,
    seed: int,
    extra_masks: dict[str, np.ndarray] | None = None,
    importance_seconds: dict[str, float] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[CurveRuns, dict[str, np.ndarray]]:
    """Evaluate the deletion and insertion curves of every method and the random orders.

    Args:
        importance: method -> ``[n]`` (random excluded).
        extra_masks: method -> ``[m, n]`` masks it computed beforehand (leave-one-out's single
            removals): counted in its share of the time.
        importance_seconds: method -> seconds its importance map took.
        on_total: called once, before any pass, with the number of masks still to compute.

    Returns:
        (:class:`CurveRuns`, the importance of every row).
    """
    n = cache.n
    used: dict[str, list[np.ndarray]] = {m: [] for m in importance}
    del_masks = {m: deletion_masks(order_of(v), steps) for m, v in importance.items()}
    ins_masks = {m: insertion_masks(order_of(v), steps) for m, v in importance.items()}
    pending = [*del_masks.values(), *ins_masks.values()]
    orders = random_orders(n, random_count, seed)  # (R, n)
    random_del = np.stack([deletion_masks(o, steps) for o in orders]) if random_count else None  # (R, S, n)
    if random_count:
        pending.append(random_del.reshape(-1, n))
    everything = np.concatenate([p.reshape(-1, n) for p in pending]) if pending else np.zeros((0, n), bool)
    if on_total is not None:
        on_total(len(cache.missing(everything)))
    cache.scores(everything, compute)

    deletion = {m: cache.scores(del_masks[m], compute) for m in importance}
    insertion = {m: cache.scores(ins_masks[m], compute) for m in importance}
    for m in importance:
        used[m] += [del_masks[m], ins_masks[m]]
    rows = dict(importance)
    for m, masks in (extra_masks or {}).items():
        used.setdefault(m, []).append(np.asarray(masks, dtype=bool).reshape(-1, n))
    r_del = r_ins = r_imp = None
    if random_count:
        r_del = cache.scores(random_del, compute)  # (R, S)
        # Insertion with the reversed order o[::-1] (just as random) puts back o's last units first:
        # its masks are deletion's with o, read backwards, so it needs no forward pass of its own.
        r_ins = r_del[:, ::-1].copy()
        r_imp = np.stack([order_importance(o) for o in orders])
        used["random"] = [random_del.reshape(-1, n)]

    # Each distinct mask's average cost, split evenly between the rows that use it.
    per_mask = cache.seconds / cache.computed if cache.computed else 0.0
    keys = {m: {row.tobytes() for masks in lists for row in masks.reshape(-1, n)} for m, lists in used.items()}
    users = Counter(k for ks in keys.values() for k in ks)
    seconds = {m: sum(per_mask / users[k] for k in ks) for m, ks in keys.items()}
    for m, s in (importance_seconds or {}).items():
        seconds[m] = seconds.get(m, 0.0) + s
    random_seconds = seconds.pop("random", 0.0)
    runs = CurveRuns(deletion, insertion, seconds, r_del, r_ins, r_imp, random_seconds)
    return runs, rows


class Progress:
    """``callback(done, total, what)`` as work advances; ``total`` may shrink once it is known exactly."""

    def __init__(self, callback: Callable[[int, int, str], None] | None, total: int):
        self.callback, self.done, self.total = callback, 0, max(1, int(total))

    def step(self, what: str, k: int = 1) -> None:
        self.done += int(k)
        self.total = max(self.total, self.done)
        if self.callback is not None:
            self.callback(self.done, self.total, what)

    def expect(self, remaining: int) -> None:
        """From now on ``remaining`` more steps."""
        self.total = max(1, self.done + int(remaining))

    def finish(self) -> None:
        self.total = self.done = max(self.done, 1)
        if self.callback is not None:
            self.callback(self.done, self.total, "done")
