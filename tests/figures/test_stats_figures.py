"""Per-head statistics figures (attnviz.figures.stats): every cell is its table row, nothing dropped.

The tables are built by hand, rows shuffled, so a figure that relied on the row order, swapped layers
and heads, or lost a head would show it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import attnviz
from attnviz.figures.stats import LABEL_COLORS, SHORT, head_map_figure, label_map, stat_heatmap
from attnviz.maths.head_statistics import COLUMNS, LABELS

N_LAYERS, N_HEADS = 3, 5


def stats_table(n_layers: int = N_LAYERS, n_heads: int = N_HEADS, seed: int = 0) -> pd.DataFrame:
    """One row per (layer, head), random statistics, labels cycling through LABELS, rows shuffled."""
    rng = np.random.default_rng(seed)
    layer, head = np.divmod(np.arange(n_layers * n_heads), n_heads)
    table = pd.DataFrame({"layer": layer, "head": head})
    for column in COLUMNS:
        table[column] = rng.random(len(table))
    table["uniform_entropy"] = 2.0 + rng.random(len(table))  # ln n of ~8-20 tokens
    table["entropy"] = table["uniform_entropy"] * rng.random(len(table))
    table["mean_distance"] = 5 * rng.random(len(table))
    table["label"] = [LABELS[(i * 3) % len(LABELS)] for i in range(len(table))]
    return table.sample(frac=1.0, random_state=1).reset_index(drop=True)


def cell(table: pd.DataFrame, layer: int, head: int, column: str):
    return table.loc[(table["layer"] == layer) & (table["head"] == head), column].item()


@pytest.mark.parametrize("column", list(COLUMNS))
def test_stat_heatmap_cell_is_the_tables_value(column):
    table = stats_table()
    fig = stat_heatmap(table, column)
    (heat,) = fig.data
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (N_LAYERS, N_HEADS)
    for layer in range(N_LAYERS):
        for head in range(N_HEADS):
            assert z[layer, head] == cell(table, layer, head, column)
            assert heat.customdata[layer][head] == cell(table, layer, head, "label")
    assert list(heat.x) == list(range(N_HEADS)) and list(heat.y) == list(range(N_LAYERS))
    assert fig.layout.title.text == f"{column}: {COLUMNS[column]}"
    assert fig.layout.xaxis.title.text == "head" and fig.layout.yaxis.title.text == "layer"
    assert heat.zmin == 0.0


def test_stat_heatmap_scales():
    table = stats_table()
    assert stat_heatmap(table, "self_mass").data[0].zmax == 1.0  # a share of attention
    top = table["uniform_entropy"].max()
    # Entropy and its uniform bound share one scale, so they can be compared.
    assert stat_heatmap(table, "entropy").data[0].zmax == pytest.approx(top)
    assert stat_heatmap(table, "uniform_entropy").data[0].zmax == pytest.approx(top)
    assert stat_heatmap(table, "mean_distance").data[0].zmax is None  # its own range, in tokens
    assert stat_heatmap(table, "mean_distance").data[0].colorbar.title.text == "tokens"


def test_stat_heatmap_leaves_a_missing_head_empty_and_refuses_an_unknown_column():
    table = stats_table()
    gone = table[~((table["layer"] == 1) & (table["head"] == 2))]
    z = np.asarray(stat_heatmap(gone, "cls_mass").data[0].z, dtype=float)
    assert np.isnan(z[1, 2]) and np.isfinite(np.delete(z.ravel(), 1 * N_HEADS + 2)).all()
    with pytest.raises(ValueError, match="column must be one of"):
        stat_heatmap(table, "label")


def test_stat_heatmap_writes_numbers_only_while_they_fit():
    assert stat_heatmap(stats_table(12, 12), "cls_mass").data[0].texttemplate == "%{z:.2f}"
    assert stat_heatmap(stats_table(13, 12), "cls_mass").data[0].texttemplate is None


def test_label_map_cells_legend_and_counts():
    table = stats_table()
    fig = label_map(table)
    heat, *legend = fig.data
    z = np.asarray(heat.z, dtype=float)
    assert z.shape == (N_LAYERS, N_HEADS)
    for layer in range(N_LAYERS):
        for head in range(N_HEADS):
            label = cell(table, layer, head, "label")
            assert z[layer, head] == LABELS.index(label)
            assert heat.customdata[layer][head] == label
            assert heat.text[layer][head] == SHORT.get(label, label)
    # The stepped scale gives label i its own colour: the value i falls inside its band.
    scale = [(float(pos), colour) for pos, colour in heat.colorscale]
    for i, label in enumerate(LABELS):
        value = (i - heat.zmin) / (heat.zmax - heat.zmin)  # where label i's number falls on the 0..1 scale
        below = [colour for pos, colour in scale if pos <= value][-1]
        above = [colour for pos, colour in scale if pos >= value][0]
        assert below == above == LABEL_COLORS[label], (label, value)
    # One legend entry per label present, with its count; the counts add up to every head.
    counts = table["label"].value_counts()
    assert [t.name for t in legend] == [f"{label} ({counts[label]})" for label in LABELS if label in counts]
    assert [t.marker.color for t in legend] == [LABEL_COLORS[label] for label in LABELS if label in counts]
    assert sum(int(t.name.rsplit("(", 1)[1].rstrip(")")) for t in legend) == N_LAYERS * N_HEADS


def test_head_map_figure_puts_each_head_at_its_coordinates():
    table = stats_table()
    coords = np.random.default_rng(2).normal(size=(len(table), 2))
    fig = head_map_figure(coords, table)
    assert [t.name for t in fig.data] == [label for label in LABELS if (table["label"] == label).any()]
    seen = 0
    for trace in fig.data:
        rows = np.flatnonzero((table["label"] == trace.name).to_numpy())
        np.testing.assert_array_equal(trace.x, coords[rows, 0])
        np.testing.assert_array_equal(trace.y, coords[rows, 1])
        assert list(trace.text) == [f"L{table['layer'][r]} H{table['head'][r]}" for r in rows]
        assert trace.marker.color == LABEL_COLORS[trace.name]
        seen += len(rows)
    assert seen == len(table)  # every head drawn once
    assert fig.layout.title.text.startswith("Heads placed by how alike they attend")
    assert fig.layout.xaxis.showticklabels is False  # MDS axes carry no meaning


def test_figures_of_a_real_head_stats_table(tiny_model):
    """The library's own table (tiny random BERT: 2 layers x 4 heads) goes through every figure."""
    ta = attnviz.text_attention(tiny_model, "the cat sat on the mat.")
    table = attnviz.head_stats(ta)
    z = np.asarray(stat_heatmap(table, "entropy").data[0].z, dtype=float)
    assert z.shape == (2, 4)
    np.testing.assert_allclose(z[table["layer"], table["head"]], table["entropy"])
    labels = label_map(table).data[0].customdata
    assert [labels[l][h] for l, h in zip(table["layer"], table["head"], strict=True)] == list(table["label"])
    fig = head_map_figure(np.zeros((len(table), 2)), table)
    assert sum(len(t.x) for t in fig.data) == len(table) == 8
