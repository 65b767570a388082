"""Text boxes that always reach the server, and a word when a character in one was lost.

Imports nothing but Streamlit: the worked example's toy mode installs the guard before PyTorch is
imported (:mod:`attnviz.ui.worked_toy`).
"""

from __future__ import annotations

import streamlit as st

#: U+FFFD, the mark decoders (and :data:`_WELL_FORMED_JS`) put in place of a character they could not read.
REPLACEMENT = "\ufffd"

# Half of a UTF-16 surrogate pair in a text box (text cut in the middle of an emoji, pasted)
# cannot reach the server: the browser encodes it as bad UTF-8, Streamlit's server refuses the
# whole message and closes the connection, and the page silently stops following every widget
# until it is reloaded. This listener runs before Streamlit's (capture phase, on the document)
# and replaces such a half with U+FFFD, which the pages then point out (:func:`replacement_notice`).
# The prototype's value setter is used so that React sees the change. A constant: no user text in it,
# and no "<" (DOMPurify, which Streamlit runs over st.html, drops a script whose text holds "<!" or "</").
_WELL_FORMED_JS = """<script>
(() => {
  if (window.__attnvizWellFormed) return;
  window.__attnvizWellFormed = true;
  // Pairs match first and are kept; what is left of the range is a lone half.
  const halves = /[\\ud800-\\udbff][\\udc00-\\udfff]|[\\ud800-\\udfff]/g;
  const fix = (t) => (t.toWellFormed ? t.toWellFormed() : t.replace(halves, (m) => (m.length === 2 ? m : "\\ufffd")));
  document.addEventListener("input", (event) => {
    const box = event.target;
    if (!(box instanceof HTMLTextAreaElement || box instanceof HTMLInputElement)) return;
    const fixed = fix(box.value);
    if (fixed === box.value) return;
    const proto = box instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, "value").set.call(box, fixed);
  }, true);
})();
</script>"""


def guard_text_boxes() -> None:
    """Install the page's listener that keeps text boxes sendable (see :data:`_WELL_FORMED_JS`)."""
    st.html(_WELL_FORMED_JS, unsafe_allow_javascript=True)


def replacement_notice(text: str | None, what: str) -> None:
    """Say so when ``text`` holds U+FFFD: a character was lost before the model saw the text."""
    if text and REPLACEMENT in text:
        st.info(
            f"The {what} holds “{REPLACEMENT}” (U+FFFD), the mark put in place of a character that could not be "
            "read, such as half of an emoji: the model sees that mark, not what was meant. Delete it, or copy "
            "the text again from its source.",
            icon=":material/warning:",
        )
