"""Token text and other untrusted text made safe and unique for Plotly labels.

Plotly reads a few HTML tags (``<b>``, ``<br>``, ``<a href>``) and entities in labels, titles,
hover and tick text, and renders text wrapped in ``$...$`` as LaTeX, so user text is escaped
before it goes into a figure: a token like ``<b>`` must show as the four characters, not as
bold. Model-supplied strings (an image model card's class names, a hub ViT's ``id2label``) are
untrusted in the same way and go through the same functions.
"""

from __future__ import annotations

import html
import re

# Control characters, and bidi overrides/isolates that would reverse the text drawn after them.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

ZWSP = "\u200b"  # zero-width space: invisible, but makes two labels differ
MAX_LABEL = 24
#: Titles are cut later than axis labels: a panel title has the width of its panel.
MAX_TITLE = 120


def plot_text(text: str, max_len: int = MAX_LABEL) -> str:
    """Escape ``text`` for a Plotly label or hover, shortened to ``max_len`` characters."""
    text = _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)  # show them, do not obey them
    if len(text) > max_len:
        text = text[: max_len - 1] + "…"
    safe = html.escape(text, quote=False)
    # A leading "$" could start LaTeX rendering; a zero-width space in front disarms it.
    return ZWSP + safe if safe.startswith("$") else safe


def unique_labels(tokens: list[str], max_len: int = MAX_LABEL) -> list[str]:
    """Escaped labels, made unique by zero-width spaces so a categorical axis keeps repeats.

    Without this, the two "the" of "the cat sat on the mat" would collapse into one column
    (and two long class names cut to the same ``max_len`` characters into one bar).
    """
    seen: set[str] = set()
    out = []
    for token in tokens:
        label = plot_text(token, max_len)
        while label in seen:
            label += ZWSP
        seen.add(label)
        out.append(label)
    return out
