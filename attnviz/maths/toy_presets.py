"""Toy inputs for the worked example: presets, and the editable tables they are shown in.

A toy input is a few tokens (2-6) with small vectors (``d_model`` 2-8) and square projection
matrices, so that every number fits in a cell. The page edits them as tables
(``pandas.DataFrame``); :func:`from_tables` turns edited tables back into arrays and says
exactly which cell to fix when one is empty or not a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attnviz.errors import InputError
from attnviz.maths.qkv import AttentionSteps, attention_steps

MIN_TOKENS, MAX_TOKENS = 2, 6
MIN_DIM, MAX_DIM = 2, 8
BIAS_ROWS = ("b_Q", "b_K", "b_V")


@dataclass(frozen=True)
class ToyInputs:
    """Tokens ``(n,)``, ``x (n, d)``, ``padding`` bool ``(n,)``, ``w_q/w_k/w_v/w_o (d, d)``, biases ``(d,)``."""

    tokens: list[str]
    x: np.ndarray
    padding: np.ndarray
    w_q: np.ndarray
    w_k: np.ndarray
    w_v: np.ndarray
    b_q: np.ndarray
    b_k: np.ndarray
    b_v: np.ndarray
    w_o: np.ndarray

    @property
    def d_model(self) -> int:
        return int(self.x.shape[1])


def toy_steps(inputs: ToyInputs, n_heads: int) -> AttentionSteps:
    """The worked example's maths for toy inputs (padding tokens are masked as keys)."""
    if n_heads > 1 and inputs.d_model % n_heads:
        raise InputError(
            f"{n_heads} heads need a vector size divisible by {n_heads}, but the vectors have {inputs.d_model} "
            f"numbers: pick 1 head, or a random preset with an even size."
        )
    return attention_steps(
        inputs.x,
        inputs.w_q,
        inputs.w_k,
        inputs.w_v,
        b_q=inputs.b_q,
        b_k=inputs.b_k,
        b_v=inputs.b_v,
        n_heads=n_heads,
        mask=~inputs.padding,
        w_o=inputs.w_o,
    )


# ---------------------------------------------------------------- presets


def _rounded(rng: np.random.Generator, shape, scale: float = 1.0) -> np.ndarray:
    # One decimal: numbers a student can multiply in their head, and that fit a cell.
    return np.round(rng.normal(scale=scale, size=shape), 1)


def _make(tokens, x, padding=None, w_q=None, w_k=None, w_v=None, w_o=None, seed: int = 0) -> ToyInputs:
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    w = {name: (np.asarray(v, dtype=np.float64) if v is not None else _rounded(rng, (d, d), 0.7))
         for name, v in (("q", w_q), ("k", w_k), ("v", w_v), ("o", w_o))}  # fmt: skip
    zeros = np.zeros(d)
    pad = np.zeros(len(tokens), dtype=bool) if padding is None else np.asarray(padding, dtype=bool)
    return ToyInputs(list(tokens), x, pad, w["q"], w["k"], w["v"], zeros, zeros, zeros, w["o"])


def two_by_hand(**_) -> ToyInputs:
    """The example of tests/maths/test_qkv.py::test_two_tokens_by_hand: small enough to check with a pencil."""
    eye = np.eye(2)
    return _make(["a", "b"], [[1, 0], [1, 1]], w_q=eye, w_k=eye, w_v=[[1, 2], [3, 4]], w_o=eye)


def look_alike(**_) -> ToyInputs:
    """'cat' and 'kitten' have nearly the same vector, so they get nearly the same rows and columns."""
    x = [[0.1, 0.9, 0.0, 0.2], [1.0, 0.2, 0.8, 0.0], [0.9, 0.3, 0.8, 0.1], [0.0, 0.1, 0.3, 1.0]]
    # W_Q = W_K = I: the score of two tokens is the dot product of their own vectors.
    return _make(["the", "cat", "kitten", "sat"], x, w_q=np.eye(4), w_k=np.eye(4), seed=4)


def padding_token(**_) -> ToyInputs:
    """A batch pads short sentences; the padding token must get no attention."""
    x = [[0.5, -0.2, 0.3, 0.8], [0.9, 0.4, -0.5, 0.1], [-0.3, 0.8, 0.6, -0.4], [0.0, 0.0, 0.0, 0.0]]
    return _make(["I", "like", "tea", "[PAD]"], x, padding=[False, False, False, True], seed=2)


def random_seeded(*, seed: int = 0, n_tokens: int = 4, d_model: int = 4) -> ToyInputs:
    if not (MIN_TOKENS <= n_tokens <= MAX_TOKENS and MIN_DIM <= d_model <= MAX_DIM):
        raise InputError(
            f"Random inputs take {MIN_TOKENS}-{MAX_TOKENS} tokens and vectors of {MIN_DIM}-{MAX_DIM} numbers."
        )
    rng = np.random.default_rng(seed)
    x = _rounded(rng, (n_tokens, d_model))
    return _make([f"t{i}" for i in range(n_tokens)], x, seed=seed + 1)


RANDOM = "Random, seed N"
PRESETS: dict[str, Callable[..., ToyInputs]] = {
    "Two tokens, worked by hand": two_by_hand,
    "Two tokens that look alike": look_alike,
    "A padding token": padding_token,
    RANDOM: random_seeded,
}


def preset(name: str, **options) -> ToyInputs:
    if name not in PRESETS:
        raise InputError(f"Unknown preset {name!r}: choose one of {', '.join(PRESETS)}.")
    return PRESETS[name](**options)


# ---------------------------------------------------------------- tables


def dims(d: int, prefix: str) -> list[str]:
    return [f"{prefix}{i}" for i in range(d)]


def to_tables(inputs: ToyInputs) -> dict[str, pd.DataFrame]:
    """The editable tables: X with token and padding columns, W_Q/W_K/W_V/W_O, one table of biases."""
    d = inputs.d_model
    x = pd.DataFrame(inputs.x, columns=dims(d, "x"))
    x.insert(0, "padding", inputs.padding.astype(bool))
    x.insert(0, "token", list(inputs.tokens))

    def square(w: np.ndarray, out: str) -> pd.DataFrame:
        return pd.DataFrame(w, index=dims(d, "x" if out != "o" else "c"), columns=dims(d, out))

    biases = pd.DataFrame([inputs.b_q, inputs.b_k, inputs.b_v], index=list(BIAS_ROWS), columns=dims(d, ""))
    return {
        "X": x,
        "W_Q": square(inputs.w_q, "q"),
        "W_K": square(inputs.w_k, "k"),
        "W_V": square(inputs.w_v, "v"),
        "biases": biases,
        "W_O": square(inputs.w_o, "o"),
    }


def _number(value, table: str, row, column) -> float:
    where = f"{table}, row {row}, column {column}"
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        raise InputError(f"{where} is empty: type a number there.")
    try:
        number = float(str(value).strip()) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        hint = " (use a dot for decimals)" if isinstance(value, str) and "," in value else ""
        raise InputError(f"{where} holds {str(value)[:20]!r}, which is not a number: type a number{hint}.") from None
    if not math.isfinite(number) or abs(number) > 1e6:
        raise InputError(f"{where} holds {number!r}: use a finite number between -1e6 and 1e6.")
    return number


def table_numbers(df: pd.DataFrame, table: str, columns: list | None = None) -> np.ndarray:
    """The numeric cells of ``df`` (all columns, or ``columns``) as float64 ``(rows, columns)``."""
    columns = list(df.columns) if columns is None else columns
    if df.shape[0] == 0 or not columns:
        raise InputError(f"{table} is empty: add at least one row.")
    out = np.empty((df.shape[0], len(columns)))
    for r, (label, row) in enumerate(df[columns].iterrows()):
        for c, column in enumerate(columns):
            out[r, c] = _number(row[column], table, label, column)
    return out


def from_tables(tables: dict[str, pd.DataFrame]) -> ToyInputs:
    """Arrays from the (edited) tables of :func:`to_tables`.

    Raises:
        InputError: an empty or non-numeric cell (the message names the table, row and column),
            too few or too many tokens, or matrices whose sizes do not match X.
    """
    x_table = tables["X"]
    n = x_table.shape[0]
    if not MIN_TOKENS <= n <= MAX_TOKENS:
        raise InputError(f"X has {n} tokens: use {MIN_TOKENS} to {MAX_TOKENS} (add or delete rows).")
    value_columns = [c for c in x_table.columns if c not in ("token", "padding")]
    x = table_numbers(x_table.reset_index(drop=True), "X", value_columns)
    d = x.shape[1]
    tokens = []
    for i, name in enumerate(x_table.get("token", pd.Series([None] * n))):
        text = "" if name is None or (isinstance(name, float) and math.isnan(name)) else str(name).strip()
        tokens.append(text[:12] or f"t{i}")  # an unnamed row still needs a label
    padding = np.array(
        [bool(p) if p is not None and not (isinstance(p, float) and math.isnan(p)) else False
         for p in x_table.get("padding", pd.Series([False] * n))]
    )  # fmt: skip
    if padding.all():
        raise InputError("Every token is marked as padding: untick “padding” for at least one token.")
    mats = {}
    for name in ("W_Q", "W_K", "W_V", "W_O"):
        m = table_numbers(tables[name], name)
        if m.shape != (d, d):
            raise InputError(f"{name} is {m.shape[0]} × {m.shape[1]} but X has {d} columns: {name} must be {d} × {d}.")
        mats[name] = m
    b = table_numbers(tables["biases"], "biases")
    if b.shape != (3, d):
        raise InputError(f"The biases table must have 3 rows (b_Q, b_K, b_V) of {d} numbers, not {b.shape}.")
    return ToyInputs(tokens, x, padding, mats["W_Q"], mats["W_K"], mats["W_V"], b[0], b[1], b[2], mats["W_O"])
