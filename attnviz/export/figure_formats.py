"""One place that turns a matplotlib figure into the bytes of a file: PNG, SVG or PDF, plain or paper-ready.

Every figure writer of ``attnviz.export`` ends in :func:`save_figure`, so the three formats and the
paper-ready option mean the same thing for every view:

- **PNG**: 150 dpi, as the downloads always were.
- **SVG**: text converted to paths (``svg.fonttype="path"``): the file shows the same glyphs on a
  machine without matplotlib's bundled DejaVu fonts, and holds no ``<text>`` element.
- **PDF**: fonts embedded as TrueType subsets (``pdf.fonttype=42``, the DejaVu fonts that ship
  with matplotlib), which journals ask for (Type 3 fonts are often refused); no creation date, so
  the same figure gives the same bytes.
- **paper-ready** (any format): a white, opaque background and no text under
  :data:`PAPER_MIN_FONT` points. The writers add a colour bar to every map they draw when asked
  for paper (a grid of small multiples has none by default). Labels stay thinned to at most
  ``MAX_ROW_LABELS`` per axis (:func:`attnviz.export.png.label_ticks`), and figures are sized so
  that this many labels fit at the paper font size.

Rendering settings are passed per save, never left in matplotlib's global ``rcParams``; the few
that a backend reads from ``rcParams`` (the font types) are set under a lock for the one save.
"""

from __future__ import annotations

import io
import threading
import warnings

import matplotlib
from matplotlib.figure import Figure
from matplotlib.text import Text

#: The formats every figure writer takes, and their MIME types.
FORMATS = ("png", "svg", "pdf")
MIME_TYPES = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf"}
#: Dots per inch of a PNG (SVG and PDF are vector; their embedded images keep their own pixels).
PNG_DPI = 150
#: The smallest font a paper-ready figure holds, in points (journals ask for 7-8 pt at print size).
PAPER_MIN_FONT = 8.0

_VECTOR_RC = {"svg.fonttype": "path", "pdf.fonttype": 42, "svg.hashsalt": "attnviz"}
# The SVG and PDF backends read these from the global rcParams while they draw: one save at a time.
_VECTOR_LOCK = threading.Lock()


def check_format(fmt: str) -> str:
    """``fmt`` lower-cased, or ValueError naming the formats there are."""
    fmt = str(fmt).lower()
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


def make_paper_ready(fig: Figure, *, min_font: float = PAPER_MIN_FONT) -> None:
    """White, opaque background everywhere and every text at least ``min_font`` points."""
    fig.set_facecolor("white")
    fig.patch.set_alpha(1.0)
    for ax in fig.axes:
        ax.set_facecolor("white")
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < min_font:
            text.set_fontsize(min_font)


def save_figure(fig: Figure, fmt: str = "png", *, paper: bool = False) -> bytes:
    """``fig`` as the bytes of a ``fmt`` file (``"png"``, ``"svg"`` or ``"pdf"``), paper-ready if asked.

    The box is tight around what is drawn, so long labels are never cut off.
    """
    fmt = check_format(fmt)
    if paper:
        make_paper_ready(fig)
    buf = io.BytesIO()
    kwargs = {"format": fmt, "bbox_inches": "tight", "facecolor": "white" if paper else fig.get_facecolor()}
    if fmt == "png":
        kwargs["dpi"] = PNG_DPI
    elif fmt == "pdf":
        kwargs["metadata"] = {"CreationDate": None, "Creator": "attnviz"}
    else:
        kwargs["metadata"] = {"Date": None, "Creator": "attnviz"}
    with warnings.catch_warnings():
        # Glyphs missing from the default font (CJK, emoji) are drawn as boxes; not an error.
        warnings.simplefilter("ignore", UserWarning)
        if fmt == "png":
            fig.savefig(buf, **kwargs)
        else:
            with _VECTOR_LOCK, matplotlib.rc_context(_VECTOR_RC):
                fig.savefig(buf, **kwargs)
    return buf.getvalue()


def file_name(stem: str, fmt: str) -> str:
    """``stem`` with the extension of ``fmt``."""
    return f"{stem}.{check_format(fmt)}"
