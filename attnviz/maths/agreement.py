"""How far two importance scores agree: rank correlation, in numpy only.

Used to compare attention (rollout, last-layer [CLS] attention) with gradient attributions
over the tokens of a sentence, and attention rollout with Grad-CAM over the cells of an
image grid. Spearman's rho is Pearson's correlation of the ranks, ties given their average
rank (as ``scipy.stats.spearmanr`` does); it asks only whether both scores *order* the
items alike, so scores on different scales (attention sums to 1, attributions do not) can
be compared.
"""

from __future__ import annotations

import math

import numpy as np

from attnviz.errors import InputError


def _vectors(a, b) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InputError(f"Scores to compare must have the same number of items: {x.size} and {y.size}.")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise InputError("Scores to compare contain NaN or infinite values.")
    return x, y


def rankdata(x) -> np.ndarray:
    """Ranks 1..n of ``x`` (flattened), tied values sharing the average of their ranks."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="stable")
    sorted_x = x[order]
    # Start of each run of equal values, and the average rank over the run.
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], x.size]
    average = (starts + ends + 1) / 2.0  # ranks are 1-based: mean of starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def pearson(a, b) -> float:
    """Pearson's correlation; NaN when either input is constant (the correlation is undefined)."""
    x, y = _vectors(a, b)
    if x.size < 2:
        raise InputError("A correlation needs at least two items.")
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    if denom == 0:
        return float("nan")
    return float(np.clip((x * y).sum() / denom, -1.0, 1.0))


def spearman(a, b) -> float:
    """Spearman's rank correlation of two equally long scores (any shape; flattened).

    Returns a value in [-1, 1]: 1 when both order the items the same way, -1 when exactly
    reversed, ~0 when unrelated; NaN when either is constant (no order to compare).

    Raises:
        InputError: different lengths, fewer than two items, or NaN/inf values.
    """
    x, y = _vectors(a, b)
    return pearson(rankdata(x), rankdata(y))


def permutation_p_value(a, b, *, n_permutations: int = 2000, seed: int = 0) -> float:
    """Two-sided p-value of Spearman's rho by shuffling: how often a random order agrees as well.

    Exact enough for the 5–50 tokens of a sentence, where the normal approximation is poor;
    seeded, so the same input always gives the same value. NaN when rho is NaN.
    """
    x, y = _vectors(a, b)
    rho = spearman(x, y)
    if math.isnan(rho):
        return float("nan")
    rx, ry = rankdata(x), rankdata(y)
    rng = np.random.default_rng(seed)
    shuffled = np.array([rng.permutation(ry) for _ in range(n_permutations)])  # (P, n)
    rx_c = rx - rx.mean()
    ry_c = shuffled - shuffled.mean(axis=1, keepdims=True)
    denom = np.sqrt((rx_c**2).sum() * (ry_c**2).sum(axis=1))
    rhos = (ry_c @ rx_c) / denom  # (P,)
    hits = int((np.abs(rhos) >= abs(rho) - 1e-12).sum())
    return (hits + 1) / (n_permutations + 1)


#: The one wording rule for a correlation's strength, used across the app: ``|rho|`` below each cut-off
#: gets its word. 0.1, 0.3 and 0.5 are Cohen's (1988, *Statistical Power Analysis for the Behavioral
#: Sciences*, ch. 3) small, medium and large correlations; from 0.7 Dancey & Reidy (2007, *Statistics
#: Without Maths for Psychology*) call a correlation strong, which is "very strong" here. Akoglu (2018,
#: "User's guide to correlation coefficients", Turkish J. Emerg. Med. 18:91) sets these conventions side by side.
STRENGTHS = ((0.1, "no relation"), (0.3, "weak"), (0.5, "moderate"), (0.7, "strong"))
#: In words, for a caption under a table of correlations.
WORDING_RULE = (
    "|ρ| below 0.1: no relation; below 0.3: weak; below 0.5: moderate; below 0.7: strong; from 0.7: very strong "
    "(Cohen's 1988 cut-offs 0.1, 0.3, 0.5, and 0.7 after Dancey & Reidy 2007)"
)


def strength(rho: float) -> str:
    """The word for how strong a correlation is, whatever its sign (:data:`STRENGTHS`): "no relation",
    "weak", "moderate", "strong" or "very strong"; "undefined" for NaN."""
    if math.isnan(rho):
        return "undefined"
    size = abs(rho)
    for limit, word in STRENGTHS:
        if size < limit:
            return word
    return "very strong"


def relation(rho: float) -> str:
    """Strength and direction in a few words: "no relation", "weak agreement", "strong disagreement
    (opposite order)", ... A negative rho is never called agreement, however small: below 0.1 it is
    "no relation", from 0.1 a disagreement."""
    word = strength(rho)
    if word in ("undefined", "no relation"):
        return word
    return f"{word} agreement" if rho > 0 else f"{word} disagreement (opposite order)"


def describe(rho: float, n: int, p_value: float | None = None, what: tuple[str, str] = ("A", "B")) -> str:
    """One plain sentence saying what a rank correlation between two scores means."""
    first, second = what
    if math.isnan(rho):
        return f"No correlation can be computed: {first} or {second} gives every item the same score."
    if strength(rho) == "no relation":
        meaning = f"{first} and {second} order the {n} items with no relation between the two orders"
        text = f"ρ = {rho:+.2f}, no relation: {meaning}."
    else:
        if rho > 0:
            meaning = f"items that {first} ranks high, {second} tends to rank high too"
        else:
            meaning = f"items that {first} ranks high, {second} tends to rank low"
        text = f"ρ = {rho:+.2f}, {relation(rho)}: {meaning}."
    if p_value is not None and not math.isnan(p_value):
        chance = "could easily" if p_value >= 0.05 else "would rarely"
        text += f" A random order of the {n} items {chance} agree this well (p = {p_value:.2f})."
    return text
