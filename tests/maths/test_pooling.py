"""Pooling attention to screen resolution, row block by row block, against loops over the bins."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz.maths.pooling import (
    PooledMatrix,
    RowPooling,
    bin_edges,
    coarsen,
    pool,
    strongest_keys,
    visible_bins,
)


def causal(rng, n_q: int, n_k: int, leading=()) -> np.ndarray:
    """Rows of a lower triangle summing to 1, exact zeros after the diagonal (query i sees keys <= i)."""
    raw = rng.random((*leading, n_q, n_k)).astype(np.float32)
    raw *= np.arange(n_k)[None, :] <= np.arange(n_q)[:, None]
    return raw / raw.sum(-1, keepdims=True)


def reference(matrix: np.ndarray, q_edges, k_edges, how: str) -> np.ndarray:
    """Pooling written out: one explicit loop over the bins of one 2-D matrix."""
    out = np.zeros((len(q_edges) - 1, len(k_edges) - 1))
    for i in range(len(q_edges) - 1):
        for j in range(len(k_edges) - 1):
            block = matrix[q_edges[i] : q_edges[i + 1], k_edges[j] : k_edges[j + 1]]
            if how == "max":
                out[i, j] = max(float(x) for x in block.ravel())
            else:
                out[i, j] = sum(float(x) for x in block.ravel()) / block.size
    return out


@pytest.mark.parametrize(("n", "bins"), [(1, 1), (5, 1), (5, 5), (5, 9), (10, 3), (8192, 256), (8191, 256), (100, 7)])
def test_bin_edges(n, bins):
    edges = bin_edges(n, bins)
    assert edges.dtype == np.int64
    assert len(edges) == min(bins, n) + 1
    assert edges[0] == 0 and edges[-1] == n
    sizes = np.diff(edges)
    assert (sizes > 0).all() and sizes.max() - sizes.min() <= 1


def test_bin_edges_of_nothing_and_bad_bins():
    assert bin_edges(0, 4).tolist() == [0]
    with pytest.raises(ValueError):
        bin_edges(10, 0)


SHAPES = [(37, 37, 8, 8), (37, 37, 5, 11), (40, 23, 6, 4), (12, 30, 12, 30), (9, 9, 20, 20), (64, 64, 64, 1)]


@pytest.mark.parametrize("how", ["max", "mean"])
@pytest.mark.parametrize(("n_q", "n_k", "bins_q", "bins_k"), SHAPES)
def test_pool_equals_loops_over_bins(rng, how, n_q, n_k, bins_q, bins_k):
    matrix = rng.random((n_q, n_k)).astype(np.float32)
    pm = pool(matrix, bins_q, bins_k, how)
    assert isinstance(pm, PooledMatrix) and pm.how == how
    assert pm.values.dtype == np.float32
    assert pm.query_edges.tolist() == bin_edges(n_q, bins_q).tolist()
    assert pm.key_edges.tolist() == bin_edges(n_k, bins_k).tolist()
    np.testing.assert_allclose(pm.values, reference(matrix, pm.query_edges, pm.key_edges, how), rtol=1e-6)


def split_points(rng, n: int, blocks: int) -> list[int]:
    cuts = sorted(rng.choice(np.arange(1, n), size=min(blocks, n - 1), replace=False).tolist())
    return [0, *cuts, n]


@pytest.mark.parametrize("how", ["max", "mean"])
@pytest.mark.parametrize(("n_q", "n_k", "bins_q", "bins_k"), SHAPES)
@pytest.mark.parametrize("blocks", [1, 3, 17])
def test_row_blocks_split_anywhere_give_the_same_pooling(rng, how, n_q, n_k, bins_q, bins_k, blocks):
    matrix = rng.random((2, 3, n_q, n_k)).astype(np.float32)
    pooling = RowPooling(n_q, n_k, bins_q, bins_k, how, leading=(2, 3))
    cuts = split_points(rng, n_q, blocks)
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        pooling.add(a, matrix[..., a:b, :])
    pm = pooling.result()
    assert pm.values.shape == (2, 3, len(pm.query_edges) - 1, len(pm.key_edges) - 1)
    for l in range(2):
        for h in range(3):
            np.testing.assert_allclose(
                pm.values[l, h], reference(matrix[l, h], pm.query_edges, pm.key_edges, how), rtol=1e-6
            )


def test_a_block_inside_one_bin_and_single_rows(rng):
    matrix = rng.random((50, 50)).astype(np.float32)
    for how in ("max", "mean"):
        pooling = RowPooling(50, 50, 4, 4, how)
        for r in range(50):  # one row at a time: every bin is split many times
            pooling.add(r, matrix[r : r + 1])
        expected = reference(matrix, bin_edges(50, 4), bin_edges(50, 4), how)
        np.testing.assert_allclose(pooling.result().values, expected, rtol=1e-6)


@pytest.mark.parametrize("how", ["max", "mean"])
@pytest.mark.parametrize(("n", "bins"), [(61, 8), (64, 8), (10, 10), (300, 7)])
def test_causal_matrices(rng, how, n, bins):
    matrix = causal(rng, n, n)
    pooling = RowPooling(n, n, bins, bins, how)
    cuts = split_points(rng, n, 5)
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        pooling.add(a, matrix[a:b])
    pm = pooling.result()
    np.testing.assert_allclose(pm.values, reference(matrix, pm.query_edges, pm.key_edges, how), rtol=1e-6)
    seen = visible_bins(pm.query_edges, pm.key_edges)
    # Bins with no visible cell hold 0 (max and mean); every visible bin holds weight.
    assert (pm.values[~seen] == 0).all() and (pm.values[seen] > 0).all()
    if how == "mean":
        # Invisible cells count as 0: mean x cells is the block's mass, and the mass is the row count.
        np.testing.assert_allclose((pm.values.astype(np.float64) * pm.cells).sum(), n, rtol=1e-5)


def test_mean_counts_invisible_cells_as_zero():
    w = np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float32)  # a 2-token decoder
    assert pool(w, 1, 1, "mean").values[0, 0] == pytest.approx(0.5)  # 2 / 4 cells, not 2 / 3
    assert pool(w, 1, 1, "max").values[0, 0] == 1.0


def test_visible_bins_against_the_cells():
    for n_q, n_k, bq, bk in [(37, 37, 5, 11), (40, 40, 40, 40), (64, 64, 8, 8), (30, 30, 7, 3)]:
        qe, ke = bin_edges(n_q, bq), bin_edges(n_k, bk)
        cell_visible = np.arange(n_k)[None, :] <= np.arange(n_q)[:, None]
        expected = np.array(
            [
                [cell_visible[qe[i] : qe[i + 1], ke[j] : ke[j + 1]].any() for j in range(len(ke) - 1)]
                for i in range(len(qe) - 1)
            ]
        )
        np.testing.assert_array_equal(visible_bins(qe, ke), expected)
    assert visible_bins(bin_edges(10, 10), bin_edges(10, 10)).tolist() == np.tri(10, dtype=bool).tolist()


@pytest.mark.parametrize("how", ["max", "mean"])
def test_coarsen_equals_pooling_the_full_matrix_with_the_composed_edges(rng, how):
    matrix = causal(rng, 100, 100, leading=(3,))
    fine = pool(matrix, 37, 37, how)
    coarse = coarsen(fine, 8, 8)
    assert coarse.values.shape == (3, 8, 8)
    for h in range(3):
        np.testing.assert_allclose(
            coarse.values[h], reference(matrix[h], coarse.query_edges, coarse.key_edges, how), rtol=1e-5
        )
    same = coarsen(fine, 64, 64)  # more bins than there are: unchanged
    np.testing.assert_array_equal(same.values, fine.values)


def test_row_pooling_refuses_out_of_order_and_incomplete_input(rng):
    matrix = rng.random((10, 10)).astype(np.float32)
    pooling = RowPooling(10, 10, 3, 3, "max")
    pooling.add(0, matrix[:4])
    with pytest.raises(ValueError, match="in order"):
        pooling.add(5, matrix[5:])
    with pytest.raises(ValueError, match="match"):
        pooling.add(4, matrix[4:, :9])
    with pytest.raises(ValueError, match="only 4 of 10"):
        pooling.result()
    with pytest.raises(ValueError):
        RowPooling(10, 10, 3, 3, "median")


@pytest.mark.parametrize("k", [0, 1, 5, 50, 200])
def test_strongest_keys_against_argsort(rng, k):
    row = rng.random(200).astype(np.float32) + 1e-3
    found = strongest_keys(row, k)
    expected = np.argsort(-row, kind="stable")[:k]
    np.testing.assert_array_equal(found.indices, expected)
    np.testing.assert_array_equal(found.values, row[expected])
    rest = np.setdiff1d(np.arange(200), expected)
    assert found.rest_count == len(rest)
    assert found.rest_mass == pytest.approx(float(row[rest].astype(np.float64).sum()), rel=1e-9)
    assert float(found.values.sum(dtype=np.float64)) + found.rest_mass == pytest.approx(
        float(row.sum(dtype=np.float64))
    )


def test_strongest_keys_of_a_causal_row_skip_the_invisible_keys(rng):
    w = causal(rng, 30, 30)
    indices, values, rest_mass, rest_count = strongest_keys(w[3], 10)  # query 3 sees 4 keys
    np.testing.assert_array_equal(indices, np.argsort(-w[3, :4], kind="stable"))
    assert (values > 0).all() and rest_count == 0 and rest_mass == 0.0
    indices, values, rest_mass, rest_count = strongest_keys(w[20], 5)
    assert (indices <= 20).all() and rest_count == 21 - 5
    assert rest_mass == pytest.approx(1.0 - float(values.sum(dtype=np.float64)), abs=1e-6)


def test_strongest_keys_ties_go_to_the_earlier_key():
    row = np.array([0.1, 0.3, 0.0, 0.3, 0.3, 0.0], dtype=np.float32)
    found = strongest_keys(row, 2)
    assert found.indices.tolist() == [1, 3]
    assert found.rest_count == 2 and found.rest_mass == pytest.approx(0.4)
