"""The deletion and insertion curves figure, its PNG and the table's CSV, on a scoreboard built by hand."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from attnviz.export.faithfulness_files import removal_curves_png, scores_csv
from attnviz.figures.removal_curves import removal_curves
from attnviz.maths.explanation_table import RANDOM, assemble

STEPS = 4


def scoreboard(random_orders: int = 3, target: str = "<b>$x$</b>"):
    """Three methods and a random row over 5 units; raw scores with full score 2 and removed score 0.5."""
    rng = np.random.default_rng(0)
    fractions = np.linspace(0, 1, STEPS + 1)
    names = ["good", "bad", "=HYPERLINK(1)"]
    deletion = {m: np.r_[2.0, rng.uniform(0.5, 2, STEPS - 1), 0.5] for m in names}
    insertion = {m: np.r_[0.5, rng.uniform(0.5, 2, STEPS - 1), 2.0] for m in names}
    random_d = np.c_[
        np.full(random_orders, 2.0), rng.uniform(0.5, 2, (random_orders, STEPS - 1)), np.full(random_orders, 0.5)
    ]
    random_i = np.c_[
        np.full(random_orders, 0.5), rng.uniform(0.5, 2, (random_orders, STEPS - 1)), np.full(random_orders, 2.0)
    ]
    return assemble(
        fractions=fractions,
        importance={m: rng.normal(size=5) for m in names},
        deletion_raw=deletion,
        insertion_raw=insertion,
        seconds={m: 0.1 for m in names},
        loo=rng.normal(size=5),
        random_deletion_raw=random_d if random_orders else None,
        random_insertion_raw=random_i if random_orders else None,
        random_importance=rng.normal(size=(random_orders, 5)) if random_orders else None,
        random_seconds=0.2,
        full_score=2.0,
        removed_score=0.5,
        target=target,
        removal="A removed token is replaced by [PAD].",
        units=list("abcde"),
        notes=[],
        model_name="tiny",
        family="decoder",
        steps=STEPS,
        random_orders=random_orders,
        seed=0,
    )


def traces(fig, panel: int):
    axis = "x" if panel == 1 else f"x{panel}"
    return [t for t in fig.data if (t.xaxis or "x") == axis]


@pytest.mark.parametrize(("panel", "curve"), [(1, "deletion"), (2, "insertion")])
def test_each_line_is_the_methods_curve_and_the_band_is_mean_plus_minus_sd(panel, curve):
    scores = scoreboard()
    fig = removal_curves(scores)
    shown = traces(fig, panel)
    lines = {t.meta: t for t in shown if t.meta not in ("random band", "random mean")}
    assert set(lines) == set(scores.deletion) - {RANDOM}
    for method, trace in lines.items():
        np.testing.assert_allclose(trace.x, scores.fractions)
        np.testing.assert_allclose(trace.y, getattr(scores, curve)[method])
    mean, sd = scores.random_band[curve]
    (band,) = [t for t in shown if t.meta == "random band"]
    x = scores.fractions
    np.testing.assert_allclose(band.x, np.r_[x, x[::-1]])
    np.testing.assert_allclose(band.y, np.r_[mean + sd, (mean - sd)[::-1]])
    (middle,) = [t for t in shown if t.meta == "random mean"]
    np.testing.assert_allclose(middle.y, mean)
    np.testing.assert_allclose(middle.y, getattr(scores, curve)[RANDOM])


def test_lines_follow_the_table_and_each_method_has_one_legend_entry():
    scores = scoreboard()
    fig = removal_curves(scores)
    order = [t.meta for t in traces(fig, 1) if t.meta not in ("random band", "random mean")]
    assert order == [m for m in scores.table["method"] if m != RANDOM]
    legend = [t.name for t in fig.data if t.showlegend is not False]
    assert len(legend) == len(set(legend)) == len(scores.deletion)


def test_the_target_is_escaped_in_the_title():
    title = removal_curves(scoreboard(target="<b>$x$</b>")).layout.title.text
    assert "<b>" not in title and "&lt;b&gt;" in title


def test_without_random_orders_there_is_no_band():
    scores = scoreboard(random_orders=0)
    fig = removal_curves(scores)
    assert not [t for t in fig.data if t.meta in ("random band", "random mean")]
    assert len(fig.data) == 2 * 3
    assert removal_curves_png(scores).startswith(b"\x89PNG")


def test_csv_is_the_table_in_order_with_formula_cells_quoted():
    scores = scoreboard()
    rows = list(csv.DictReader(io.StringIO(scores_csv(scores).decode("utf-8"))))
    methods = [r["method"] for r in rows]
    assert methods == ["'=HYPERLINK(1)" if m.startswith("=") else m for m in scores.table["method"]]
    aucs = [float(r["deletion_auc"]) for r in rows]
    np.testing.assert_allclose(aucs, scores.table["deletion_auc"], rtol=1e-5)
    assert aucs == sorted(aucs)
    (rand,) = [r for r in rows if r["method"] == RANDOM]
    assert float(rand["deletion_sd"]) == pytest.approx(
        scores.table.set_index("method").loc[RANDOM, "deletion_sd"], rel=1e-5
    )
    assert all(r["deletion_sd"] == "" for r in rows if r["method"] != RANDOM)


def test_colours_suit_plotly_and_matplotlib():
    from matplotlib.colors import is_color_like

    from attnviz.figures.removal_curves import COLORS

    assert len(set(COLORS)) >= 12 and all(c.startswith("#") and is_color_like(c) for c in COLORS)


def test_png_draws():
    assert removal_curves_png(scoreboard()).startswith(b"\x89PNG")
