"""Long prompts drawn pooled: the figure's cells are the pooled values, a decoder's invisible bins
are grey, payloads stay under the 3 MB budget, and token text is shown literally."""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
import pytest
from PIL import Image

from attnviz.figures.matrix import NOT_VISIBLE
from attnviz.figures.pooled import pooled_head, pooled_layer, pooled_overview, strongest_keys_figure
from attnviz.maths.pooling import RowPooling, bin_edges, pool, strongest_keys, visible_bins

BUDGET = 3_000_000  # bytes of figure JSON sent to the browser
GREY = [int(NOT_VISIBLE[i : i + 2], 16) for i in (1, 3, 5)]


def causal(rng, n: int, leading=()) -> np.ndarray:
    raw = rng.random((*leading, n, n)).astype(np.float32) * np.tri(n, dtype=np.float32)
    return raw / raw.sum(-1, keepdims=True)


def heatmap(fig: go.Figure) -> go.Heatmap:
    (trace,) = [t for t in fig.data if isinstance(t, go.Heatmap)]
    return trace


def mosaic_pixels(fig: go.Figure) -> np.ndarray:
    (image,) = [t for t in fig.data if isinstance(t, go.Image)]
    data = base64.b64decode(image.source.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("how", ["max", "mean"])
def test_cells_are_the_pooled_values_and_invisible_bins_are_grey(rng, how):
    n = 100
    w = causal(rng, n)
    pm = pool(w, 16, 16, how)
    tokens = [f"t{i}" for i in range(n)]
    fig = pooled_head(pm, tokens, title="Layer 0 · head 1", causal=True)
    z = np.asarray(heatmap(fig).z, dtype=float)
    seen = visible_bins(pm.query_edges, pm.key_edges)
    assert np.isnan(z[~seen]).all() and (~seen).any()
    np.testing.assert_allclose(z[seen], pm.values[seen], rtol=1e-6)  # float32, no rounding needed
    assert fig.layout.plot_bgcolor == NOT_VISIBLE
    assert heatmap(fig).hoverongaps is False
    assert f"{how} weight" in heatmap(fig).hovertemplate


def test_an_encoder_has_no_grey_bins(rng):
    w = rng.random((40, 40)).astype(np.float32)
    pm = pool(w, 8, 8, "mean")
    fig = pooled_head(pm, [str(i) for i in range(40)], title="x", causal=False)
    np.testing.assert_allclose(np.asarray(heatmap(fig).z, dtype=float), pm.values, rtol=1e-6)
    assert fig.layout.plot_bgcolor is None


def test_labels_hover_and_caption_say_the_ranges_and_the_pooling(rng):
    n = 8192
    tokens = [f"w{i}" for i in range(n)]
    pm = pool(causal(rng, 512), 16, 16, "max")  # bins of 32 tokens
    fig = pooled_head(pm, tokens[:512], title="Layer 3 · head 2", causal=True)
    trace = heatmap(fig)
    assert list(trace.y[:2]) == ["0–31 · w0", "32–63 · w32"]
    assert list(trace.x)[-1] == "480–511 · w480"
    assert "queries %{y}<br>keys %{x}<br>max weight" in trace.hovertemplate
    assert "max-pooled: each cell is the largest weight in its 32 × 32 block of tokens" in fig.layout.title.text
    mean = pooled_head(pool(causal(rng, 500), 16, 16, "mean"), tokens, title="t", causal=True)
    assert "average weight of its 31–32 × 31–32 block" in mean.layout.title.text
    assert "count as 0" in mean.layout.title.text
    one = pooled_head(pool(causal(rng, 8), 16, 16, "max"), tokens, title="t", causal=True)
    assert list(heatmap(one).y[:2]) == ["0 · w0", "1 · w1"]
    assert "not pooled" in one.layout.title.text


def test_ticks_are_sparse_on_256_bins(rng):
    pm = pool(rng.random((1024, 1024)).astype(np.float32), 256, 256, "max")
    fig = pooled_head(pm, [f"t{i}" for i in range(1024)], title="x", causal=False)
    assert len(fig.layout.xaxis.tickvals) <= 32 and len(fig.layout.yaxis.ticktext) <= 32
    assert len(heatmap(fig).x) == 256  # every bin is a category; the hover names each


def test_a_256_bin_head_of_8192_tokens_stays_under_the_budget(rng):
    n, bins = 8192, 256
    tokens = [f"token{i}" * 3 for i in range(n)]
    pooling = RowPooling(n, n, bins, bins, "max")
    for start in range(0, n, 1000):  # blocks of 1000 rows: most split a 32-row bin
        rows = rng.random((min(1000, n - start), n)).astype(np.float32)
        rows *= np.arange(n)[None, :] <= np.arange(start, start + len(rows))[:, None]
        pooling.add(start, rows / rows.sum(-1, keepdims=True))
    fig = pooled_head(pooling.result(), tokens, title="Layer 0 · head 0", causal=True)
    size = len(fig.to_json())
    print(f"pooled_head 256 x 256 bins, 8192 tokens: {size / 1e6:.3f} MB")
    assert size < BUDGET / 4


def test_a_layer_and_the_model_as_mosaics_stay_under_the_budget(rng):
    n_heads, bins = 32, 256
    values = rng.random((n_heads, bins, bins)).astype(np.float32)  # noise: the worst case for PNG
    edges = bin_edges(8192, bins)
    fig = pooled_layer(values, edges, layer=5, how="max", causal=True, model_name="m")
    size = len(fig.to_json())
    print(f"pooled_layer 32 heads x 256 bins: {size / 1e6:.3f} MB")
    assert size < BUDGET
    # 256 bins of 32 tokens drawn on 128-pixel tiles: a pixel is a 64 x 64 block, and says so.
    assert "largest weight in its 64 × 64 block of tokens" in fig.layout.title.text
    overview = rng.random((30, 9, bins, bins)).astype(np.float32)
    fig = pooled_overview(overview, edges, how="mean", causal=True, model_name="m")
    size = len(fig.to_json())
    print(f"pooled_overview 30 x 9 heads x 256 bins: {size / 1e6:.3f} MB")
    assert size < BUDGET


@pytest.mark.parametrize("how", ["max", "mean"])
def test_pooled_layer_tiles_are_grey_where_nothing_is_visible_and_hover_the_peak(rng, how):
    n, heads = 256, 3
    pm = pool(causal(rng, n, leading=(heads,)), 64, 64, how)
    fig = pooled_layer(pm.values, pm.query_edges, layer=2, how=how, causal=True, model_name="<b>m</b>")
    pixels = mosaic_pixels(fig)
    size = 128  # 64 bins, two pixels each
    for h in range(heads):
        x = h * (size + 3)
        tile = pixels[:size, x : x + size]
        assert (tile[0, -1] == GREY).all() and (tile[5, 40] == GREY).all()  # keys after the queries
        assert not (tile[-1, 0] == GREY).all() and not (tile[40, 5] == GREY).all()
    (hover,) = [t for t in fig.data if isinstance(t, go.Scatter)]
    np.testing.assert_allclose(hover.customdata, pm.values.reshape(heads, -1).max(axis=1), rtol=1e-6)
    assert ("largest weight" if how == "max" else "largest block mean") in hover.hovertemplate
    assert "&lt;b&gt;m&lt;/b&gt;" in fig.layout.title.text and "<b>m" not in fig.layout.title.text


def test_pooled_layer_pools_max_again_for_small_tiles_so_a_sharp_line_survives():
    n = 1024
    w = np.zeros((1, n, n), dtype=np.float32)
    w[0, np.arange(1, n), np.arange(n - 1)] = 1.0  # previous-token head: one weight per row
    w[0, 0, 0] = 1.0
    pm = pool(w, 256, 256, "max")
    fig = pooled_layer(pm.values, pm.query_edges, layer=0, how="max", causal=True, model_name="m", size=32)
    tile = mosaic_pixels(fig)[:32, :32]
    dark = tile.sum(-1) < 300  # the Blues scale's top is dark blue
    assert dark[np.arange(32), np.arange(32)].all()  # the diagonal is at full strength


def test_hostile_token_text_is_shown_literally(rng):
    tokens = ["<b>x</b>", "$y$", "a\u202eb"] + [f"t{i}" for i in range(61)]
    pm = pool(causal(rng, 64), 8, 8, "max")
    fig = pooled_head(pm, tokens, title="<i>title</i>", causal=True)
    trace = heatmap(fig)
    assert trace.y[0] == "0–7 · &lt;b&gt;x&lt;/b&gt;"
    assert "<b>" not in fig.to_json().replace("\\u003c", "<").split('"template"')[0]
    assert "&lt;i&gt;title&lt;/i&gt;" in fig.layout.title.text
    bars = strongest_keys_figure(tokens, 2, *strongest_keys(causal(rng, 64)[2], 3), title="<b>q</b>")
    labels = list(bars.data[0].y)
    assert "0 · &lt;b&gt;x&lt;/b&gt;" in labels
    assert "1 · \u200b$y$" in labels  # a leading "$" is disarmed
    assert "2 · a\\u202eb" in labels  # a bidi override is shown, not obeyed


def test_strongest_keys_figure(rng):
    n = 8192
    row = rng.random(n).astype(np.float32) * (np.arange(n) <= 5000)
    row /= row.sum()
    tokens = [f"t{i}" for i in range(n)]
    found = strongest_keys(row, 10)
    fig = strongest_keys_figure(tokens, 5000, *found, title="Layer 1 · head 4")
    (bar,) = fig.data
    assert bar.orientation == "h"
    np.testing.assert_array_equal(np.asarray(bar.x), found.values)
    assert list(bar.y) == [f"{i} · t{i}" for i in found.indices]
    (note,) = fig.layout.annotations
    assert note.text == f"{5001 - 10:,} other keys share {found.rest_mass:.3f} of the weight"
    assert "query 5000 · t5000" in fig.layout.title.text
    assert len(fig.to_json()) < 100_000
    alone = strongest_keys_figure(tokens, 0, *strongest_keys(np.eye(1, n, dtype=np.float32)[0], 10), title="x")
    assert alone.layout.annotations[0].text == "no other key has any weight"
