"""Where a colour scale should end, and when a map's colours would overstate it: numpy only.

Two ways a map's colours mislead:

- **A few large values wash out the rest.** Attention rollout over 350 tokens puts a share of
  0.29 on a few cells and 0.002–0.007 on the others: coloured 0 to its largest value (or 0 to 1),
  the map is blank but for a few dots. :func:`colour_top` ends the scale at a high percentile
  instead, and says so.
- **A nearly uniform map looks strong.** Coloured from 0 to its largest value, a map spanning
  0–0.020 over 64 cells, where uniform is 1/64 = 0.016, is painted fully in the top colours.
  :func:`near_uniform_note` says so in numbers.
"""

from __future__ import annotations

import numpy as np

#: The percentile that ends a robust colour scale.
PERCENTILE = 99.0
#: The scale ends at the percentile when the largest value is more than this many times it.
OUTLIER_RATIO = 4.0
#: A map whose largest value is below this many times uniform is called nearly uniform.
NEAR_UNIFORM = 2.0


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def colour_top(values, *, percentile: float = PERCENTILE, outlier_ratio: float = OUTLIER_RATIO) -> tuple[float, str]:
    """The top of a colour scale that starts at 0, and the words that say how it was chosen.

    The largest value, unless it is more than ``outlier_ratio`` times the ``percentile``-th
    percentile: then the percentile, and every value above it is drawn in the top colour. Always > 0.
    """
    v = _finite(values)
    if v.size == 0 or v.max() <= 0:
        return 1.0, "0 to 1 (nothing above 0)"
    top = float(v.max())
    cut = float(np.percentile(v, percentile))
    if cut > 0 and top > outlier_ratio * cut:
        share = 100.0 - percentile
        return cut, (
            f"0 to {cut:.3g}, the {percentile:g}th percentile: the largest {share:g}% of cells (up to {top:.3g}) "
            "are drawn in the top colour"
        )
    return top, f"0 to the largest value, {top:.3g}"


def near_uniform_note(values, *, ratio: float = NEAR_UNIFORM) -> str | None:
    """A sentence saying in numbers that a map is nearly uniform, or None when it is not.

    Uniform is the map's total spread evenly over its cells (1/n for a map that sums to 1); the map is
    nearly uniform when its largest value is below ``ratio`` times that. NaN cells are left out.
    """
    v = _finite(values)
    if v.size < 2:
        return None
    mean = float(v.mean())
    if mean <= 0:
        return None
    top, low = float(v.max()) / mean, float(v.min()) / mean
    if top >= ratio:
        return None
    uniform = (
        f"1/{v.size} = {mean:.3g}"
        if abs(float(v.sum()) - 1.0) < 1e-3
        else f"its total spread evenly over the {v.size} cells, {mean:.3g}"
    )
    return (
        f"Nearly uniform: the largest value, {v.max():.3g}, is {top:.1f}x uniform ({uniform}), and the smallest, "
        f"{v.min():.3g}, is {low:.1f}x."
    )
