"""The one "Figure" download control every view shares: PNG, SVG and PDF buttons and a paper-ready switch.

A page hands it ``render(fmt, paper) -> bytes`` (a writer of :mod:`attnviz.export`); the control
draws a popover button (keyboard-reachable like any button) that holds the switch and the three
buttons. Files are made only when their button is clicked (Streamlit's deferred download: the
callable runs on the click), so a rerun renders nothing. A view whose downloads must survive reruns
(the faithfulness panel's, drawn while other work reruns the page) passes ``keep``, a dict kept
with its result: each (format, paper) file is then made once, on first draw, and handed over as
bytes (Streamlit serves them from its media store on the click; the page itself carries only the
file's URL).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from attnviz.export.figure_formats import FORMATS, MIME_TYPES, PAPER_MIN_FONT

#: What each format is for, in each button's help.
FORMAT_HELP = {
    "png": "A picture at 150 dpi, for slides and documents.",
    "svg": "Vector, for the web and for editing in Inkscape or Illustrator; text is turned into outlines, so it "
    "looks the same on any machine.",
    "pdf": "Vector, for LaTeX and print; the fonts (DejaVu) are embedded.",
}
PAPER_HELP = (
    f"White background, no text smaller than {PAPER_MIN_FONT:g} pt, and a colour bar on every map "
    "(small multiples share one). Applies to all three formats."
)


def figure_downloads(
    render: Callable[[str, bool], bytes],
    *,
    stem: str,
    key: str,
    label: str = "Figure",
    container=None,
    keep: dict | None = None,
) -> None:
    """Draw the figure download control in ``container`` (default: the page at this point).

    ``render(fmt, paper)``: the file's bytes, ``fmt`` one of ``"png"``, ``"svg"``, ``"pdf"``.
    ``stem``: the file name without its extension. ``key``: unique on the page (the switch's key
    is ``f"{key}_paper"``). ``keep``: see the module's docstring.
    """
    where = container if container is not None else st
    box = where.popover(
        f"{label}: PNG, SVG, PDF",
        icon=":material/image:",
        help="Download this view as a picture (PNG) or a vector file (SVG, PDF).",
        width="stretch",
    )
    paper = box.toggle("Paper-ready", key=f"{key}_paper", help=PAPER_HELP)
    row = box.container(horizontal=True, wrap=True)  # side by side; they wrap in a narrow popover, never cut
    suffix = "-paper" if paper else ""
    for fmt in FORMATS:
        if keep is None:
            data, extra = (lambda fmt=fmt: render(fmt, paper)), {}
        else:
            if (fmt, paper) not in keep:
                keep[(fmt, paper)] = render(fmt, paper)
            data, extra = keep[(fmt, paper)], {"on_click": "ignore"}
        row.download_button(
            fmt.upper(),
            data,
            file_name=f"{stem}{suffix}.{fmt}",
            mime=MIME_TYPES[fmt],
            key=f"{key}_{fmt}",
            help=FORMAT_HELP[fmt],
            **extra,
        )
