"""Is an integrated-gradients result precise enough to read? One threshold for the whole app.

Integrated gradients (Sundararajan et al. 2017) splits the change of a score, ``f(input) -
f(baseline)``, among the input's features; by completeness the attributions add up to that change.
captum's convergence delta is how far the numerical integral misses it. Sundararajan et al.
find that 20 to 300 steps approximate the integral "within 5%", and recommend checking that the
attributions add up to the change and raising the number of steps if not (their section "Computing
Integrated Gradients"): 5 % is the threshold here.
"""

from __future__ import annotations

import math

import numpy as np

from attnviz.errors import InputError

#: The most steps a caller may ask for (each step is a forward and a backward pass).
MAX_STEPS = 4096

#: Above this share of the change explained, the integral is called imprecise (Sundararajan et al.'s 5 %).
MAX_SHARE = 0.05


def integral_error(delta: float, change: float) -> float:
    """``|delta| / |change|``: the convergence delta as a share of the score change it explains.

    0 when both are 0; infinite when only the change is 0 (nothing to explain, yet a miss); NaN
    when the delta is NaN (a method without an integral).
    """
    if math.isnan(delta):
        return float("nan")
    if change == 0:
        return 0.0 if delta == 0 else float("inf")
    return abs(delta) / abs(change)


def integral_warning(share: float, n_steps: int) -> str | None:
    """A warning to show when the integral missed by more than :data:`MAX_SHARE` of the change, else None.

    ``share``: :func:`integral_error` (a text attribution's ``relative_delta``); ``n_steps``: the
    steps it used. NaN (no integral) gets no warning.
    """
    if math.isnan(share) or share <= MAX_SHARE:
        return None
    size = "more than the whole change" if math.isinf(share) or share > 1 else f"{share:.0%} of the change"
    return (
        f"The integral is imprecise: with {n_steps} steps the attributions miss the score change they explain by "
        f"{size} (convergence delta; {MAX_SHARE:.0%} is the most Sundararajan et al. 2017 accept). "
        "Read the attributions with care, or run more steps."
    )


def more_steps(n_steps: int, choices: tuple[int, ...] | list[int]) -> int | None:
    """The next larger step count among ``choices`` (sorted ascending or not), None at the largest."""
    larger = sorted(c for c in choices if c > n_steps)
    return larger[0] if larger else None


def check_steps(n_steps) -> int:
    """``n_steps`` as an int, or InputError unless it is a whole number from 1 to :data:`MAX_STEPS`."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or not 1 <= n_steps <= MAX_STEPS:
        raise InputError(f"ig_steps must be a whole number from 1 to {MAX_STEPS}, not {n_steps!r}.")
    return int(n_steps)
