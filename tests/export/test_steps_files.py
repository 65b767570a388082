"""The worked example's files: every intermediate of a head as NPZ, a matrix as CSV."""

from __future__ import annotations

import csv
import io

import numpy as np

from attnviz.export.steps_files import matrix_csv, steps_npz
from attnviz.maths.qkv import attention_steps


def test_files_hold_every_step():
    steps = attention_steps([[1, 0], [1, 1]], np.eye(2), np.eye(2), [[1, 2], [3, 4]])
    data = np.load(io.BytesIO(steps_npz(steps.head(0), ["a", "b"], model="toy")))
    np.testing.assert_array_equal(data["weights"], steps.weights[0])
    assert data["tokens"].tolist() == ["a", "b"] and str(data["model"]) == "toy"
    text = matrix_csv(steps.masked[0], ["a", "b"], ["a", "b"]).decode()
    assert text.splitlines()[0] == ",a,b" and text.splitlines()[2].startswith("b,0.7071")


def test_matrix_csv_neutralises_formula_labels_but_keeps_numbers_numbers():
    """Labels are text (a token could be ``=HYPERLINK(...)``); "-0.5" and "-inf" are numbers and stay so."""
    m = np.array([[-0.5, -np.inf], [1.25, -np.inf]])
    rows = list(csv.reader(io.StringIO(matrix_csv(m, ["=1+1", "@me"], ["-x", "+y"]).decode(), newline="")))
    assert rows == [["", "'-x", "'+y"], ["'=1+1", "-0.5", "-inf"], ["'@me", "1.25", "-inf"]]
