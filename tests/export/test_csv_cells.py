"""The one rule every CSV writer uses for text cells (OWASP's CSV injection advice)."""

from __future__ import annotations

import pytest

from attnviz.export.csv_cells import text_cell


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_gets_a_quote_in_front(start):
    assert text_cell(f"{start}1+1") == f"'{start}1+1"
    assert text_cell(start) == f"'{start}"


@pytest.mark.parametrize("value", ["", "the", "[CLS]", "##ing", "a=b", " =1", "'=1", "\n=1", "１", "＝1"])
def test_other_cells_are_kept_as_they_are(value):
    assert text_cell(value) == value
