"""Head lines in the browser: each line's hover point and the "Lines from" menu carry exactly the view's
weights, so what the browser shows without a rerun is what the server would have drawn."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz import figures
from attnviz.figures.labels import plot_text
from attnviz.figures.lines import HOVER_X
from tests.helpers import constructed_view

TOKENS = ["[CLS]", "the", "<b>x</b>", "$x$", "cat", "the", "sat", "&amp;", "[SEP]"]


def drawn(traces: list[dict]) -> dict[str, set[tuple[int, int]]]:
    """(query row, key row) of every line per head name; a trace is drawn to its shorter of x and y."""
    out: dict[str, set[tuple[int, int]]] = {}
    for t in traces:
        if t["mode"] != "lines" or t["y"] is None or len(t["y"]) < 3:
            continue
        n = min(len(t["x"]), len(t["y"]))
        y = np.asarray([np.nan if v is None else v for v in t["y"][:n]], dtype=float)
        assert np.isnan(y[2::3]).all()
        out.setdefault(t["name"], set()).update(zip(y[0::3].astype(int), y[1::3].astype(int), strict=True))
    return out


def as_dicts(fig) -> list[dict]:
    return [
        {
            "mode": t.mode,
            "name": t.name,
            "x": None if t.x is None else list(t.x),
            "y": None if t.y is None else [None if v is None or v != v else float(v) for v in t.y],
            "text": None if t.text is None else list(t.text),
            "x0": t.x0,
            "dx": t.dx,
            "marker": {"opacity": t.marker.opacity},
        }
        for t in fig.data
    ]


def pressed(fig, button: dict) -> list[dict]:
    """The traces after the browser applies a menu button (Plotly's ``update``: new y and text per index)."""
    traces = as_dicts(fig)
    changes, _, indices = button["args"]
    for k, i in enumerate(indices):
        traces[i]["y"] = [None if v is None else float(v) for v in changes["y"][k]]
        if changes["text"][k] is not None:
            traces[i]["text"] = list(changes["text"][k])
    return traces


def expected(view, layer: int, heads: list[int], threshold: float, query: int | None = None) -> dict:
    out = {}
    for h in heads:
        w = view.weights[layer, h]
        pairs = {(i, j) for i in range(w.shape[0]) for j in range(w.shape[1]) if w[i, j] >= threshold}
        pairs = {p for p in pairs if query is None or p[0] == query}
        if pairs:
            out[f"head {h}"] = pairs
    return out


@pytest.mark.parametrize("threshold", [0.05, 0.15])
def test_each_line_has_a_hover_point_naming_its_tokens_and_weight(rng, threshold):
    view = constructed_view(rng, TOKENS, n_layers=2, n_heads=3)
    fig = figures.head_lines(view, 1, [0, 2], threshold=threshold)
    points = [t for t in fig.data if t.mode == "markers"]
    assert len(points) == 2  # one hover trace per head
    for t in points:
        h = int(t.name.split()[1])
        w = view.weights[1, h]
        rows, cols = np.nonzero(w >= threshold)
        np.testing.assert_allclose(np.asarray(t.y), rows + HOVER_X * (cols - rows), rtol=1e-6)
        q = [plot_text(s) for s in view.query_tokens]
        k = [plot_text(s) for s in view.key_tokens]
        assert list(t.text) == [f"{q[r]} → {k[c]}: {w[r, c]:.2f}" for r, c in zip(rows, cols, strict=True)]
        assert t.legendgroup == f"head {h}"  # a legend click hides a head's hover points with its lines
        assert not any("<b>" in s for s in t.text)


def test_the_lines_from_menu_keeps_exactly_one_tokens_lines(rng):
    view = constructed_view(rng, TOKENS, n_layers=2, n_heads=3)
    heads, threshold = [0, 2], 0.08
    fig = figures.head_lines(view, 1, heads, threshold=threshold)
    labels = [plot_text(t) for t in TOKENS]
    (menu,) = fig.layout.updatemenus
    buttons = [b.to_plotly_json() for b in menu.buttons]
    assert len(buttons) == 1 + len(TOKENS)
    assert buttons[0]["label"] == "Lines from every token" and menu.active == 0
    every = pressed(fig, buttons[0])
    assert drawn(every) == expected(view, 1, heads, threshold)
    assert buttons[0]["args"][1] == {"shapes": []}
    for token, button in enumerate(buttons[1:]):
        assert button["method"] == "update"
        assert button["label"].startswith(f"Lines from {token}: ")
        after = pressed(fig, button)
        assert drawn(after) == expected(view, 1, heads, threshold, query=token)
        for t in after:
            if t["mode"] != "markers":
                continue
            h = int(t["name"].split()[1])
            w = view.weights[1, h, token]
            keys = np.flatnonzero(w >= threshold)
            assert t["text"] == [f"{labels[token]} → {labels[c]}: {w[c]:.2f}" for c in keys]
            np.testing.assert_allclose(t["y"], token + HOVER_X * (keys - token), atol=0.006)  # sent to 0.01
        (band,) = button["args"][1]["shapes"]
        assert band["y0"] == token - 0.5 and band["y1"] == token + 0.5


def test_no_menu_when_the_server_already_kept_one_token(rng):
    view = constructed_view(rng, TOKENS, n_layers=1, n_heads=2)
    fig = figures.head_lines(view, 0, [0, 1], threshold=0.05, query=3)
    assert not fig.layout.updatemenus
    assert drawn(as_dicts(fig)) == expected(view, 0, [0, 1], 0.05, query=3)


def test_no_menu_past_its_line_budget(rng, monkeypatch):
    """The menu carries every line twice more; past MENU_LINES the figure stays as light as before."""
    view = constructed_view(rng, TOKENS, n_layers=1, n_heads=2)
    lines = int((view.weights[0, 0] >= 0.05).sum() + (view.weights[0, 1] >= 0.05).sum())
    monkeypatch.setattr(figures.lines, "MENU_LINES", lines)
    assert figures.head_lines(view, 0, [0, 1], threshold=0.05).layout.updatemenus
    monkeypatch.setattr(figures.lines, "MENU_LINES", lines - 1)
    assert not figures.head_lines(view, 0, [0, 1], threshold=0.05).layout.updatemenus
