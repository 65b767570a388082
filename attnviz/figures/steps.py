"""Figures of the worked example: small annotated heatmaps (a number in every cell) and the softmax-scale bars.

Matrices from a real model are large (12 tokens × 384 dimensions), so :func:`matrix` shows
the first ``max_rows`` × ``max_cols`` cells and says so in its title; the page offers a toggle
to show everything and a download. Numbers are printed with plotly's ``texttemplate``, which
formats ``z`` in the browser: no text array is sent, only ``z`` as float32, so a chart stays a
few kilobytes. Past :data:`MAX_PRINTED` cells the numbers would not fit and are left to hover.

Clicking: Streamlit returns nothing for a click on a heatmap cell (docs/architecture.md), so the weights
matrix gets one invisible scatter trace with a point on every cell; ``marker.maxdisplayed=1``
keeps plotly from drawing a DOM node per point (hover and click still see each one).
"""

from __future__ import annotations

import re

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale

from attnviz.figures.labels import plot_text, unique_labels

#: Numbers are printed in the cells of matrices up to this many cells (and ``printed_cols`` columns).
MAX_PRINTED = 600
#: Axes with more labels than this show every k-th one (hover still names each cell).
MAX_TICKS = 32
#: A chart in a third of the page (``printed_cols`` 8 or fewer, as the worked example's Q, K, V and weights)
#: is about this wide on a 1280-pixel screen, whatever width its figure asks for.
THIRD_PX = 260
#: Upright column labels need about this many pixels each (a 10-12 px font and a gap).
UPRIGHT_LABEL_PX = 13
#: Weight matrices up to this many tokens get the click layer (64 x 64: ~40 kB).
MAX_CLICKABLE = 64
# Colour scales as the lists of stops that plotly.py makes of their names when it validates a trace:
# these figures are sent unvalidated (:func:`_figure`), and plotly.js reads some bare names its own way
# (a bare "Blues" runs dark to light there).
SIGNED = get_colorscale("RdBu_r")  # blue negative, white 0, red positive
WEIGHTS = get_colorscale("Blues")
HIGHLIGHT = "#ff7f0e"
CELL = "#d62728"
MONO = dict(font=dict(family="monospace"))
#: Cells of keys a query cannot see (a decoder's later tokens): the plot's grey background, no
#: number, as on the text page (figures/matrix.py), so that they never read as a computed weight of 0.
NOT_VISIBLE = "#d9d9d9"


CELL_W, CELL_H = 64, 28


def _height(rows: int) -> int:
    return int(min(1400, max(150, CELL_H * rows + 70)))


def _width(cols: int, labels: list[str], title: str) -> int:
    """Wide enough for the cells, the row labels and the title, so small matrices are not stretched."""
    label = 7 * max((len(t) for t in labels), default=2) + 40
    title_px = 7 * len(re.sub(r"<[^>]+>", "", title)) + 30
    return int(min(1600, max(260, CELL_W * cols + label, title_px)))


def _title(title: str, shape: tuple[int, int], shown: tuple[int, int]) -> str:
    rows, cols = shape
    size = f"{rows} × {cols}"
    if shown != shape:
        size += f", first {shown[0]} × {shown[1]} shown"
    return f"{title} <span style='font-size:12px;color:#666'>({size})</span>"


def _axis_labels(labels: list[str] | None, count: int) -> list[str]:
    return unique_labels(labels[:count]) if labels is not None else [str(i) for i in range(count)]


def _outline(r0: float, r1: float, c0: float, c1: float, color: str, width: int = 3) -> dict:
    return dict(type="rect", x0=c0, x1=c1, y0=r0, y1=r1, line=dict(color=color, width=width), layer="above")


def _figure(traces: list[dict], layout: dict) -> go.Figure:
    """One ``go.Figure`` from plain dicts of known-good keys, not validated.

    A worked example's head change rebuilds nine of these figures, and validating them was a quarter of
    its server time (py-spy: ~40 ms of ~140 ms). ``tests/figures/test_steps_figures.py`` checks that
    validation would change nothing in any of them.
    """
    return go.Figure(data=traces, layout=layout, _validate=False)


def matrix(
    m: np.ndarray,
    title: str,
    *,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    max_rows: int | None = None,
    max_cols: int | None = None,
    rows_highlighted: tuple[int, ...] = (),
    cell: tuple[int, int] | None = None,
    signed: bool = True,
    zmax: float | None = None,
    digits: int = 2,
    x_title: str | None = None,
    y_title: str | None = None,
    printed_cols: int = 24,
    hidden: np.ndarray | None = None,
    numbers: str = "all",
) -> go.Figure:
    """An annotated heatmap of ``m (rows, cols)``; ``-inf`` cells (masked) are blank and printed "−∞".

    Args:
        max_rows, max_cols: show only the first rows / columns (None: all).
        rows_highlighted: rows to outline (the q_i and k_j rows a chosen weight came from).
        printed_cols: print numbers only up to this many columns (8 for a chart in a third of the page,
            whose column labels are then spaced for :data:`THIRD_PX`).
        cell: ``(row, col)`` to outline.
        signed: diverging colours centred on 0; otherwise 0..``zmax`` in blues (weights).
        hidden: bool ``(rows, cols)``, True for cells drawn as not visible (grey, no number).
        numbers: ``"all"`` (a number in every cell, while they fit) or ``"followed"`` (numbers only in
            ``rows_highlighted`` and the row of ``cell``; the other cells by colour, and on hover).
    """
    traces, layout = _matrix_parts(
        m,
        title,
        row_labels=row_labels,
        col_labels=col_labels,
        max_rows=max_rows,
        max_cols=max_cols,
        rows_highlighted=rows_highlighted,
        cell=cell,
        signed=signed,
        zmax=zmax,
        digits=digits,
        x_title=x_title,
        y_title=y_title,
        printed_cols=printed_cols,
        hidden=hidden,
        numbers=numbers,
    )
    return _figure(traces, layout)


def _matrix_parts(
    m,
    title,
    *,
    row_labels,
    col_labels,
    max_rows,
    max_cols,
    rows_highlighted,
    cell,
    signed,
    zmax,
    digits,
    x_title,
    y_title,
    printed_cols,
    hidden,
    numbers="all",
) -> tuple[list[dict], dict]:
    """:func:`matrix`'s traces and layout as plain dicts (another figure adds its own before building)."""
    m = np.asarray(m, dtype=np.float64)
    n_rows, n_cols = m.shape
    r, c = min(n_rows, max_rows or n_rows), min(n_cols, max_cols or n_cols)
    shown = m[:r, :c]  # (r, c)
    grey = np.zeros(shown.shape, dtype=bool) if hidden is None else np.asarray(hidden, dtype=bool)[:r, :c]
    masked = ~np.isfinite(shown) & ~grey
    z = np.where(masked | grey, np.nan, shown).astype(np.float32)  # JSON has no -inf; NaN draws as an empty cell
    finite = shown[~masked & ~grey]
    top = zmax if zmax is not None else (float(np.abs(finite).max()) if finite.size else 1.0) or 1.0
    printed = r * c <= MAX_PRINTED and c <= printed_cols
    heat = dict(
        type="heatmap",
        z=z,
        x=np.arange(c, dtype=np.int16),
        y=np.arange(r, dtype=np.int16),
        colorscale=SIGNED if signed else WEIGHTS,
        zmin=-top if signed else 0.0,
        zmax=top,
        showscale=False,
        textfont=dict(size=11),
        hovertemplate=f"row %{{y}}, column %{{x}}: %{{z:.{digits + 2}f}}<extra></extra>",
        xgap=1,
        ygap=1,
    )
    if numbers not in ("all", "followed"):
        raise ValueError(f'numbers must be "all" or "followed", not {numbers!r}')
    followed = _followed_rows(rows_highlighted, cell, r) if numbers == "followed" else None
    if printed and followed is None:
        heat["texttemplate"] = f"%{{z:.{digits}f}}"
    traces = [heat]
    if printed and followed is not None:
        traces.append(_row_numbers(shown, followed, grey, top, signed, digits))  # and their "−∞"
    elif masked.any() and printed:
        rows_m, cols_m = np.nonzero(masked)
        traces.append(
            dict(type="scatter", x=cols_m, y=rows_m, mode="text", text=["−∞"] * len(rows_m), hoverinfo="skip",
                 showlegend=False)
        )  # fmt: skip
    shapes = [_outline(row - 0.5, row + 0.5, -0.5, c - 0.5, HIGHLIGHT) for row in rows_highlighted if 0 <= row < r]
    if cell is not None and 0 <= cell[0] < r and 0 <= cell[1] < c:
        shapes.append(_outline(cell[0] - 0.5, cell[0] + 0.5, cell[1] - 0.5, cell[1] + 0.5, CELL))
    layout = _layout(
        _title(title, (n_rows, n_cols), (r, c)),
        _axis_labels(row_labels, r),
        _axis_labels(col_labels, c),
        chart_px=THIRD_PX if printed_cols <= 8 else None,
    )
    layout["xaxis"]["title"] = dict(standoff=4, **({"text": x_title} if x_title is not None else {}))
    layout["yaxis"]["title"] = dict(standoff=4, **({"text": y_title} if y_title is not None else {}))
    if shapes:
        layout["shapes"] = shapes
    if grey.any():
        layout["plot_bgcolor"] = NOT_VISIBLE
    return traces, layout


def _followed_rows(rows_highlighted: tuple[int, ...], cell: tuple[int, int] | None, r: int) -> list[int]:
    rows = {row for row in rows_highlighted if 0 <= row < r}
    if cell is not None and 0 <= cell[0] < r:
        rows.add(cell[0])
    return sorted(rows)


def _row_numbers(shown: np.ndarray, rows: list[int], grey: np.ndarray, top: float, signed: bool, digits: int) -> dict:
    """The numbers of ``rows`` only ("−∞" for a masked cell, nothing on a grey one), as one text trace:
    a number per cell costs the browser the same whether the heatmap prints it or this trace, and a
    worked example's real head drew ~1,400 of them on every head change, though the page follows one row."""
    rr, cc = np.nonzero(~grey[rows])
    rr = np.asarray(rows, dtype=np.int64)[rr]
    values = shown[rr, cc]
    finite = np.isfinite(values)
    # Light text on dark cells (either end of the diverging scale, the top of the sequential one), as
    # plotly's automatic text colour on the heatmap's own numbers.
    dark = finite & ((np.abs(values) if signed else values) / top > 0.6)
    return dict(
        type="scatter",
        x=cc.astype(np.int16),
        y=rr.astype(np.int16),
        mode="text",
        text=[f"{v:.{digits}f}" if ok else "−∞" for v, ok in zip(values, finite, strict=True)],
        textfont=dict(size=11, color=np.where(dark, "white", "#262730").tolist()),
        hoverinfo="skip",
        showlegend=False,
    )


def _layout(
    title: str, rows: list[str], cols: list[str], chart_px: int | None = None, width: int | None = None
) -> dict:
    """The layout of a matrix with ``rows`` and ``cols`` labels (``width``: the figure's, if not the cells')."""
    width = width or _width(len(cols), rows, title)
    # Numeric axes labelled by ticktext: repeated tokens keep their own rows, and a click's x/y
    # are the column and row numbers.
    xstep, ystep = -(-len(cols) // MAX_TICKS), -(-len(rows) // (2 * MAX_TICKS))
    shown = cols[::xstep]
    # Side by side, labels need about 7 px a character and a gap. Past the plot's width (a chart wider
    # than 1000 px stretches to the page: about 800 px on a 1280-pixel screen) they ran together
    # ("108120132"), so they stand upright instead.
    chart_px = chart_px or min(width, 800)
    plot_px = max(60, chart_px - 7 * max((len(t) for t in rows), default=2) - 40)
    upright = len(shown) * (7 * max((len(t) for t in shown), default=0) + 8) > plot_px
    if upright and len(shown) * UPRIGHT_LABEL_PX > plot_px:
        # Even upright, 32 labels in a third of a 1280-pixel page ran together ("d0d1d2..."): every k-th.
        xstep = max(xstep, -(-len(cols) * UPRIGHT_LABEL_PX // plot_px))
        shown = cols[::xstep]
    xaxis = dict(
        tickmode="array",
        tickvals=list(range(0, len(cols), xstep)),
        ticktext=shown,
        side="top",
        range=[-0.5, len(cols) - 0.5],
        automargin=upright,
    )
    if upright:
        xaxis["tickangle"] = -90
    return dict(
        title=dict(text=title, font=dict(size=14), yref="container", y=1, yanchor="top", pad=dict(t=8)),
        height=_height(len(rows)),
        width=width,
        margin=dict(l=10, r=10, t=62, b=10),
        hoverlabel=MONO,
        dragmode=False,
        showlegend=False,
        xaxis=xaxis,
        yaxis=dict(
            tickmode="array",
            tickvals=list(range(0, len(rows), ystep)),
            ticktext=rows[::ystep],
            range=[len(rows) - 0.5, -0.5],
        ),
    )


def weights(
    w: np.ndarray,
    tokens: list[str],
    *,
    query: int | None = None,
    key: int | None = None,
    max_tokens: int | None = None,
    title: str = "Weights A = softmax(M)",
    visible: np.ndarray | None = None,
    numbers: str = "all",
) -> go.Figure:
    """The attention weights ``(n, n)``, queries down, keys across, with the chosen cell outlined.

    Up to :data:`MAX_CLICKABLE` tokens an invisible point sits on every cell: hovering names the
    q_i and k_j rows the weight came from, and a click returns ``x`` = key j and ``y`` = query i.
    ``visible`` (bool ``(n, n)``, a decoder's causal mask): keys a query cannot see are grey
    cells with no number and no point.
    """
    traces, layout = _matrix_parts(
        w,
        title,
        row_labels=tokens,
        col_labels=tokens,
        max_rows=max_tokens,
        max_cols=max_tokens,
        rows_highlighted=(query,) if query is not None else (),
        cell=(query, key) if query is not None and key is not None else None,
        signed=False,
        zmax=1.0,
        digits=2,
        x_title=None,
        y_title="query i",
        printed_cols=24,
        hidden=None if visible is None else ~np.asarray(visible, dtype=bool),
        numbers=numbers,
    )
    r, c = (min(s, max_tokens or s) for s in w.shape)
    if r <= MAX_CLICKABLE and c <= MAX_CLICKABLE:
        rows, cols = np.divmod(np.arange(r * c, dtype=np.int32), c)
        if visible is not None:
            keep = np.asarray(visible, dtype=bool)[rows, cols]
            rows, cols = rows[keep], cols[keep]
        traces.append(
            dict(
                type="scatter",
                x=cols.astype(np.int16),
                y=rows.astype(np.int16),
                mode="markers",
                marker=dict(opacity=0, size=14, color=np.asarray(w, np.float32)[rows, cols], maxdisplayed=1),
                # Hover shows an axis value as its tick label (the token); customdata adds the numbers.
                customdata=np.stack([rows, cols], axis=1).astype(np.int16),
                hovertemplate="A[%{customdata[0]}, %{customdata[1]}] = %{marker.color:.4f}"
                "<br>from q_%{customdata[0]} (%{y}) · k_%{customdata[1]} (%{x})"
                "<br>click to follow it through every step<extra></extra>",
                showlegend=False,
            )
        )
        layout["clickmode"] = "event+select"
        traces[0]["hoverinfo"] = "skip"  # the click layer's hover says more
    return _figure(traces, layout)


def softmax_scales(
    probs: dict[str, np.ndarray], tokens: list[str], title: str = "One row of weights at two scales"
) -> go.Figure:
    """Bars of one softmax row per label (e.g. the model's scale and the chosen one)."""
    labels = unique_labels(tokens)
    bars = [
        dict(
            type="bar",
            x=list(range(len(labels))),
            y=np.asarray(p, np.float32),
            name=plot_text(name, 40),
            texttemplate="%{y:.2f}",
            textposition="outside",
            hovertemplate="%{y:.4f}<extra>%{fullData.name}</extra>",
        )
        for name, p in probs.items()
    ]
    layout = dict(
        title=dict(text=title, font=dict(size=14)),
        barmode="group",
        height=300,
        margin=dict(l=10, r=10, t=40, b=10),
        yaxis=dict(range=[0, 1.2 * max(float(np.max(p)) for p in probs.values())], title=dict(text="weight")),
        legend=dict(orientation="h", y=1.02, yanchor="bottom", x=1, xanchor="right"),
        dragmode=False,
        xaxis=dict(tickmode="array", tickvals=list(range(len(labels))), ticktext=labels),
    )
    return _figure(bars, layout)


# ---------------------------------------------------------------- a decoder's RoPE step

#: A cyclic scale for angles: 0 and 2π are the same colour, as they are the same turn.
CYCLIC = get_colorscale("Twilight")
BEFORE, AFTER = "#9e9e9e", "#d62728"


def rope_angles(
    angles: np.ndarray,
    tokens: list[str],
    inv_freq: np.ndarray,
    *,
    max_tokens: int | None = None,
    rows_highlighted: tuple[int, ...] = (),
    title: str = "RoPE angle m·θ_p of each pair p at each position m (mod 2π); fast pairs left, slow right",
) -> go.Figure:
    """The angles ``(n, d/2)`` (position m × θ_i, radians) as a heatmap of the turn mod 2π.

    Columns are the pairs, fastest (θ_0 = 1 rad per position) on the left; hover gives the
    unreduced angle and θ_i.
    """
    angles = np.asarray(angles, dtype=np.float64)
    n, half = angles.shape
    r = min(n, max_tokens or n)
    shown = angles[:r]  # (r, d/2)
    turn = np.mod(shown, 2 * np.pi).astype(np.float32)
    theta = np.broadcast_to(np.asarray(inv_freq, np.float64)[None, :], shown.shape)
    heat = dict(
        type="heatmap",
        z=turn,
        x=np.arange(half, dtype=np.int16),
        y=np.arange(r, dtype=np.int16),
        colorscale=CYCLIC,
        zmin=0.0,
        zmax=float(2 * np.pi),
        customdata=np.stack([shown, theta], axis=-1).astype(np.float32),
        hovertemplate="position %{y}, pair %{x}: %{z:.3f} rad (mod 2π)<br>"
        "= %{y} × θ %{customdata[1]:.4g} = %{customdata[0]:.3f} rad<extra></extra>",
        colorbar=dict(title=dict(text="rad"), tickvals=[0, np.pi, 2 * np.pi], ticktext=["0", "π", "2π"], len=0.8),
        xgap=1,
        ygap=1,
    )
    pair_labels = [f"p{i}" for i in range(half)]
    title = _title(title, (n, half), (r, half))
    rows = _axis_labels(tokens, r)
    width = min(1600, max(_width(half, rows, title), 22 * half + 220))
    layout = _layout(title, rows, pair_labels, chart_px=min(_width(half, rows, title), 800), width=width)
    layout["yaxis"]["title"] = dict(text="position m", standoff=4)
    shapes = [_outline(row - 0.5, row + 0.5, -0.5, half - 0.5, HIGHLIGHT) for row in rows_highlighted if 0 <= row < r]
    if shapes:
        layout["shapes"] = shapes
    return _figure([heat], layout)


def _arrow(x: float, y: float, color: str, name: str, dash: str | None = None) -> go.Scatter:
    return go.Scatter(
        x=[0.0, x],
        y=[0.0, y],
        mode="lines+markers",
        line=dict(color=color, width=3, dash=dash),
        marker=dict(symbol=["circle", "arrow"], size=[4, 13], angleref="previous", color=color),
        name=name,
        hovertemplate=f"{name}: (%{{x:.3f}}, %{{y:.3f}})<extra></extra>",
        showlegend=False,
    )


def _radians(v: float) -> str:
    """An angle: two decimals, or two significant digits for the slow pairs' tiny turns."""
    return f"{v:.2f}" if v == 0 or abs(v) >= 0.01 else f"{v:.1e}"


def rope_pairs(vectors: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], pairs: list[int]) -> go.Figure:
    """The angle picture: chosen pairs of a few vectors as arrows in their planes, before and after RoPE.

    Args:
        vectors: ``(name, before (d,), after (d,), angles (d/2,))`` per row of pictures, e.g.
            ``("q_3", q_before[3], q[3], angles[3])``: the vector as projected, rotated, and the
            angle ``m·θ_i`` of each pair at its position ``m``.
        pairs: the pair indices to draw, one column each (pair ``i`` is dims ``i`` and ``i + d/2``).

    The grey arrow is ``(x_i, x_{i+d/2})`` as projected, the red one the same pair after the
    rotation; the arc between them is the angle, counter-clockwise (mod 2π).
    """
    from plotly.subplots import make_subplots

    half = int(np.shape(vectors[0][1])[0]) // 2
    titles = [
        f"{plot_text(name, 12)} · pair {p} (d{p}, d{p + half}): {_radians(float(angles[p]))} rad"
        for name, _before, _after, angles in vectors
        for p in pairs
    ]
    fig = make_subplots(
        rows=len(vectors), cols=len(pairs), subplot_titles=titles, horizontal_spacing=0.04, vertical_spacing=0.14
    )
    for r, (name, before, after, _angles) in enumerate(vectors, start=1):
        for c, p in enumerate(pairs, start=1):
            a0, b0 = float(before[p]), float(before[p + half])
            a1, b1 = float(after[p]), float(after[p + half])
            radius = max(np.hypot(a0, b0), 1e-9)
            start = np.arctan2(b0, a0)
            turn = float(np.mod(np.arctan2(b1, a1) - start, 2 * np.pi))  # the rotation, counter-clockwise
            arc = start + np.linspace(0.0, turn, 48)
            fig.add_trace(
                go.Scatter(
                    x=0.35 * radius * np.cos(arc),
                    y=0.35 * radius * np.sin(arc),
                    mode="lines",
                    line=dict(color="#555", width=1.5),
                    hoverinfo="skip",
                    showlegend=False,
                ),
                row=r,
                col=c,
            )
            fig.add_trace(_arrow(a0, b0, BEFORE, f"{name} before"), row=r, col=c)
            fig.add_trace(_arrow(a1, b1, AFTER, f"{name} after"), row=r, col=c)
            lim = 1.2 * radius
            fig.update_xaxes(range=[-lim, lim], row=r, col=c, zeroline=True, showticklabels=False, showgrid=False)
            fig.update_yaxes(
                range=[-lim, lim],
                row=r,
                col=c,
                zeroline=True,
                showticklabels=False,
                showgrid=False,
                scaleanchor=f"x{(r - 1) * len(pairs) + c if (r, c) != (1, 1) else ''}",
                scaleratio=1,
            )
            fig.add_annotation(
                text=f"turned {turn:.2f} rad (mod 2π)",
                x=0,
                y=-lim,
                yanchor="bottom",
                showarrow=False,
                font=dict(size=11, color="#333"),
                row=r,
                col=c,
            )
    fig.update_annotations(font_size=11)
    fig.update_layout(
        height=250 * len(vectors) + 40,
        width=max(520, 230 * len(pairs)),
        margin=dict(l=10, r=10, t=50, b=10),
        hoverlabel=MONO,
        dragmode=False,
        showlegend=False,
    )
    return fig
