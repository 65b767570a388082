"""Figures of the worked example: small annotated heatmaps, masked cells, clickable weights."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

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


def test_weights_of_a_decoder_grey_the_keys_a_query_cannot_see():
    w = np.tril(np.full((4, 4), 0.25))
    visible = np.tril(np.ones((4, 4), dtype=bool))
    fig = figs.weights(w, list("abcd"), query=2, key=1, visible=visible)
    z = np.asarray(fig.data[0].z)
    assert np.isnan(z[0, 1:]).all() and not np.isnan(z[visible]).any()
    assert fig.layout.plot_bgcolor == figs.NOT_VISIBLE
    assert len(fig.data) == 2 and len(fig.data[1].x) == 10, "no click point on a key the query cannot see"
    assert not any(t.mode == "text" for t in fig.data if t.type == "scatter"), "no −∞ printed in the weights"


def test_rope_figures():
    from attnviz.maths.rotary import rope_step

    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(2, 6, 8))
    step = rope_step(q, k, 10_000.0)
    angles = figs.rope_angles(step.angles, list("abcdef"), step.inv_freq, rows_highlighted=(3,))
    np.testing.assert_allclose(np.asarray(angles.data[0].z), np.mod(step.angles, 2 * np.pi), atol=1e-6)
    assert angles.data[0].zmin == 0 and angles.data[0].zmax == pytest.approx(2 * np.pi)
    pairs = figs.rope_pairs([("q_3", step.q_before[3], step.q[3], step.angles[3])], [0, 3])
    before, after = pairs.data[1], pairs.data[2]  # the arc, then the two arrows of pair 0
    assert (before.x[1], before.y[1]) == pytest.approx((q[3, 0], q[3, 4]))
    assert (after.x[1], after.y[1]) == pytest.approx((step.q[3, 0], step.q[3, 4]))
    assert "3.00 rad" in pairs.layout.annotations[0].text  # the title gives m·θ_0 = 3 · 1
    assert len(pairs.to_json()) < 30_000


def test_unvalidated_step_figures_send_what_validation_would():
    """The figures are built without plotly.py's validation (a quarter of a head change's server time).

    Validating what they send must change nothing: a bare colour-scale name, for one, would be
    turned into plotly.py's stops by validation but read by plotly.js its own way.
    """
    steps = toy_steps(preset("A padding token"), 1)
    tokens = preset("A padding token").tokens
    n = len(tokens)
    built = {
        "matrix": figs.matrix(steps.masked[0], "M", row_labels=tokens, col_labels=tokens, rows_highlighted=(1,),
                              cell=(1, 2)),
        "unsigned matrix": figs.matrix(steps.weights[0], "A", signed=False, zmax=1.0),
        "followed rows": figs.matrix(steps.masked[0], "M", rows_highlighted=(1,), numbers="followed"),
        "weights": figs.weights(steps.weights[0], tokens, query=1, key=2, visible=np.tril(np.ones((n, n), bool))),
        "softmax scales": figs.softmax_scales({"model": steps.weights[0][1], "÷ 1": steps.weights[0][2]}, tokens),
        "rope angles": figs.rope_angles(np.outer(np.arange(n), [1.0, 0.1]), tokens, np.array([1.0, 0.1]),
                                        rows_highlighted=(2,)),
    }  # fmt: skip
    for name, fig in built.items():
        sent = json.loads(pio.to_json(fig, validate=False))
        validated = json.loads(pio.to_json(go.Figure(sent), validate=False))
        assert validated == sent, name
        scales = [t["colorscale"] for t in sent["data"] if "colorscale" in t]
        assert all(isinstance(s, list) for s in scales), (name, scales)


def test_followed_numbers_print_only_the_outlined_rows():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(6, 5))
    m[2, 4] = -np.inf  # a masked key in the followed row: "−∞", not a number
    every = figs.matrix(m, "S", rows_highlighted=(2,), cell=(2, 1))
    assert every.data[0].texttemplate == "%{z:.2f}"
    followed = figs.matrix(m, "S", rows_highlighted=(4,), cell=(2, 1), numbers="followed")
    heat, numbers = followed.data
    assert heat.texttemplate is None and heat.hoverinfo is None  # every cell still tells its value on hover
    printed = {(int(y), int(x)): t for x, y, t in zip(numbers.x, numbers.y, numbers.text, strict=True)}
    expected = {(i, j): f"{m[i, j]:.2f}" if np.isfinite(m[i, j]) else "−∞" for i in (2, 4) for j in range(5)}
    assert printed == expected and numbers.hoverinfo == "skip"
    with pytest.raises(ValueError, match="followed"):
        figs.matrix(m, "S", numbers="followed rows")
    # Dark cells (the scale's ends) get light text, as plotly's own numbers do.
    top = np.abs(m[np.isfinite(m)]).max()
    colours = dict(zip(zip(numbers.y, numbers.x, strict=True), numbers.textfont.color, strict=True))
    for (i, j), colour in colours.items():
        assert colour == ("white" if np.isfinite(m[i, j]) and abs(m[i, j]) / top > 0.6 else "#262730")


def test_followed_weights_keep_their_click_layer_and_hover():
    steps = toy_steps(preset("A padding token"), 1)
    tokens = preset("A padding token").tokens
    w = figs.weights(steps.weights[0], tokens, query=1, key=2, numbers="followed")
    heat, numbers, layer = w.data
    assert [int(y) for y in numbers.y] == [1] * len(tokens)
    assert layer.hovertemplate.startswith("A[") and heat.hoverinfo == "skip"
    big = figs.weights(np.full((100, 100), 0.01), [f"t{i}" for i in range(100)], query=3, numbers="followed")
    assert big.data[0].hoverinfo is None, "no click layer: the heatmap's own hover stays"
