"""Shareable links: what is on screen as a short query string, and back. No Streamlit here.

A link holds a page's state as ``key=value`` pairs (``text``, ``pair``, ``model``, ``layer``,
``head``, ``view`` and the options; the same names on every page where they apply). The glue
that reads and writes ``st.query_params`` is :mod:`attnviz.ui.links`; this module only turns
values into strings and strings back into values, refusing anything it cannot trust.

Text: short text goes in as it is (the browser percent-encodes it); longer text is
zlib-compressed and written in URL-safe base64 after :data:`PREFIX`, so a 2,000-character
paragraph takes about a third of its length. Nothing longer than :data:`MAX_VALUE` characters is
written or read, and a compressed value may not unpack to more than :data:`MAX_TEXT_BYTES` (no
zip bomb).

Reading never raises for a bad value: :func:`parse` returns the values it could read and one
sentence per value it could not, which the page shows as a notice while it keeps its defaults.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

#: Marks a compressed text (a raw text that starts with it is written compressed, so never misread).
PREFIX = "~z"
#: Text whose percent-encoded form is at most this long goes in raw: readable in the address bar.
RAW_LIMIT = 120
#: The longest value written or accepted (a link stays well under browsers' and servers' limits).
MAX_VALUE = 6000
#: The most bytes a compressed text may unpack to.
MAX_TEXT_BYTES = 60_000
#: The largest index a link may name (layers, heads, tokens, demo images).
MAX_INDEX = 99_999
#: The most indices in one list (the heads drawn together).
MAX_INDICES = 64

KINDS = ("text", "index", "indices", "choice", "flag", "number", "word")
#: A name the page checks itself: a statistic's column, a module path such as ``resnet.encoder.stages.3``.
_WORD = re.compile(r"[A-Za-z0-9_.]{1,100}")
_INDEX = re.compile(r"[0-9]{1,5}")
_NUMBER = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")


class LinkError(ValueError):
    """A value in a link that cannot be read (the page keeps its default)."""


def slug(value: str) -> str:
    """A choice as it appears in a link: lower case, words joined by "-" ("Single head" -> "single-head")."""
    return re.sub(r"[^a-z0-9]+", "-", str(value).lower()).strip("-")


@dataclass(frozen=True)
class Field:
    """One key of a link and the kind of value it holds.

    ``choices``: a choice's possible values (written as their :func:`slug`); ``words``: words an
    index may be instead of a number (an image head's "mean"); ``low``/``high``/``step``: a
    number's range and grid.
    """

    name: str
    kind: str
    choices: tuple = ()
    words: tuple[str, ...] = ()
    low: float = 0.0
    high: float = 1.0
    step: float = 0.01

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")


# ---------------------------------------------------------------- text


def encode_text(text: str) -> str | None:
    """``text`` as a link value: raw while short, else compressed; None when even that is too long."""
    if len(quote(text, safe="")) <= RAW_LIMIT and not text.startswith(PREFIX):
        return text
    packed = zlib.compress(text.encode("utf-8"), 9)
    value = PREFIX + base64.urlsafe_b64encode(packed).decode("ascii").rstrip("=")
    return value if len(value) <= MAX_VALUE else None


def decode_text(value: str) -> str:
    """A link value back to its text; :class:`LinkError` for anything that is not one."""
    if len(value) > MAX_VALUE:
        raise LinkError(f"it is longer than {MAX_VALUE:,} characters")
    if value.startswith(PREFIX):
        body = value[len(PREFIX) :]
        try:
            packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            unpacker = zlib.decompressobj()
            data = unpacker.decompress(packed, MAX_TEXT_BYTES + 1)
            if len(data) > MAX_TEXT_BYTES or unpacker.unconsumed_tail:
                raise LinkError(f"it unpacks to more than {MAX_TEXT_BYTES:,} bytes")
            if not unpacker.eof:
                raise LinkError("its compressed text is cut short")
            text = data.decode("utf-8")
        except (binascii.Error, zlib.error, UnicodeDecodeError, ValueError) as exc:
            if isinstance(exc, LinkError):
                raise
            raise LinkError("its compressed text cannot be read") from None
    else:
        text = value
    if "\x00" in text:
        raise LinkError("it holds a NUL character")
    return text


# ---------------------------------------------------------------- one value


def parse_value(field: Field, raw: str):
    """The value of ``field`` written as ``raw``; :class:`LinkError` saying why not."""
    raw = str(raw)
    if field.kind == "text":
        return decode_text(raw)
    raw = raw.strip()
    if len(raw) > 200:
        raise LinkError("it is too long")
    if field.kind == "index":
        if raw in field.words:
            return raw
        if not _INDEX.fullmatch(raw):
            raise LinkError(f"“{_short(raw)}” is not a whole number from 0 to {MAX_INDEX:,}")
        return int(raw)
    if field.kind == "indices":
        parts = [p for p in re.split(r"[.,]", raw) if p] if raw else []
        if len(parts) > MAX_INDICES or not all(_INDEX.fullmatch(p) for p in parts):
            raise LinkError(f"“{_short(raw)}” is not a list of whole numbers")
        return sorted({int(p) for p in parts})
    if field.kind == "flag":
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise LinkError(f"“{_short(raw)}” is not 1 or 0")
    if field.kind == "choice":
        for choice in field.choices:
            if raw == str(choice) or raw.lower() == slug(choice):
                return choice
        raise LinkError(f"“{_short(raw)}” is not one of {', '.join(slug(c) for c in field.choices)}")
    if field.kind == "number":
        if not _NUMBER.fullmatch(raw):
            raise LinkError(f"“{_short(raw)}” is not a number from {field.low:g} to {field.high:g}")
        number = float(raw)
        if not (math.isfinite(number) and field.low <= number <= field.high):
            raise LinkError(f"{_short(raw)} is outside {field.low:g} to {field.high:g}")
        return round(round(number / field.step) * field.step, 6)
    # "word": a name the page checks itself (a statistic's column, a Grad-CAM layer)
    if not _WORD.fullmatch(raw):
        raise LinkError(f"“{_short(raw)}” is not a name")
    return raw


def encode_value(field: Field, value) -> str | None:
    """``value`` of ``field`` as a link value (None: it cannot be written, e.g. a text too long)."""
    if field.kind == "text":
        return encode_text(str(value))
    if field.kind == "indices":
        return ".".join(str(int(v)) for v in value)
    if field.kind == "flag":
        return "1" if value else "0"
    if field.kind == "choice":
        return slug(value)
    if field.kind == "number":
        return f"{float(value):.4f}".rstrip("0").rstrip(".")
    return str(value)


def _short(raw: str) -> str:
    """A bad value quoted back in a notice: cut, and reduced to plain characters."""
    plain = re.sub(r"[^A-Za-z0-9 ._,+-]", "?", raw)
    return plain if len(plain) <= 24 else plain[:23] + "…"


# ---------------------------------------------------------------- a whole link


def parse(params: Mapping[str, str | Sequence[str]], fields: Sequence[Field]) -> tuple[dict, list[str]]:
    """The values of ``fields`` that ``params`` holds, and one sentence per value that was refused.

    Keys that are not fields are ignored (a link may carry Streamlit's own, such as ``embed``).
    A key given twice counts with its last value.
    """
    values, problems = {}, []
    for field in fields:
        if field.name not in params:
            continue
        raw = params[field.name]
        if isinstance(raw, list | tuple):
            raw = raw[-1] if raw else ""
        try:
            values[field.name] = parse_value(field, raw)
        except LinkError as exc:
            problems.append(f"`{field.name}`: {exc}")
    return values, problems


def encode(values: Mapping[str, object], fields: Sequence[Field]) -> tuple[dict[str, str], list[str]]:
    """The query parameters for ``values`` (in the order of ``fields``), and the names left out
    because they did not fit."""
    params, left_out = {}, []
    for field in fields:
        if field.name not in values:
            continue
        encoded = encode_value(field, values[field.name])
        if encoded is None:
            left_out.append(field.name)
        else:
            params[field.name] = encoded
    return params, left_out
