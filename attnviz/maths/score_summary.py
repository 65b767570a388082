"""The scoreboard over a corpus: each method's mean ± sd over many inputs' scoreboards, on tables only.

``python -m attnviz.text.scoreboard_cli`` and ``python -m attnviz.image.scoreboard_cli`` score every
method on every input with :func:`attnviz.score_explanations`, stack the per-input tables into one
long table (:func:`stack_tables`) and summarise it here (:func:`summarise_scores`).

Per method, over the inputs where it was scored:

* ``<column>_mean`` and ``<column>_sd`` for ``deletion_auc``, ``insertion_auc``, ``loo_spearman`` and
  ``seconds``: the mean and the sample standard deviation (``ddof=1``) of the per-input values, NaN
  values left out (``loo_spearman`` is NaN for a constant map, and for leave-one-out itself when
  there is nothing to rank). For the random row each per-input value is already the mean over its
  random orders, so its sd is the spread *between inputs*, as for every other row.
* ``beats_random_deletion``: the share of inputs on which the method's deletion area is below the
  random orders' mean on the same input; ``beats_random_insertion`` the share where its insertion
  area is above it. Paired per input, so an easy input does not count for one method and a hard
  one against another.

A row whose name carries a per-input choice, such as the text scoreboard's
``"attention (best layer: 3)"``, is one method whatever layer won: :func:`method_key` drops the
number (``"attention (best layer)"``), and the per-input choice stays in the long table.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from attnviz.errors import InputError

SCORE_COLUMNS = ("deletion_auc", "insertion_auc", "loo_spearman", "seconds")
RANDOM = "random"
_CHOICE = re.compile(r"\(([^():]*?):\s*[^()]*\)$")


def method_key(name: str) -> str:
    """The method a row belongs to: a trailing ``"(label: choice)"`` loses its choice.

    >>> method_key("attention (best layer: 3)")
    'attention (best layer)'
    >>> method_key("rollout")
    'rollout'
    """
    return _CHOICE.sub(r"(\1)", str(name)).strip()


def stack_tables(tables: Sequence[pd.DataFrame], inputs: Sequence[str] | None = None) -> pd.DataFrame:
    """One long table: every row of every per-input table, with ``input`` (its index, or its name)
    and ``method`` made per-input-free by :func:`method_key` (the original name kept in ``row``)."""
    if inputs is not None and len(inputs) != len(tables):
        raise InputError(f"{len(tables)} tables but {len(inputs)} input names.")
    parts = []
    for i, table in enumerate(tables):
        missing = {"method", *SCORE_COLUMNS} - set(table.columns)
        if missing:
            raise InputError(f"Table {i} lacks the column(s) {', '.join(sorted(missing))}.")
        part = table.loc[:, ["method", *SCORE_COLUMNS]].copy()
        part.insert(0, "input", i if inputs is None else inputs[i])
        part.insert(1, "row", part["method"].astype(str))
        part["method"] = part["row"].map(method_key)
        parts.append(part)
    if not parts:
        return pd.DataFrame(columns=["input", "row", "method", *SCORE_COLUMNS])
    return pd.concat(parts, ignore_index=True)


def summarise_scores(long: pd.DataFrame, random_method: str = RANDOM) -> pd.DataFrame:
    """Mean ± sd of each score per method over the inputs of ``long`` (a :func:`stack_tables` table).

    Returns:
        DataFrame, one row per method sorted by ``deletion_auc_mean`` (lowest: best first; ties and
        NaN in first-seen order): ``method``, ``inputs`` (how many inputs scored it), then
        ``<column>_mean``, ``<column>_sd`` for each of :data:`SCORE_COLUMNS`, then
        ``beats_random_deletion`` and ``beats_random_insertion`` (NaN without a random row, and on
        the random row itself).
    """
    missing = {"input", "method", *SCORE_COLUMNS} - set(long.columns)
    if missing:
        raise InputError(f"The scores lack the column(s) {', '.join(sorted(missing))}.")
    random_rows = long[long["method"] == random_method].set_index("input")
    if random_rows.index.has_duplicates:
        raise InputError(f"An input has more than one {random_method!r} row.")
    rows = []
    for method, group in long.groupby("method", sort=False):
        row: dict[str, object] = {"method": method, "inputs": int(group["input"].nunique())}
        for column in SCORE_COLUMNS:
            values = group[column].to_numpy(dtype=np.float64)
            values = values[~np.isnan(values)]
            row[f"{column}_mean"] = float(values.mean()) if values.size else np.nan
            row[f"{column}_sd"] = float(values.std(ddof=1)) if values.size > 1 else np.nan
        for column, better in (("deletion_auc", np.less), ("insertion_auc", np.greater)):
            share = np.nan
            if method != random_method and not random_rows.empty:
                mine = group.set_index("input")[column]
                paired = mine.index.intersection(random_rows.index)
                if len(paired):
                    share = float(np.mean(better(mine.loc[paired].to_numpy(float), random_rows.loc[paired, column])))
            row[f"beats_random_{column.split('_')[0]}"] = share
        rows.append(row)
    columns = ["method", "inputs", *(f"{c}_{s}" for c in SCORE_COLUMNS for s in ("mean", "sd"))]
    columns += ["beats_random_deletion", "beats_random_insertion"]
    summary = pd.DataFrame(rows, columns=columns)
    return summary.sort_values("deletion_auc_mean", kind="stable", na_position="last").reset_index(drop=True)


def _pm(mean: float, sd: float, digits: int) -> str:
    if np.isnan(mean):
        return "–"
    return f"{mean:.{digits}f}" if np.isnan(sd) else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def _share(value: float) -> str:
    return "–" if np.isnan(value) else f"{value:.0%}"


def summary_markdown(summary: pd.DataFrame) -> str:
    """A Markdown table of :func:`summarise_scores`' output: mean ± sd per method, and how often it
    beat random on the same input."""
    lines = [
        "| method | inputs | deletion AUC ↓ | insertion AUC ↑ | LOO Spearman | seconds | beats random (del / ins) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary.itertuples(index=False):
        lines.append(
            f"| {row.method} | {row.inputs} | {_pm(row.deletion_auc_mean, row.deletion_auc_sd, 3)} | "
            f"{_pm(row.insertion_auc_mean, row.insertion_auc_sd, 3)} | "
            f"{_pm(row.loo_spearman_mean, row.loo_spearman_sd, 2)} | {_pm(row.seconds_mean, row.seconds_sd, 3)} | "
            f"{_share(row.beats_random_deletion)} / {_share(row.beats_random_insertion)} |"
        )
    return "\n".join(lines)
