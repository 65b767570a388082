"""Every attention result keeps the one contract the views read (attnviz/results.py)."""

from __future__ import annotations

import numpy as np

import attnviz
from attnviz.image import generated_shapes
from attnviz.results import AttentionResult


def results(tiny_model, random_model) -> dict[str, AttentionResult]:
    ta = attnviz.text_attention(tiny_model, "The cat sat on the mat.", "It was tired.")
    image = generated_shapes.shape_sample(5, 0, 64).image
    return {
        "text": ta,
        "view, tokens": attnviz.make_view(ta),
        "view, words A→B without specials": attnviz.make_view(ta, words=True, block="A→B", hide_special=True),
        "image": attnviz.image_attention(random_model, image),
    }


def test_every_result_keeps_the_contract(tiny_model, random_model):
    for name, result in results(tiny_model, random_model).items():
        assert isinstance(result, AttentionResult), name
        w = result.weights
        assert w.dtype == np.float32 and w.ndim == 4, name
        assert (result.n_layers, result.n_heads) == w.shape[:2], name
        assert len(result.row_labels) == w.shape[2] and len(result.column_labels) == w.shape[3], name
        assert all(isinstance(label, str) for label in [*result.row_labels, *result.column_labels]), name
        assert result.model_name, name


def test_rows_sum_to_one_where_no_column_is_hidden(tiny_model, random_model):
    found = results(tiny_model, random_model)
    for name in ("text", "view, tokens", "image"):
        np.testing.assert_allclose(found[name].weights.sum(-1), 1.0, atol=1e-5, err_msg=name)
    # A view that hides [SEP] and sentence A's columns keeps each row's share of what is shown.
    hidden = found["view, words A→B without specials"].weights.sum(-1)
    assert np.all(hidden < 1.0 + 1e-5) and np.all(hidden > 0)


def test_image_labels_are_the_class_token_then_cells_row_by_row(tiny_model, random_model):
    ia = results(tiny_model, random_model)["image"]
    rows, cols = ia.grid
    assert ia.row_labels[0] == "[CLS]" and ia.row_labels[1] == "cell (0, 0)"
    assert ia.row_labels[1 + cols] == "cell (1, 0)" and ia.row_labels[-1] == f"cell ({rows - 1}, {cols - 1})"
    # The label of a cell names the query whose row cell_attention returns.
    r, c = 2, 5
    query = ia.row_labels.index(f"cell ({r}, {c})")
    np.testing.assert_allclose(ia.cell_attention(1, 0, r, c).ravel(), ia.weights[1, 0, query, 1:])
