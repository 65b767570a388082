"""The head view: tokens in two columns joined by lines whose opacity is the weight.

In the spirit of BertViz's head view, but drawn by Plotly from a few arrays. A row of
weights sums to 1, so at most ``1 / threshold`` lines leave any token: the figure stays
small however long the sentence. Plotly sets opacity per trace, not per segment, so the
lines of each head are binned into :data:`OPACITY_LEVELS` traces.

Everything a reader does with the lines happens in the browser, with no rerun of the page (as in
BertViz's head view, whose hover runs in JavaScript): hovering a line near its query end names it
("the → cat: 0.31", an invisible point per line at :data:`HOVER_X`); the "Lines from" menu (a Plotly
``updatemenus`` dropdown, method ``update``) keeps only one query token's lines and marks the token;
a click on a head in the legend hides its lines, a double click shows that head alone.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from attnviz.figures.labels import plot_text
from attnviz.figures.matrix import HOVER_FONT
from attnviz.text.views import AttentionView

OPACITY_LEVELS = 5
HEAD_COLORS = qualitative.Dark24
#: Where along a line (0: the query, 1: the key) its hover point sits: near the query, where the lines
#: leaving one token have already fanned out, so each can be pointed at.
HOVER_X = 0.15
#: The "Lines from" menu carries every line twice more (each token's, and every token's to go back), so it
#: is built up to this many query tokens and lines; past them the page's "Only lines from the query token"
#: does the same on the server.
MENU_TOKENS, MENU_LINES = 512, 20_000
MARK = "rgba(214,39,40,0.15)"  # the chosen query token's band


def head_color(head: int) -> str:
    return HEAD_COLORS[head % len(HEAD_COLORS)]


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def segments(
    weights: np.ndarray, threshold: float, query: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines to draw for one head ``(q, k)``: (query rows, key rows, weights) at or above threshold."""
    if threshold <= 0:
        raise ValueError("threshold must be above 0: at 0 every one of the n² lines would be drawn")
    if query is None:
        rows, cols = np.nonzero(weights >= threshold)
    else:
        cols = np.flatnonzero(weights[query] >= threshold)
        rows = np.full_like(cols, query)
    return rows, cols, weights[rows, cols]


def head_lines(
    view: AttentionView,
    layer: int,
    heads: list[int],
    *,
    threshold: float = 0.05,
    query: int | None = None,
) -> go.Figure:
    """Lines from query tokens (left) to key tokens (right) for the chosen heads of ``layer``.

    Args:
        heads: which heads to draw, each in its own colour.
        threshold: weights below it are not drawn.
        query: draw only the lines leaving this query row (None: all rows, and the "Lines from"
            menu that picks one row in the browser).
    """
    n_q, n_k = len(view.query_tokens), len(view.key_tokens)
    queries = [plot_text(t) for t in view.query_tokens]
    keys = [plot_text(t) for t in view.key_tokens]
    traces: list[go.Scatter] = []
    # Per trace whose data the menu swaps: (trace index, query row of each segment, its y, its hover text).
    swapped: list[tuple[int, np.ndarray, np.ndarray, list[str] | None]] = []
    # Per head, bucket lines by weight so each bucket is one trace with one opacity.
    edges = np.linspace(threshold, 1.0, OPACITY_LEVELS + 1)
    for h in heads:
        rows, cols, w = segments(view.weights[layer, h], threshold, query)  # rows ascending
        bucket = np.clip(np.searchsorted(edges, w, side="right") - 1, 0, OPACITY_LEVELS - 1)
        for b in range(OPACITY_LEVELS):
            pick = bucket == b
            if not pick.any():
                continue
            m = int(pick.sum())
            # Each segment is (0, row) -> (1, col) followed by a NaN gap.
            x = np.tile(np.array([0.0, 1.0, np.nan], dtype=np.float32), m)
            y = np.empty(3 * m, dtype=np.float32)
            y[0::3], y[1::3], y[2::3] = rows[pick], cols[pick], np.nan
            mid = float(w[pick].mean())  # the bucket's typical weight sets its opacity and width
            alpha = 0.12 + 0.88 * mid
            swapped.append((len(traces), rows[pick], y, None))
            traces.append(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    line=dict(color=_rgba(head_color(h), alpha), width=0.8 + 2.5 * mid),
                    hoverinfo="skip",
                    name=f"head {h}",
                    legendgroup=f"head {h}",
                    showlegend=False,
                )
            )
        if len(rows):
            # One invisible hover point per line, HOVER_X of the way from its query to its key.
            text = [f"{queries[r]} → {keys[c]}: {a:.2f}" for r, c, a in zip(rows, cols, w, strict=True)]
            hover_y = (rows + HOVER_X * (cols - rows)).astype(np.float32)
            swapped.append((len(traces), rows, hover_y, text))
            traces.append(
                go.Scatter(
                    x0=HOVER_X,
                    dx=0,
                    y=hover_y,
                    text=text,
                    mode="markers",
                    marker=dict(opacity=0, size=8, color=head_color(h)),
                    hovertemplate=f"%{{text}}<extra>head {h}</extra>",
                    name=f"head {h}",
                    legendgroup=f"head {h}",
                    showlegend=False,
                )
            )
        # One legend entry per head, drawn as a marker outside the plot.
        traces.append(
            go.Scatter(
                x=[None],
                y=[None],
                mode="lines",
                line=dict(color=head_color(h), width=3),
                name=f"head {h}",
                legendgroup=f"head {h}",
            )
        )
    selected = np.zeros(n_q, dtype=bool)
    if query is not None and 0 <= query < n_q:
        selected[query] = True
    traces.append(
        go.Scatter(
            x=np.zeros(n_q, dtype=np.float32),
            y=np.arange(n_q, dtype=np.int32),
            mode="text",
            text=queries,
            textposition="middle left",
            textfont=dict(color=np.where(selected, "#d62728", "#222").tolist()),
            cliponaxis=False,  # the first and last tokens' labels are never cut at the plot's edge
            hovertemplate="query: %{text}<extra></extra>",
            showlegend=False,
        )
    )
    traces.append(
        go.Scatter(
            x=np.ones(n_k, dtype=np.float32),
            y=np.arange(n_k, dtype=np.int32),
            mode="text",
            text=keys,
            textposition="middle right",
            cliponaxis=False,
            hovertemplate="key: %{text}<extra></extra>",
            showlegend=False,
        )
    )
    fig = go.Figure(data=traces)
    n = max(n_q, n_k)
    fig.update_layout(
        title=dict(
            text=f"Layer {layer}: lines from queries (left) to keys (right), weight ≥ {threshold:g}",
            x=0.5,  # centred, clear of the "Lines from" menu at the top left
            xanchor="center",
        ),
        height=int(max(320, min(2400, 20 * n + 140))),
        margin=dict(l=10, r=10, t=70, b=40),
        hoverlabel=HOVER_FONT,
        legend=dict(orientation="h", y=-0.01, x=0, yanchor="top"),
        plot_bgcolor="white",
        dragmode=False,
    )
    n_lines = sum(len(rows) for _, rows, _, text in swapped if text is not None)
    if query is None and swapped and n_q <= MENU_TOKENS and n_lines <= MENU_LINES:
        fig.update_layout(updatemenus=[_token_menu(queries, swapped)])
    fig.update_xaxes(visible=False, range=[-0.55, 1.55])
    fig.update_yaxes(visible=False, range=[n - 0.5, -0.5])
    return fig


def _listed(values: np.ndarray) -> list:
    """An array as a short JSON list, NaN as null (a gap between two lines), rows as integers and
    hover positions to 0.01 of a row: a menu's arguments are sent as plain JSON, where Plotly's typed
    arrays are not read."""
    out = []
    for v in values.tolist():
        out.append(None if v != v else int(v) if v == int(v) else round(v, 2))
    return out


def _token_menu(queries: list[str], swapped: list) -> dict:
    """The "Lines from" dropdown: every token's lines, or one query token's, swapped in the browser.

    Each button replaces the ``y`` (and, for hover points, the ``text``) of the traces in ``swapped``
    with the chosen token's part; ``x`` stays full length, and Plotly draws a trace to its shorter
    array. A band behind the token's label marks it. Nothing is sent to the server.
    """
    indices = [i for i, *_ in swapped]

    def button(label: str, token: int | None) -> dict:
        ys, texts = [], []
        for _, rows, y, text in swapped:
            per_point = 3 if text is None else 1  # a line is 3 values of y (query, key, gap); a hover point 1
            a, b = (0, len(rows)) if token is None else np.searchsorted(rows, [token, token + 1])
            ys.append(_listed(y[per_point * a : per_point * b]))
            texts.append(None if text is None else text[a:b])
        band = [] if token is None else [_band(token)]
        return dict(label=label, method="update", args=[{"y": ys, "text": texts}, {"shapes": band}, indices])

    buttons = [button("Lines from every token", None)]
    buttons += [button(f"Lines from {i}: {q}", i) for i, q in enumerate(queries)]
    return dict(
        type="dropdown",
        buttons=buttons,
        active=0,
        direction="down",
        showactive=True,
        x=0.0,  # top left: Streamlit's chart toolbar appears at the top right on hover, over anything there
        xanchor="left",
        y=1.0,
        yanchor="bottom",
        pad=dict(b=4),
        font=dict(size=12),
    )


def _band(token: int) -> dict:
    """A light band behind query token ``token``'s label (the labels sit left of x = 0)."""
    return dict(
        type="rect",
        xref="x",
        x0=-0.55,
        x1=0.0,
        yref="y",
        y0=token - 0.5,
        y1=token + 0.5,
        fillcolor=MARK,
        line=dict(width=0),
        layer="below",
    )
