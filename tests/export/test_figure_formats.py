"""Every figure writer gives a PNG, an SVG and a PDF that open; fonts are paths (SVG) or embedded (PDF);
paper-ready means a white background, readable fonts and a colour bar on every map."""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from attnviz.export import png
from attnviz.export.faithfulness_files import removal_curves_png
from attnviz.export.figure_formats import FORMATS, PAPER_MIN_FONT, check_format, make_paper_ready, save_figure
from attnviz.export.image_files import blend_overlay, overlay_png, overlays_png
from attnviz.export.matrix_files import head_statistic_png, labelled_matrix_png, pooled_head_png, pooled_heads_png
from attnviz.export.rollout_files import rollout_png
from attnviz.export.sink_files import sinks_png
from attnviz.maths.pooling import PooledMatrix
from attnviz.text.sinks import AttentionSinks
from attnviz.text.views import AttentionView

SVG = "{http://www.w3.org/2000/svg}"


def view_of(n: int = 8, causal: bool = False) -> AttentionView:
    rng = np.random.default_rng(0)
    raw = rng.random((2, 3, n, n)).astype(np.float32)
    if causal:
        raw *= np.tril(np.ones((n, n), dtype=np.float32))
    tokens = ["[CLS]", "$x$", "<b>", *(f"t{i}" for i in range(n - 3))]
    return AttentionView(tokens, tokens, raw / raw.sum(-1, keepdims=True), np.arange(n), np.arange(n), "tokens")


def scoreboard():
    from attnviz.maths.explanation_table import assemble

    rng = np.random.default_rng(0)
    names = ["attention", "gradient"]
    return assemble(
        fractions=np.linspace(0, 1, 5),
        importance={m: rng.normal(size=5) for m in names},
        deletion_raw={m: np.r_[2.0, rng.uniform(0.5, 2, 3), 0.5] for m in names},
        insertion_raw={m: np.r_[0.5, rng.uniform(0.5, 2, 3), 2.0] for m in names},
        seconds={m: 0.1 for m in names},
        loo=rng.normal(size=5),
        random_deletion_raw=None,
        random_insertion_raw=None,
        random_importance=None,
        random_seconds=0.2,
        full_score=2.0,
        removed_score=0.5,
        target="x",
        removal="removed",
        model_name="m",
        family="encoder",
        units=[f"u{i}" for i in range(5)],
        notes=[],
        steps=4,
        random_orders=0,
        seed=0,
    )


STATS = pd.DataFrame(
    {"layer": np.repeat(np.arange(2), 3), "head": np.tile(np.arange(3), 2), "cls_mass": np.linspace(0, 1, 6)}
)
POOLED = PooledMatrix(np.tril(np.full((4, 4), 0.4, dtype=np.float32)), np.arange(0, 9, 2), np.arange(0, 9, 2), "max")
IMAGE = Image.new("RGB", (120, 80), (20, 40, 60))
GRID = np.arange(64, dtype=float).reshape(8, 8)

#: name -> writer(fmt, paper) -> bytes, and how many maps (colour bars wanted in paper mode) it draws.
WRITERS = {
    "head matrix": (lambda f, p: png.head_matrix_png(view_of(), 1, 2, fmt=f, paper=p), 1),
    "layer heads": (lambda f, p: png.layer_heads_png(view_of(), 0, fmt=f, paper=p), 1),
    "overview": (lambda f, p: png.overview_png(view_of(), fmt=f, paper=p), 1),
    "token heads": (lambda f, p: png.token_heads_png(view_of(causal=True), 3, fmt=f, paper=p), 1),
    "head lines": (lambda f, p: png.head_lines_png(view_of(), 0, [0, 1], fmt=f, paper=p), 0),
    "rollout": (lambda f, p: rollout_png(view_of(), fmt=f, paper=p), 1),
    "sinks": (lambda f, p: sinks_png(AttentionSinks(np.full((2, 3), 0.5), None, "[CLS]", "m"), fmt=f, paper=p), 1),
    "curves": (lambda f, p: removal_curves_png(scoreboard(), fmt=f, paper=p), 0),
    "overlay": (lambda f, p: overlay_png(IMAGE, GRID, title="$5 map", fmt=f, paper=p), 1),
    "overlays": (
        lambda f, p: overlays_png(IMAGE, [("head 0", GRID), ("$x$", GRID.T)], title="heads", fmt=f, paper=p),
        1,
    ),
    "matrix": (
        lambda f, p: labelled_matrix_png(
            np.array([[-1.0, -np.inf], [0.5, 2.0]]),
            ["a", "b"],
            ["c", "d"],
            title="scores",
            value_label="s",
            annotate=True,
            fmt=f,
            paper=p,
        ),
        1,
    ),
    "pooled head": (
        lambda f, p: pooled_head_png(POOLED, [f"t{i}" for i in range(8)], title="pooled", causal=True, fmt=f, paper=p),
        1,
    ),
    "pooled heads": (
        lambda f, p: pooled_heads_png(np.stack([POOLED.values] * 3), ["a", "b", "c"], 3, "layer", fmt=f, paper=p),
        1,
    ),
    "statistic": (lambda f, p: head_statistic_png(STATS, "cls_mass", unit="of attention", fmt=f, paper=p), 1),
}


def svg_axes(data: bytes) -> list[str]:
    """The ids of the axes groups of a matplotlib SVG (a colour bar is an axes of its own)."""
    root = ET.fromstring(data)
    return [g.get("id") for g in root.iter(f"{SVG}g") if re.fullmatch(r"axes_\d+", g.get("id") or "")]


@pytest.mark.parametrize("name", list(WRITERS))
def test_every_writer_gives_three_formats_that_open(name):
    write, _ = WRITERS[name]
    image = Image.open(io.BytesIO(write("png", False)))
    assert image.format == "PNG" and min(image.size) > 50
    svg = write("svg", False)
    root = ET.fromstring(svg)  # parses as XML
    assert root.tag == f"{SVG}svg"
    assert not list(root.iter(f"{SVG}text")), "text is converted to paths"
    pdf = write("pdf", False)
    assert pdf.startswith(b"%PDF-") and re.search(rb"/Type\s*/Page\b", pdf)
    assert b"/FontFile2" in pdf, "fonts embedded as TrueType (pdf.fonttype 42)"


@pytest.mark.parametrize("name", list(WRITERS))
def test_paper_ready_is_white_with_a_colour_bar_on_every_map(name):
    write, maps = WRITERS[name]
    image = np.asarray(Image.open(io.BytesIO(write("png", True))).convert("RGBA"))
    assert tuple(image[0, 0]) == (255, 255, 255, 255) and tuple(image[-1, -1]) == (255, 255, 255, 255)
    axes = svg_axes(write("svg", True))
    # each map's axes plus one colour bar per figure with maps (small multiples share theirs)
    assert maps == 0 or len(axes) >= 2
    if name in ("layer heads", "overview", "pooled heads"):
        assert len(svg_axes(write("svg", True))) == len(svg_axes(write("svg", False))) + 1


def test_small_multiples_get_their_colour_bar_only_when_paper_ready():
    v = view_of()
    plain, paper = (svg_axes(png.layer_heads_png(v, 0, fmt="svg", paper=p)) for p in (False, True))
    assert len(paper) == len(plain) + 1


def test_paper_ready_raises_small_fonts_only():
    fig = Figure()
    ax = fig.subplots()
    small, large = ax.text(0, 0, "small", fontsize=5), ax.set_title("large", fontsize=12)
    fig.set_facecolor("none")
    make_paper_ready(fig)
    assert small.get_fontsize() == PAPER_MIN_FONT and large.get_fontsize() == 12
    assert fig.get_facecolor() == (1.0, 1.0, 1.0, 1.0)


def test_the_overlay_png_has_a_colour_bar_beside_the_image():
    image = Image.new("RGB", (300, 200))
    grid = np.zeros((8, 8))
    grid[0, 7] = 1.0
    out = Image.open(io.BytesIO(overlay_png(image, grid, opacity=0.8)))
    width, height = out.size
    assert width / height > 1.1 * 300 / 200  # wider than the image's own shape: the bar is beside it
    assert len(svg_axes(overlay_png(image, grid, fmt="svg"))) == 2  # the image and its colour bar
    blended = np.asarray(blend_overlay(image, grid, opacity=0.8), dtype=float)
    assert blended[:20, -30:].mean() > blended[-20:, :30].mean() + 50  # the hot corner is where the map says


def test_vector_settings_do_not_leak_into_matplotlib():
    import matplotlib

    before = (matplotlib.rcParams["pdf.fonttype"], matplotlib.rcParams["svg.fonttype"])
    save_figure(Figure(), "pdf")
    assert (matplotlib.rcParams["pdf.fonttype"], matplotlib.rcParams["svg.fonttype"]) == before


def test_the_same_figure_gives_the_same_pdf_and_svg():
    assert png.head_matrix_png(view_of(), 0, 0, fmt="pdf") == png.head_matrix_png(view_of(), 0, 0, fmt="pdf")
    assert png.head_matrix_png(view_of(), 0, 0, fmt="svg") == png.head_matrix_png(view_of(), 0, 0, fmt="svg")


def test_unknown_formats_are_refused():
    assert check_format("PDF") == "pdf" and FORMATS == ("png", "svg", "pdf")
    with pytest.raises(ValueError, match="png, svg, pdf"):
        png.head_matrix_png(view_of(), 0, 0, fmt="jpg")


def _captured(monkeypatch, module) -> list[Figure]:
    figures = []
    original = module._png
    monkeypatch.setattr(module, "_png", lambda fig, *a: figures.append(fig) or original(fig, *a))
    return figures


def _overlapping_ticks(fig: Figure) -> list[str]:
    renderer = FigureCanvasAgg(fig).get_renderer()
    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
            boxes = [t.get_window_extent(renderer) for t in labels]
            out += [labels[i].get_text() for i in range(len(boxes) - 1) if boxes[i].overlaps(boxes[i + 1])]
    return out


@pytest.mark.parametrize("n", [12, 40, 64, 65, 200])
@pytest.mark.parametrize("paper", [False, True])
def test_tick_labels_never_overlap(monkeypatch, n, paper):
    """Long token labels, at every length, plain and at the paper font size."""
    import attnviz.export.matrix_files as matrix_files

    figures = _captured(monkeypatch, png)
    v = view_of(n)
    tokens = [f"token{i:03d}-{'w' * 9}" for i in range(n)]  # as long as a label gets (16 characters)
    v = AttentionView(tokens, tokens, v.weights, v.query_positions, v.key_positions, "tokens")
    png.head_matrix_png(v, 0, 0, paper=paper)
    png.token_heads_png(v, 0, paper=paper)
    monkeypatch.setattr(matrix_files, "_png", png._png)
    labelled_matrix_png(np.ones((n, n)), v.query_tokens, v.key_tokens, title="m", value_label="v", paper=paper)
    assert len(figures) == 3
    for fig in figures:
        assert _overlapping_ticks(fig) == []
