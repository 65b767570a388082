"""Figures of the worked example: small annotated heatmaps, masked cells, clickable weights."""

from __future__ import annotations

import numpy as np

from attnviz.figures import steps as figs
from attnviz.maths.toy_presets import preset, toy_steps


def test_matrix_figure_is_small_annotated_and_summarised():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 384))
    fig = figs.matrix(x, "X", row_labels=[f"t{i}" for i in range(16)], max_cols=8)
    heat = fig.data[0]
    assert np.asarray(heat.z).shape == (16, 8) and np.asarray(heat.z).dtype == np.float32
    assert heat.texttemplate == "%{z:.2f}"  # numbers drawn by the browser, no text array sent
    assert "first 16 × 8 shown" in fig.layout.title.text
    assert len(fig.to_json()) < 12_000  # most of it is the default template
    whole = figs.matrix(x, "X")
    assert whole.data[0].texttemplate is None, "384 columns: too many to print numbers"
    assert len(whole.layout.xaxis.tickvals) <= figs.MAX_TICKS
    assert len(whole.to_json()) < 60_000  # 6144 float32 cells in base64, ~5.3 bytes each, + template


def test_masked_cells_print_minus_infinity_and_weights_are_clickable():
    steps = toy_steps(preset("A padding token"), 1)
    masked = figs.matrix(steps.masked[0], "M")
    assert np.isnan(np.asarray(masked.data[0].z)[:, 3]).all()
    assert list(masked.data[1].text) == ["−∞"] * 4
    tokens = preset("A padding token").tokens
    w = figs.weights(steps.weights[0], tokens, query=1, key=2)
    layer = w.data[-1]
    assert layer.marker.maxdisplayed == 1 and len(layer.x) == 16
    assert [tuple(c) for c in layer.customdata[:2]] == [(0, 0), (0, 1)]  # (i, j) of each cell
    outlined = [(s.y0 + 0.5, s.x0 + 0.5) for s in w.layout.shapes if s.x1 - s.x0 == 1]
    assert outlined == [(1, 2)]
    big = figs.weights(np.full((100, 100), 0.01), [f"t{i}" for i in range(100)])
    assert len(big.data) == 1, "no click layer past MAX_CLICKABLE tokens"
