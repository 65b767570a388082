"""A long input's ranked views (strongest keys, strongest pairs, a rollout row) as PNG, SVG and PDF
(issue 18, item 1): the files open, the figure shows the ranking it was given, and bar labels never
overlap, at every count the page offers and at the paper font size."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from attnviz.export import long_files
from attnviz.maths.pooling import strongest_keys

SVG = "{http://www.w3.org/2000/svg}"
N = 600
TOKENS = [f"tok{i:03d}-{'w' * 12}" for i in range(N)]  # longer than a label gets (16 characters)
TOKENS[7] = "$x$ <b>"  # mathtext and markup show as typed


def _row(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    row = rng.random(N) ** 8
    return row / row.sum()


def keys_png(k: int = 20, **options) -> bytes:
    return long_files.strongest_keys_png(TOKENS, N - 1, *strongest_keys(_row(), k), title="Layer 3, head 1", **options)


def pairs_png(**options) -> bytes:
    rng = np.random.default_rng(1)
    queries, keys = rng.integers(0, N, 50), rng.integers(0, N, 50)
    weights = np.sort(rng.random(50))[::-1]
    return long_files.strongest_pairs_png(TOKENS, queries, keys, weights, 412.5, 9_000, title="$L$ 0", **options)


WRITERS = {"strongest keys": keys_png, "strongest pairs": pairs_png}


@pytest.mark.parametrize("name", list(WRITERS))
@pytest.mark.parametrize("paper", [False, True])
def test_each_format_opens(name, paper):
    write = WRITERS[name]
    image = Image.open(io.BytesIO(write(fmt="png", paper=paper)))
    image.load()
    assert image.format == "PNG" and min(image.size) > 200
    root = ET.fromstring(write(fmt="svg", paper=paper))
    assert root.tag == f"{SVG}svg" and not list(root.iter(f"{SVG}text"))  # text as paths
    pdf = write(fmt="pdf", paper=paper)
    assert pdf.startswith(b"%PDF-") and len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1
    assert b"/FontFile2" in pdf


def _captured(monkeypatch) -> list[Figure]:
    figures = []
    original = long_files._png
    monkeypatch.setattr(long_files, "_png", lambda fig, *a: figures.append(fig) or original(fig, *a))
    return figures


def test_bars_are_the_strongest_keys_strongest_on_top(monkeypatch):
    figures = _captured(monkeypatch)
    row = _row()
    keys_png(10)
    [ax] = [a for a in figures[0].axes]
    bars = sorted(ax.patches, key=lambda b: b.get_y())  # top of the chart first (y axis reversed)
    widths = [b.get_width() for b in bars]
    assert widths == pytest.approx(np.sort(row)[::-1][:10], rel=1e-6)
    best = int(np.argmax(row))
    assert ax.get_yticklabels()[0].get_text().startswith(f"{best} · tok{best:03d}")
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # reversed: bar 0 at the top
    title = ax.get_title()
    assert f"query {N - 1}" in title and f"{N - 10:,} other keys share" in title


def test_pairs_sit_at_key_across_and_query_down(monkeypatch):
    figures = _captured(monkeypatch)
    pairs_png()
    ax = figures[0].axes[0]
    rng = np.random.default_rng(1)
    queries, keys = rng.integers(0, N, 50), rng.integers(0, N, 50)
    offsets = ax.collections[0].get_offsets()
    assert np.array_equal(offsets[:, 0], keys) and np.array_equal(offsets[:, 1], queries)
    assert len(figures[0].axes) == 2  # the points and their colour bar
    assert r"\$L\$ 0" in ax.get_title()


def _overlaps(fig: Figure) -> list[str]:
    renderer = FigureCanvasAgg(fig).get_renderer()
    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            out += [
                labels[i].get_text()
                for i in range(len(boxes))
                for j in range(i + 1, len(boxes))
                if boxes[i].overlaps(boxes[j])
            ]
        title = ax.title.get_window_extent(renderer)
        out += [t.get_text() for t in ax.get_yticklabels() if t.get_window_extent(renderer).overlaps(title)]
    return out


@pytest.mark.parametrize("k", [5, 20, 30, 50])
@pytest.mark.parametrize("paper", [False, True])
def test_bar_labels_never_overlap(monkeypatch, k, paper):
    """5 to 50 keys (the page's slider; the rollout row shows 30), 16-character labels, plain and paper-ready."""
    figures = _captured(monkeypatch)
    keys_png(k, paper=paper)
    assert len(figures[0].axes[0].get_yticklabels()) == k
    assert _overlaps(figures[0]) == []
