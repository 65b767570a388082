"""'Show every dimension' in a third of the page (issue 18, item 5): the worked example's Q, K and V of
the bundled encoder (16 x 32) sit in three columns, about 260 px each on a 1280-pixel screen, where 32
upright labels ran together ("d0d1d2..."); there every k-th label is shown, each at its own column."""

from __future__ import annotations

import numpy as np

from attnviz.figures import steps
from attnviz.maths.toy_presets import dims

TOKENS = ["[CLS]", "the", "animal", "didn", "'", "t", "cross", "the", "street", "because", "it", "was", "too"]


def test_a_third_of_the_page_thins_its_upright_labels():
    m = np.random.default_rng(0).normal(size=(len(TOKENS), 32))
    fig = steps.matrix(m, "Q", row_labels=TOKENS, col_labels=dims(32, "d"), printed_cols=8)
    axis = fig.layout.xaxis
    assert axis.tickangle == -90
    assert len(axis.ticktext) * steps.UPRIGHT_LABEL_PX <= steps.THIRD_PX - 40
    assert list(axis.ticktext) == [f"d{v}" for v in axis.tickvals]  # each label names its own column
    assert axis.tickvals[0] == 0 and len(set(np.diff(axis.tickvals))) == 1


def test_a_full_width_chart_keeps_every_label():
    m = np.random.default_rng(0).normal(size=(len(TOKENS), 32))
    fig = steps.matrix(m, "Q", row_labels=TOKENS, col_labels=dims(32, "d"))
    assert list(fig.layout.xaxis.ticktext) == [f"d{i}" for i in range(32)]


def test_a_toy_matrix_in_a_third_keeps_its_labels_side_by_side():
    fig = steps.matrix(np.eye(2), "Q", row_labels=["a", "b"], col_labels=["q0", "q1"], printed_cols=8)
    assert fig.layout.xaxis.tickangle is None and list(fig.layout.xaxis.ticktext) == ["q0", "q1"]
