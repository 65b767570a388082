"""Many heads at once, drawn as one picture.

A grid of 72 Plotly heatmaps sends megabytes and takes seconds to draw (measured here, see docs/architecture.md:
~15.7 MB and ~17 s for 12x12 heads of 128 tokens). Here every head becomes a tile of one
PNG, and a light scatter layer with one invisible point per tile carries the hover text and the
click. A matrix larger than its tile is pooled by *max* (:func:`attnviz.maths.pooling.pool`): a
pixel is the largest weight of the block of tokens it covers. Averaging would dilute a sharp head
(one key per query) by the block's width, and at 346 tokens in 48 px left the thumbnails blank.
A decoder's cells that a query cannot see are grey (:data:`attnviz.figures.matrix.NOT_VISIBLE`),
not the colour of weight 0.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from matplotlib import colormaps
from PIL import Image

from attnviz.figures.matrix import COLORSCALE, HOVER_FONT, NOT_VISIBLE
from attnviz.maths.pooling import pool
from attnviz.text.views import AttentionView

GAP = 3  # pixels between tiles
_WHITE = 255  # palette index of the gaps
_HIDDEN = 254  # palette index of cells a decoder's query cannot see; 0..253 are the colour scale


def _palette() -> list[int]:
    colours = colormaps[COLORSCALE](np.linspace(0.0, 1.0, _HIDDEN))[:, :3]  # (254, 3) in 0..1
    grey = [int(NOT_VISIBLE[i : i + 2], 16) for i in (1, 3, 5)]
    rgb = np.vstack([np.rint(colours * 255), [grey, [255, 255, 255]]]).astype(np.uint8)
    return rgb.ravel().tolist()


def _resize(matrix: np.ndarray, size: int) -> np.ndarray:
    """``(q, k)`` -> ``(size, size)``: max-pooled along an axis longer than ``size``, then enlarged
    by whole pixels (nearest) so cells stay sharp."""
    q, k = matrix.shape
    if q > size or k > size:
        matrix = pool(matrix.astype(np.float32), min(q, size), min(k, size), "max").values
    img = Image.fromarray(np.ascontiguousarray(matrix, dtype=np.float32), mode="F")
    return np.asarray(img.resize((size, size), resample=Image.Resampling.NEAREST), dtype=np.float32)


def tile(matrix: np.ndarray, size: int, zmax: float, visible: np.ndarray | None = None) -> np.ndarray:
    """One head as a ``(size, size)`` float image in 0..1, NaN where the query cannot see the key.

    Larger matrices are max-pooled (a pixel is the largest weight it covers, so one strong cell
    stays as bright as it is); smaller ones are enlarged by whole pixels so cells stay sharp.
    ``visible`` (bool, the matrix's shape): a pixel that covers no key its queries can see is NaN
    (drawn grey).
    """
    out = np.clip(_resize(matrix, size) / zmax, 0.0, 1.0)
    if visible is not None:
        out[_resize(visible.astype(np.float32), size) < 0.5] = np.nan
    return out


def mosaic_png(tiles: np.ndarray, n_cols: int, size: int, row_gap: int = GAP) -> tuple[str, int, int]:
    """Lay ``tiles`` ``(m, size, size)`` out in rows of ``n_cols``; returns (PNG data URI, w, h).

    ``row_gap``: pixels between rows (room for each tile's title above it)."""
    m = tiles.shape[0]
    n_rows = -(-m // n_cols)
    height, width = n_rows * (size + row_gap) - row_gap, n_cols * (size + GAP) - GAP
    # A palette image: one byte per pixel, 255 colour levels plus white for the gaps. It
    # encodes ~10x faster than RGB with optimize=True (30 ms, not 330 ms, for 12 heads).
    canvas = np.full((height, width), _WHITE, dtype=np.uint8)
    levels = np.where(np.isnan(tiles), _HIDDEN, np.rint(np.nan_to_num(tiles) * (_HIDDEN - 1))).astype(np.uint8)
    for i in range(m):
        r, c = divmod(i, n_cols)
        y, x = r * (size + row_gap), c * (size + GAP)
        canvas[y : y + size, x : x + size] = levels[i]
    image = Image.fromarray(canvas, mode="P")
    image.putpalette(_palette())
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"), width, height


def _tile_figure(
    matrices: np.ndarray,
    names: list[str],
    n_cols: int,
    size: int,
    zmax: np.ndarray,
    title: str,
    col_titles: list[str] | None = None,
    row_titles: list[str] | None = None,
    visible: np.ndarray | None = None,
    tile_titles: list[str] | None = None,
) -> go.Figure:
    """``tile_titles``: a title above every tile (a layer's heads: "head 5" under the first row too);
    ``col_titles``/``row_titles``: above the first row / left of each row (the model overview)."""
    tiles = np.stack([tile(m, size, z, visible) for m, z in zip(matrices, zmax, strict=True)])
    # A tile's title needs ~16 screen px; the mosaic is drawn ~900 px wide, so that is a share of the tile.
    row_gap = max(GAP, round(0.14 * size)) if tile_titles else GAP
    source, width, height = mosaic_png(tiles, n_cols, size, row_gap)
    centres = np.arange(len(names))
    cx = (centres % n_cols) * (size + GAP) + size / 2
    cy = (centres // n_cols) * (size + row_gap) + size / 2
    peak = matrices.reshape(len(names), -1).max(axis=1)
    fig = go.Figure()
    fig.add_trace(go.Image(source=source, hoverinfo="skip"))
    fig.add_trace(
        go.Scatter(
            x=cx,
            y=cy,
            mode="markers",
            marker=dict(opacity=0, size=max(8, size // 2)),
            customdata=peak,
            hovertext=names,
            hovertemplate="%{hovertext}<br>largest weight: %{customdata:.3f}<br>click to open<extra></extra>",
            showlegend=False,
        )
    )

    def label(x: float, y: float, text: str, **anchor) -> dict:
        return dict(x=x, y=y, text=text, showarrow=False, xref="x", yref="y", font=dict(size=11), **anchor)

    annotations = [
        label(c * (size + GAP) + size / 2, -4, text, yanchor="bottom") for c, text in enumerate(col_titles or [])
    ]
    annotations += [
        label(-4, r * (size + row_gap) + size / 2, text, xanchor="right") for r, text in enumerate(row_titles or [])
    ]
    for i, text in enumerate(tile_titles or []):
        r, c = divmod(i, n_cols)
        annotations.append(label(c * (size + GAP) + size / 2, r * (size + row_gap) - 1, text, yanchor="bottom"))
    # Sized for a ~900 px wide plot; the image keeps its aspect ratio (scaleanchor below). A tall
    # mosaic (a decoder's 30 layers) may grow to 1,400 px so that its thumbnails stay readable.
    shown_height = min(max(900.0, 40.0 * (height // (size + GAP) + 1)), 1400.0, 900.0 * height / width)
    fig.update_layout(
        title=title,
        annotations=annotations,
        width=None,
        height=int(shown_height) + 90,
        margin=dict(l=10, r=10, t=50, b=10),
        hoverlabel=HOVER_FONT,
        clickmode="event+select",
        dragmode=False,
        plot_bgcolor="white",
    )
    # Plotly hides data-referenced annotations outside the axis ranges: leave room for titles.
    top = row_gap if tile_titles else 18 if col_titles else 0
    left = 30 if row_titles else 0
    fig.update_xaxes(visible=False, range=[-0.5 - left, width - 0.5], constrain="domain")
    fig.update_yaxes(visible=False, range=[height - 0.5, -0.5 - top], scaleanchor="x", constrain="domain")
    return fig


def pooling_note(shape: tuple[int, ...], size: int) -> str:
    """A title's note when tiles of ``size`` px pool a ``(q, k)`` matrix: by max, and how many tokens a pixel covers."""
    q, k = shape
    if max(q, k) <= size:
        return ""
    rows, cols = -(-q // size), -(-k // size)  # ceil: the largest block a pixel covers
    return f"<br><sup>pooled by max: each pixel is the largest weight of up to {rows} × {cols} cells</sup>"


def _zmax_per_head(weights: np.ndarray, scale: str) -> np.ndarray:
    """(m,) colour-scale tops: all 1 for "fixed", else each head's own largest weight."""
    flat = weights.reshape(weights.shape[0], -1)
    if scale == "fixed" or flat.shape[1] == 0:
        return np.ones(flat.shape[0], dtype=np.float32)
    return np.maximum(flat.max(axis=1), 1e-6)


def layer_heads(
    view: AttentionView, layer: int, *, scale: str = "fixed", size: int = 128, n_cols: int = 4
) -> go.Figure:
    """All heads of one layer as small multiples; a click on a tile returns its head."""
    heads = view.weights[layer]  # (H, q, k)
    names = [f"layer {layer} · head {h}" for h in range(view.n_heads)]
    size = min(size, max(32, max(heads.shape[1:]) * 4))
    return _tile_figure(
        heads,
        names,
        n_cols,
        size,
        _zmax_per_head(heads, scale),
        title=f"Layer {layer}: every head (queries down, keys across)" + pooling_note(heads.shape[1:], size),
        tile_titles=[f"head {h}" for h in range(view.n_heads)],
        visible=view.visible,
    )


def model_overview(view: AttentionView, *, scale: str = "head max", size: int = 48) -> go.Figure:
    """Every layer (rows) x head (columns) as thumbnails; a click returns (layer, head)."""
    n_layers, n_heads = view.n_layers, view.n_heads
    flat = view.weights.reshape(n_layers * n_heads, *view.weights.shape[2:])  # (L*H, q, k)
    names = [f"layer {l} · head {h}" for l in range(n_layers) for h in range(n_heads)]
    return _tile_figure(
        flat,
        names,
        n_heads,
        size,
        _zmax_per_head(flat, scale),
        title="Every layer and head (click a thumbnail to open it)" + pooling_note(flat.shape[1:], size),
        col_titles=[f"H{h}" for h in range(n_heads)],
        row_titles=[f"L{l}" for l in range(n_layers)],
        visible=view.visible,
    )
