"""Showing user text and errors without Markdown, HTML or LaTeX taking effect."""

from __future__ import annotations

import logging
import re
import threading
import time

import streamlit as st

from attnviz.errors import InputError

log = logging.getLogger("attnviz")

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$:&])")
_BETWEEN_HYPHENS = re.compile(r"(?<=\\-)(?=\\-)")  # between two escaped hyphens


def configure_logging() -> None:
    """Send the "attnviz" logger's records to the server's stderr, with time and level.

    Without a handler Python prints only the bare message of WARNING and above. This is the
    log that holds what visitors are not shown (``client.showErrorDetails = "none"``).
    Records still propagate, so pytest's caplog and a host's own logging see them too.
    """
    if any(getattr(h, "_attnviz", False) for h in log.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._attnviz = True
    log.addHandler(handler)
    if log.level == logging.NOTSET:
        log.setLevel(logging.INFO)


#: Where GFM's autolink literals start, once escaped: http(s)\: and www\. (any case), and "@".
_AUTOLINK_START = re.compile(r"(?i)(https?(?=\\:)|\bwww(?=\\\.)|@)")


def md_escape(text: str) -> str:
    """Show ``text`` literally through Streamlit's Markdown: nothing interpreted, nothing linked.

    Backslash-escapes everything the Markdown (and its LaTeX) would interpret. Two things
    escaping alone does not stop (seen in Chromium on 1.67): ``--`` becomes an em dash, and a
    bare ``http://...``, ``www....`` or e-mail address becomes a live link (GitHub's autolinks).
    A zero-width space between the hyphens, and after ``http``, ``www`` or ``@``, keeps the text
    as written. For every string a person or a model supplied: typed text, file and model names,
    class names.
    """
    escaped = _BETWEEN_HYPHENS.sub("\u200b", _MARKDOWN_SPECIAL.sub(r"\\\1", text))
    return _AUTOLINK_START.sub("\\1\u200b", escaped)


#: A command or path quoted in backticks inside one of our messages, e.g. `git checkout -- assets`.
_QUOTED_COMMAND = re.compile(r"`([A-Za-z0-9 ._/=:~+-]+)`")


def message_markdown(message: str) -> str:
    """A message shown literally, except that `backtick-quoted` commands become code spans.

    Inside a code span nothing is interpreted (no em dash either), so a command reads and copies
    exactly as written; only letters, digits, spaces and ``._/=:~+-`` may be quoted that way,
    everything else is escaped like any user text.
    """
    parts = _QUOTED_COMMAND.split(message)
    return "".join(f"`{part}`" if i % 2 else md_escape(part) for i, part in enumerate(parts))


def show_input_error(error: InputError) -> None:
    """A message a person can act on, shown literally (its quoted commands as code)."""
    st.warning(message_markdown(str(error)), icon=":material/back_hand:")


#: A model that keeps failing is logged again after this many seconds, not on every rerun.
LOG_REPEAT_S = 600.0
_logged: dict[str, float] = {}
_logged_lock = threading.Lock()


def log_model_error(name: str, error: Exception) -> None:
    """Write a model that could not be loaded (or was refused) to the server log.

    WARNING on the "attnviz" logger, with the message (which names the file or folder). Each
    page rerun would repeat it: the same name and message is logged once per ``LOG_REPEAT_S``.
    """
    key = f"{name}\0{error}"
    now = time.monotonic()
    with _logged_lock:
        last = _logged.get(key)
        if last is not None and now - last < LOG_REPEAT_S:
            return
        if len(_logged) > 256:
            _logged.clear()
        _logged[key] = now
    log.warning("model %r could not be loaded: %s", name, error)


def forget_logged_model_errors() -> None:
    """Log every model error again (tests that check the log call this first)."""
    with _logged_lock:
        _logged.clear()


def show_unexpected(error: Exception, what: str) -> None:
    """A bug: short message on the page, full traceback in the server log."""
    log.exception("unexpected error while %s", what)
    st.error(
        f"Something went wrong while {what} ({type(error).__name__}). The details are in the server log; "
        "try another input, or reload the page.",
        icon=":material/bug_report:",
    )
