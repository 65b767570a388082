"""Layout details that a projector shows up (issue 18, item 5): labels that stay apart and uncut."""

from __future__ import annotations

import numpy as np

from attnviz import figures, text_attention
from attnviz.figures import steps
from attnviz.maths.toy_presets import dims
from attnviz.text.views import make_view


def test_every_dimension_labels_stand_upright_when_they_would_run_together():
    rng = np.random.default_rng(0)
    tokens = [f"tok{i}" for i in range(16)]
    wide = steps.matrix(rng.normal(size=(16, 384)), "X", row_labels=tokens, col_labels=dims(384, "d"))
    axis = wide.layout.xaxis
    assert axis.tickangle == -90 and axis.automargin
    assert len(axis.ticktext) <= steps.MAX_TICKS
    small = steps.matrix(rng.normal(size=(4, 4)), "X", row_labels=tokens[:4], col_labels=dims(4, "d"))
    assert small.layout.xaxis.tickangle is None  # a few labels stay side by side


def test_head_lines_never_cut_the_first_or_last_token(tiny_model):
    ta = text_attention(tiny_model, "The cat sat on the mat.", text_pair="Where did it sit?")
    fig = figures.head_lines(make_view(ta, block="A→B"), 0, [0, 1])
    texts = [t for t in fig.data if t.mode == "text"]
    assert len(texts) == 2 and all(t.cliponaxis is False for t in texts)


def test_every_head_of_a_layer_is_labelled(tiny_model):
    ta = text_attention(tiny_model, "The cat sat on the mat.")
    view = make_view(ta)
    fig = figures.layer_heads(view, 0, n_cols=2)
    texts = [a.text for a in fig.layout.annotations]
    assert texts == [f"head {h}" for h in range(view.n_heads)]
    # each title sits just above its tile, and the hover points sit on the tiles
    points = next(t for t in fig.data if t.type == "scatter")
    for a, y in zip(fig.layout.annotations, points.y, strict=True):
        assert a.y < y and a.yanchor == "bottom"
