"""The head-lines figure in a pair (issue 18, item 5): the last token of both sentences is drawn whole,
in the PNG (every label's box inside the figure when matplotlib renders it) and on screen (the
axis range holds every token's row with half a row to spare); the PNG's title counts heads right."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from attnviz import figures, text_attention
from attnviz.export import png
from attnviz.text.views import make_view

BLOCKS = ("A→B", "B→A", None)


@pytest.fixture(scope="module")
def pair(tiny_model):
    return text_attention(tiny_model, "The cat sat on the mat.", text_pair="Where did the cat sit while it rained?")


def drawn(monkeypatch, view, heads):
    """The matplotlib figure head_lines_png saves, rendered."""
    figs = []
    real = png._png
    monkeypatch.setattr(png, "_png", lambda fig, fmt="png", paper=False: (figs.append(fig), real(fig, fmt, paper))[1])
    assert png.head_lines_png(view, 0, heads)[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = figs
    FigureCanvasAgg(fig).draw()
    return fig


@pytest.mark.parametrize("block", BLOCKS)
def test_png_draws_every_token_of_both_sentences_whole(monkeypatch, pair, block):
    view = make_view(pair, block=block) if block else make_view(pair)
    assert len(view.query_tokens) != len(view.key_tokens) or block is None
    fig = drawn(monkeypatch, view, [0, 1])
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    assert len(ax.texts) == len(view.query_tokens) + len(view.key_tokens)
    for text in ax.texts:
        box = text.get_window_extent(renderer)
        assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, text.get_text()
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, text.get_text()
    bottom, top = ax.get_ylim()
    assert top <= -0.5 and bottom >= max(len(view.query_tokens), len(view.key_tokens)) - 0.5


def test_png_title_says_head_or_heads(monkeypatch, pair):
    view = make_view(pair)
    assert drawn(monkeypatch, view, [0]).axes[0].get_title() == "Layer 0, head 0 (weight ≥ 0.05)"
    assert drawn(monkeypatch, view, [0, 1]).axes[0].get_title() == "Layer 0, heads 0, 1 (weight ≥ 0.05)"
    assert drawn(monkeypatch, view, []).axes[0].get_title() == "Layer 0, no head (weight ≥ 0.05)"


@pytest.mark.parametrize("block", BLOCKS)
def test_on_screen_lines_hold_the_last_token_of_both_sentences(pair, block):
    view = make_view(pair, block=block) if block else make_view(pair)
    fig = figures.head_lines(view, 0, [0, 1])
    low, high = sorted(fig.layout.yaxis.range)
    queries, keys = (t for t in fig.data if t.mode == "text")
    for trace, tokens in ((queries, view.query_tokens), (keys, view.key_tokens)):
        assert list(trace.y) == list(range(len(tokens)))
        # Half a row above the first and below the last: a label centred on its row is not cut.
        assert low <= min(trace.y) - 0.5 and max(trace.y) + 0.5 <= high
        assert trace.cliponaxis is False
    rows = high - low
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert plot_px / rows >= 14  # room for a 12 px label on every row
