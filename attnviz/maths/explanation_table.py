"""The scoreboard of explanations for one input: the result container and how its table is made.

:class:`ExplanationScores` is what :func:`attnviz.score_explanations` returns for a text (encoder
or decoder) or an image. It holds only numpy arrays, a pandas table and plain values, so it
pickles, caches and crosses threads. :func:`assemble` builds it from the raw target scores of
each method's curve points (the model wings compute those), the random orders' curves and the
leave-one-out importance; everything here is arithmetic on arrays.

Columns of the table, one row per method, sorted by ``deletion_auc`` (best first):

* ``deletion_auc``: area under the normalised deletion curve (lower: the score falls sooner);
* ``insertion_auc``: area under the normalised insertion curve (higher: it comes back sooner);
* ``loo_spearman``: Spearman's rho between the method's importance and leave-one-out importance
  (the full score minus the score with that one unit removed); for the random row, the mean over
  its orders;
* ``seconds``: the time the method took: its importance map, plus its share of the forward passes
  of the curves (a pass that several methods need is split evenly between them);
* ``deletion_sd`` / ``insertion_sd``: the random row's standard deviation over its orders (NaN on
  every other row).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnviz.maths.agreement import spearman
from attnviz.maths.deletion_curves import auc
from attnviz.maths.integral_check import integral_error, integral_warning

RANDOM = "random"
COLUMNS = ("method", "deletion_auc", "insertion_auc", "loo_spearman", "seconds", "deletion_sd", "insertion_sd")
FAMILIES = ("encoder", "decoder", "image")


@dataclass(frozen=True, eq=False)
class ExplanationScores:
    """How faithful each explanation is on one input: deletion and insertion curves and their areas.

    Attributes:
        table: pandas DataFrame, one row per method, sorted by ``deletion_auc`` ascending; columns
            ``method, deletion_auc, insertion_auc, loo_spearman, seconds, deletion_sd, insertion_sd``
            (module docstring).
        fractions: float64 ``[steps + 1]``, 0..1: the fraction of units removed (deletion) or put
            back (insertion) at each curve point.
        deletion, insertion: method -> float64 ``[steps + 1]``, the target score divided by the full
            input's score (deletion starts at exactly 1; insertion ends at exactly 1). The random
            row's curve is the mean over its orders.
        random_band: ``{"deletion": (mean, sd), "insertion": (mean, sd)}``, arrays ``[steps + 1]`` over
            the random orders (empty dict when ``random_orders`` was 0 or random was not asked for).
        full_score, removed_score: the raw target score of the full input and of the input with every
            unit removed.
        target: what the target score is, in words.
        removal: how a unit is removed, and why this way.
        units: labels of the removable units (tokens, or ``"cell (r, c)"``).
        importance: method -> float64 ``[n_units]``, the scores each method ranks the units by (higher:
            removed earlier in deletion). The random row has none (its orders are drawn per curve).
        notes: remarks on this run (methods skipped and why, the best layer picked on this input...).
        model_name, family: the model, and ``"encoder"``, ``"decoder"`` or ``"image"``.
        steps, random_orders, seed: the settings used.
        best_layer: the layer of the "attention (best layer: L)" row (text), else None.
        ig_steps, ig_delta: integrated gradients' steps and captum's convergence delta (how far the
            row's scores miss ``full_score - removed_score``); None and NaN when IG was not scored.
            :attr:`ig_error` and :meth:`ig_warning` read them with the app's one rule
            (:mod:`attnviz.maths.integral_check`).
    """

    table: pd.DataFrame
    fractions: np.ndarray
    deletion: dict[str, np.ndarray]
    insertion: dict[str, np.ndarray]
    random_band: dict[str, tuple[np.ndarray, np.ndarray]]
    full_score: float
    removed_score: float
    target: str
    removal: str
    units: list[str]
    importance: dict[str, np.ndarray]
    notes: list[str]
    model_name: str
    family: str
    steps: int = 20
    random_orders: int = 20
    seed: int = 0
    best_layer: int | None = None
    ig_steps: int | None = None
    ig_delta: float = float("nan")

    @property
    def ig_error(self) -> float:
        """The convergence delta as a share of the change IG explains (NaN when IG was not scored)."""
        return integral_error(self.ig_delta, self.full_score - self.removed_score)

    def ig_warning(self) -> str | None:
        """The app's warning when IG's integral misses by more than 5 % of that change, else None."""
        return None if self.ig_steps is None else integral_warning(self.ig_error, self.ig_steps)

    @property
    def methods(self) -> list[str]:
        """The methods in the table's order (best deletion area first)."""
        return list(self.table["method"])

    def beats_random(self) -> pd.DataFrame:
        """The rows whose deletion area lies below random's mean by more than random's sd, with by how much."""
        if RANDOM not in set(self.table["method"]):
            return self.table.iloc[0:0].assign(margin=[])
        random_row = self.table.set_index("method").loc[RANDOM]
        bar = random_row["deletion_auc"] - (0.0 if math.isnan(random_row["deletion_sd"]) else random_row["deletion_sd"])
        rows = self.table[(self.table["method"] != RANDOM) & (self.table["deletion_auc"] < bar)]
        return rows.assign(margin=random_row["deletion_auc"] - rows["deletion_auc"])

    def summary(self) -> str:
        """One plain sentence: which maps beat random on deletion on this input, and by how much."""
        others = [m for m in self.table["method"] if m != RANDOM]
        if RANDOM not in set(self.table["method"]):
            if not others:
                return "No method was scored."
            best = self.table.iloc[0]
            return (
                f"Without a random baseline nothing can be said to beat chance; the lowest deletion area is "
                f"{best['method']}'s ({best['deletion_auc']:.2f} of the full score)."
            )
        random_row = self.table.set_index("method").loc[RANDOM]
        mean, sd = random_row["deletion_auc"], random_row["deletion_sd"]
        band = f"{mean:.2f}" if math.isnan(sd) else f"{mean:.2f} ± {sd:.2f}"
        winners = self.beats_random()
        if winners.empty:
            return (
                f"On this input no map beats random on deletion (random order's area {band}): removing tokens in "
                "any map's order lowers the score no faster than removing them at random."
                if self.family != "image"
                else f"On this input no map beats random on deletion (random order's area {band}): removing cells in "
                "any map's order lowers the score no faster than removing them at random."
            )
        parts = [f"{row.method} by {row.margin:.2f}" for row in winners.itertuples()]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return (
            f"On this input {len(parts)} of {len(others)} maps beat random on deletion (area below random's "
            f"{band} by more than its sd): {listed}."
        )


def _normalise(raw: np.ndarray, full_score: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(raw, dtype=np.float64) / (full_score if full_score != 0 else np.nan)


def _rho(importance: np.ndarray, loo: np.ndarray) -> float:
    if importance.size < 2 or not (np.isfinite(importance).all() and np.isfinite(loo).all()):
        return float("nan")
    return spearman(importance, loo)


def assemble(
    *,
    fractions: np.ndarray,
    importance: dict[str, np.ndarray],
    deletion_raw: dict[str, np.ndarray],
    insertion_raw: dict[str, np.ndarray],
    seconds: dict[str, float],
    loo: np.ndarray,
    random_deletion_raw: np.ndarray | None,
    random_insertion_raw: np.ndarray | None,
    random_importance: np.ndarray | None,
    random_seconds: float,
    full_score: float,
    removed_score: float,
    target: str,
    removal: str,
    units: list[str],
    notes: list[str],
    model_name: str,
    family: str,
    steps: int,
    random_orders: int,
    seed: int,
    best_layer: int | None = None,
    ig_steps: int | None = None,
    ig_delta: float = float("nan"),
) -> ExplanationScores:
    """Build :class:`ExplanationScores` from raw target scores.

    Args:
        fractions: ``[S]`` the curve's fractions (``S = steps + 1``).
        importance: method -> ``[n]``, in the order the rows should be listed before sorting.
        deletion_raw, insertion_raw: method -> ``[S]`` raw target scores along its curves.
        seconds: method -> seconds (importance and its share of the forward passes).
        loo: ``[n]`` leave-one-out importance (full score minus score without the unit).
        random_deletion_raw, random_insertion_raw: ``[R, S]`` raw scores of each random order, or None.
        random_importance: ``[R, n]`` the importance each random order stands for (for rho), or None.
        ig_steps, ig_delta: integrated gradients' steps and convergence delta, when it was scored.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    rows, deletion, insertion = [], {}, {}
    for method, imp in importance.items():
        d = _normalise(deletion_raw[method], full_score)
        i = _normalise(insertion_raw[method], full_score)
        deletion[method], insertion[method] = d, i
        rows.append(
            (
                method,
                auc(d, fractions),
                auc(i, fractions),
                _rho(imp, loo),
                float(seconds.get(method, 0.0)),
                np.nan,
                np.nan,
            )
        )
    band: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if random_deletion_raw is not None and len(random_deletion_raw):
        d = _normalise(random_deletion_raw, full_score)  # (R, S)
        i = _normalise(random_insertion_raw, full_score)
        d_auc = np.array([auc(c, fractions) for c in d])
        i_auc = np.array([auc(c, fractions) for c in i])
        rhos = [_rho(imp, loo) for imp in random_importance]
        rho = float(np.mean(rhos)) if rhos and not np.isnan(rhos).all() else float("nan")
        band = {"deletion": (d.mean(axis=0), d.std(axis=0)), "insertion": (i.mean(axis=0), i.std(axis=0))}
        deletion[RANDOM], insertion[RANDOM] = band["deletion"][0], band["insertion"][0]
        rows.append(
            (
                RANDOM,
                float(d_auc.mean()),
                float(i_auc.mean()),
                rho,
                float(random_seconds),
                float(d_auc.std()),
                float(i_auc.std()),
            )
        )
    notes = list(notes)
    if band:
        notes.append(
            "The random row's insertion curves are its deletion curves read backwards (insertion with each order "
            "reversed, itself a random order, needs no pass of its own), so its two areas are equal by construction."
        )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table = table.sort_values("deletion_auc", kind="stable", na_position="last").reset_index(drop=True)
    return ExplanationScores(
        table=table,
        fractions=np.asarray(fractions, dtype=np.float64),
        deletion=deletion,
        insertion=insertion,
        random_band=band,
        full_score=float(full_score),
        removed_score=float(removed_score),
        target=target,
        removal=removal,
        units=list(units),
        importance={k: np.asarray(v, dtype=np.float64) for k, v in importance.items()},
        notes=notes,
        model_name=model_name,
        family=family,
        steps=int(steps),
        random_orders=int(random_orders),
        seed=int(seed),
        best_layer=best_layer,
        ig_steps=None if ig_steps is None else int(ig_steps),
        ig_delta=float(ig_delta),
    )
