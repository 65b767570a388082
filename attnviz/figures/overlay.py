"""Image figures: a map over the image, small multiples of maps, the prediction bars.

Payload: the photo goes to the browser once per figure as a JPEG data URI, shrunk to at most
:data:`DISPLAY_SIDE` pixels (a 4000x3000 upload costs ~60 kB, not 36 MB of pixels), and each
map goes as its grid (8x8 numbers for attention) with ``zsmooth`` letting the browser smooth
it. Maps are stretched over the whole image, as the model squeezed the whole image into its
square input.

Text: every title and label is shown literally (``attnviz.figures.labels``): class names come
from a model card or a hub ViT's ``id2label``, which anyone who publishes a model writes.

Clicking: Streamlit returns nothing for clicks on a heatmap, so the overlay can carry an
invisible scatter point on each grid cell; a click selects point ``i``, which is the cell
``divmod(i, cols)`` (its ``customdata`` is ``[row, col]`` for the hover text).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
from PIL import Image

from attnviz.figures.labels import MAX_TITLE, plot_text, unique_labels

#: Longest side, in pixels, of the image sent to the browser.
DISPLAY_SIDE = 512
#: Small images (the 64x64 demos) are enlarged to this side so they do not look blurred.
MIN_DISPLAY_SIDE = 320
#: Images longer than this (long side over short side) are drawn stretched to it: a 1 x 40,000 image
#: drawn true to shape is a fraction of a pixel wide, and none of its cells can be clicked. The model
#: squeezes every image into its square input anyway.
MAX_ASPECT = 4.0
#: Width, in pixels, of the image page's overlay column (st.columns([3, 2]) on a wide page).
COLUMN_PX = 480
#: Colour maps offered: the name shown -> Plotly's colour scale (matplotlib's is the lowercase name).
COLORMAPS = {"inferno": "Inferno", "viridis": "Viridis", "turbo": "Turbo", "jet": "Jet", "magma": "Magma"}


def display_image(image: Image.Image, max_side: int = DISPLAY_SIDE) -> Image.Image:
    """The image as the browser gets it: shrunk to ``max_side``, small ones enlarged."""
    image = image.convert("RGB")
    side = max(image.size)
    if side > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    elif side < MIN_DISPLAY_SIDE:
        scale = MIN_DISPLAY_SIDE / side
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)
    return image


def display_frame(size: tuple[int, int]) -> tuple[float, float]:
    """The (width, height), in axis units, in which an image of ``size`` is drawn: its own size,
    with the short side lengthened so that the aspect ratio stays within ``MAX_ASPECT``."""
    w, h = size
    return max(float(w), h / MAX_ASPECT), max(float(h), w / MAX_ASPECT)


def image_uri(image: Image.Image, quality: int = 88) -> str:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def fading_colorscale(name: str) -> list[list]:
    """Plotly's colour scale ``name`` with opacity rising from 0: low values leave the image visible."""
    from plotly.colors import get_colorscale, unlabel_rgb

    out = []
    for pos, colour in get_colorscale(COLORMAPS.get(name, name)):
        r, g, b = (int(v) for v in unlabel_rgb(colour if colour.startswith("rgb") else _hex_to_rgb(colour)))
        alpha = min(1.0, pos / 0.35)  # the lowest third fades out
        out.append([pos, f"rgba({r},{g},{b},{alpha:.2f})"])
    return out


def _hex_to_rgb(colour: str) -> str:
    colour = colour.lstrip("#")
    return "rgb({},{},{})".format(*(int(colour[i : i + 2], 16) for i in (0, 2, 4)))


def _map_trace(
    grid_map: np.ndarray,
    size: tuple[float, float],
    opacity: float,
    colorscale,
    zmax,
    showscale: bool,
    zmin: float = 0.0,
):
    """A heatmap laid over a ``size`` = (width, height) image, cell (0, 0) at the top left (a plain
    dict of known-good keys: validated, its figure took longer to build than to send)."""
    w, h = size
    rows, cols = grid_map.shape
    return dict(
        type="heatmap",
        z=np.asarray(grid_map, dtype=np.float32),
        x0=w / cols / 2,
        dx=w / cols,
        y0=h / rows / 2,
        dy=h / rows,
        zmin=zmin,
        zmax=zmax,
        zsmooth="best",
        opacity=opacity,
        colorscale=colorscale,
        showscale=showscale,
        colorbar=dict(thickness=12, len=0.8),
        hoverinfo="skip",
    )


def _marker_px(size: tuple[float, float], grid: tuple[int, int], height_px: int) -> float:
    """Side, in screen pixels, of a click point: about a cell's longer side in a ``COLUMN_PX`` column.

    Plotly picks the nearest point within 20 px of a point's edge, so points this large leave no
    part of a cell (up to 80 px long) where a click selects nothing.
    """
    (w, h), (rows, cols) = size, grid
    scale = min(COLUMN_PX / w, (height_px - 36) / h)  # the y axis is anchored to x: one scale for both
    return float(np.clip(max(w / cols, h / rows) * scale, 6, 40))


def overlay(
    image: Image.Image,
    grid_map: np.ndarray,
    *,
    opacity: float = 0.5,
    colormap: str = "inferno",
    title: str | None = None,
    clickable: bool = False,
    selected: tuple[int, int] | None = None,
    zmax: float | None = None,
    from_min: bool = False,
    height: int | None = None,
) -> go.Figure:
    """``grid_map`` (rows, cols) over ``image``; optional click layer and a box on ``selected`` cell.

    The colour scale runs from 0 to the map's maximum, or from its minimum when ``from_min``:
    a nearly uniform map (e.g. a patch in a late layer) then shows its small differences.
    """
    shown = display_image(image)
    size = display_frame(shown.size)
    w, h = size
    rows, cols = grid_map.shape
    top = float(zmax) if zmax is not None else max(float(np.max(grid_map)), 1e-9)
    bottom = float(np.min(grid_map)) if from_min and float(np.min(grid_map)) < top else 0.0
    colorscale = fading_colorscale(colormap)
    data = [_map_trace(grid_map, size, opacity, colorscale, top, showscale=True, zmin=bottom)]
    # A wide photo in the page's ~480 px column needs less height than a square one.
    height_px = height or int(np.clip(40 + COLUMN_PX * h / w, 260, 640))
    if clickable:
        # A plain dict, not go.Scatter: validating its arrays took ~60 ms of every patch click.
        r, c = np.divmod(np.arange(rows * cols), cols)
        data.append(
            dict(
                type="scatter",
                x=(c + 0.5) * w / cols,
                y=(r + 0.5) * h / rows,
                mode="markers",
                marker=dict(size=_marker_px(size, (rows, cols), height_px), opacity=0, symbol="square"),
                customdata=np.stack([r, c], axis=1),
                text=[f"{v:.3f}" for v in np.asarray(grid_map).ravel()],
                hovertemplate="cell row %{customdata[0]}, col %{customdata[1]}<br>value %{text}<extra></extra>",
                showlegend=False,
            )
        )
    layout = dict(
        images=[
            dict(
                source=image_uri(shown), x=0, y=0, sizex=w, sizey=h, xref="x", yref="y", sizing="stretch", layer="below"
            )  # fmt: skip
        ],
        xaxis=dict(range=[0, w], visible=False, constrain="domain"),
        yaxis=dict(range=[h, 0], visible=False, scaleanchor="x"),
        height=height_px,
        margin=dict(l=0, r=0, t=36 if title else 8, b=0),
        clickmode="event+select",
        dragmode=False,
        plot_bgcolor="white",
    )
    if title:
        layout["title"] = dict(text=plot_text(title, MAX_TITLE), font=dict(size=14))
    if selected is not None:
        r0, c0 = selected
        layout["shapes"] = [
            dict(
                type="rect",
                x0=c0 * w / cols,
                x1=(c0 + 1) * w / cols,
                y0=r0 * h / rows,
                y1=(r0 + 1) * h / rows,
                line=dict(color="#00e5ff", width=3),
            )
        ]
    return go.Figure(data=data, layout=layout, _validate=False)


def small_multiples(
    image: Image.Image,
    maps: list[tuple[str, np.ndarray]],
    *,
    opacity: float = 0.5,
    colormap: str = "inferno",
    n_cols: int = 4,
    thumb_side: int = 256,
    shared_scale: bool = False,
) -> go.Figure:
    """One small overlay per (title, map), ``n_cols`` to a row; each map scaled to its own max.

    Laid out as ``make_subplots`` would (the same domains, spacing and titles), but built as plain
    dicts: ``make_subplots`` and one ``update_*axes`` call per panel took ~0.1 s for four panels, on
    every opacity, layer or patch change of the image page.
    """
    shown = display_image(image, max_side=thumb_side)
    if max(shown.size) > thumb_side:
        shown.thumbnail((thumb_side, thumb_side))
    uri, size = image_uri(shown, quality=85), display_frame(shown.size)
    w, h = size
    n = len(maps)
    n_cols = max(1, min(n_cols, n))
    n_rows = -(-n // n_cols)
    h_space, v_space = 0.02, 0.08 / n_rows
    width = (1 - h_space * (n_cols - 1)) / n_cols
    height = (1 - v_space * (n_rows - 1)) / n_rows
    top_all = max(float(np.max(m)) for _, m in maps) if shared_scale else None
    colorscale = fading_colorscale(colormap)
    data, images, titles = [], [], []
    layout: dict = {}
    for i, (title, grid_map) in enumerate(maps):
        row, col = divmod(i, n_cols)
        suffix = "" if i == 0 else str(i + 1)
        x_domain = [col * (width + h_space), col * (width + h_space) + width]
        y_top = 1 - row * (height + v_space)
        top = top_all if shared_scale else max(float(np.max(grid_map)), 1e-9)
        trace = _map_trace(grid_map, size, opacity, colorscale, top, showscale=False)
        data.append(trace | dict(xaxis=f"x{suffix}", yaxis=f"y{suffix}"))
        images.append(
            dict(
                source=uri,
                x=0,
                y=0,
                sizex=w,
                sizey=h,
                xref=f"x{suffix}",
                yref=f"y{suffix}",
                sizing="stretch",
                layer="below",
            )  # fmt: skip
        )
        layout[f"xaxis{suffix}"] = dict(
            domain=x_domain, anchor=f"y{suffix}", range=[0, w], visible=False, constrain="domain"
        )
        layout[f"yaxis{suffix}"] = dict(
            domain=[y_top - height, y_top], anchor=f"x{suffix}", range=[h, 0], visible=False, scaleanchor=f"x{suffix}"
        )
        titles.append(
            dict(
                text=plot_text(title, MAX_TITLE),
                x=sum(x_domain) / 2,
                y=y_top,
                xref="paper",
                yref="paper",
                xanchor="center",
                yanchor="bottom",
                showarrow=False,
                font=dict(size=12),
            )  # fmt: skip
        )
    # Panels keep the image's shape: on a ~1000 px wide page each is about 1000 / n_cols wide.
    row_height = int(min(260, 1000 / n_cols * h / w + 10))
    layout |= dict(
        images=images,
        annotations=titles,
        height=40 + n_rows * row_height,
        margin=dict(l=0, r=0, t=30, b=0),
        dragmode=False,
    )
    return go.Figure(data=data, layout=layout, _validate=False)


def predictions_bar(predictions: list[tuple[str, float]], k: int = 5, chosen: str | None = None) -> go.Figure:
    """The top ``k`` (label, probability) as horizontal bars, best on top; ``chosen`` highlighted.

    Labels are escaped and cut to 40 characters, and stay distinct (a category axis would merge equal ones).
    """
    top = predictions[:k][::-1]
    colours = ["#d62728" if label == chosen else "#4c78a8" for label, _ in top]
    fig = go.Figure(
        go.Bar(
            x=[p for _, p in top],
            y=unique_labels([label for label, _ in top], max_len=40),
            orientation="h",
            marker_color=colours,
            text=[f"{p:.1%}" for _, p in top],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    fig.update_layout(
        height=60 + 34 * len(top),
        margin=dict(l=0, r=10, t=10, b=10),
        xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"),
        yaxis=dict(type="category"),
    )
    return fig
