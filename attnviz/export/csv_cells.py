"""Text cells that a spreadsheet shows as text, never runs as a formula (CSV injection).

Every CSV attnviz writes holds tokens and words typed by whoever made the input, and Excel,
LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` (tab
and carriage return too, in some versions) as a formula: ``=HYPERLINK("http://evil.example",
"Click")`` becomes a live link. OWASP's advice (https://owasp.org/www-community/attacks/CSV_Injection)
is to put a single quote in front of such a cell, which spreadsheets show as text; the
``csv`` module already quotes commas, quotes and newlines.

Only text cells go through :func:`text_cell`: numbers such as ``-0.5`` or ``-inf`` must stay
numbers, and a program reading the file sees the quote and can strip it.
"""

from __future__ import annotations

#: First characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    """``value`` with a ``'`` in front if a spreadsheet would run it as a formula, else unchanged."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def text_cells(values: list[str]) -> list[str]:
    """:func:`text_cell` of each value (a header row, a column of labels)."""
    return [text_cell(v) for v in values]
