"""The head-statistics maps' in-cell text at 1280 x 720 (issue 18, item 5): with 12 heads, two maps side
by side leave a cell about 20 px wide, and 10 px numbers and labels ran into their neighbours; past 8 heads
the cells' text is 8 px on both maps, and it stays 10 px where the cells are wide."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attnviz.figures.stats import cell_text_size, label_map, stat_heatmap
from attnviz.maths.head_statistics import COLUMNS, LABELS


def stats_table(n_layers: int, n_heads: int) -> pd.DataFrame:
    """One row per (layer, head): random statistics, labels cycling through LABELS."""
    rng = np.random.default_rng(0)
    layer, head = np.divmod(np.arange(n_layers * n_heads), n_heads)
    table = pd.DataFrame({"layer": layer, "head": head})
    for column in COLUMNS:
        table[column] = rng.random(len(table))
    table["uniform_entropy"] = 2.0 + rng.random(len(table))
    table["entropy"] = table["uniform_entropy"] * rng.random(len(table))
    table["label"] = [LABELS[i % len(LABELS)] for i in range(len(table))]
    return table


@pytest.mark.parametrize(("n_heads", "size"), [(4, 10), (8, 10), (12, 8), (16, 8)])
def test_cell_text_shrinks_past_eight_heads(n_heads, size):
    table = stats_table(n_layers=3, n_heads=n_heads)
    assert cell_text_size(n_heads) == size
    for fig in (stat_heatmap(table, "entropy"), label_map(table)):
        (heatmap,) = [t for t in fig.data if t.type == "heatmap"]
        assert heatmap.textfont.size == size
