"""Attention flow (Abnar & Zuidema 2020) against hand computations on tiny graphs, and networkx's own default."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from attnviz.maths.gradient_attention import residual_layers
from attnviz.text.attention_flow import attention_flow, flow_graph, flow_token_limit


def one_head(*layers) -> np.ndarray:
    """``[layers, 1, t, t]`` from ``[t, t]`` matrices."""
    return np.array(layers, dtype=np.float64)[:, None]


def test_one_layer_is_the_residual_attention_row():
    a = one_head([[0.5, 0.5], [0.2, 0.8]])
    # Ã = (A + I) / rowsum: row 0 = [1.5, 0.5] / 2
    np.testing.assert_allclose(attention_flow(a, source=0), [0.75, 0.25])
    np.testing.assert_allclose(attention_flow(a, source=1), [0.1, 0.9])


def test_two_layers_by_hand_bottlenecks():
    # Ã = (A + I) / rowsum, so these single-head layers have capacities we can follow by hand.
    first = [[0.0, 1.0], [1.0, 0.0]]  # Ã_0 = [[.5, .5], [.5, .5]]
    second = [[1.0, 0.0], [0.0, 1.0]]  # Ã_1 = I
    a = one_head(first, second)
    # From (2, 0): the only edge goes to (1, 0) (capacity 1), which splits 0.5 / 0.5 into the inputs.
    np.testing.assert_allclose(attention_flow(a, source=0), [0.5, 0.5])
    third = [[0.0, 1.0], [0.0, 1.0]]  # Ã = [[.5, .5], [0, 1]]
    a = one_head(third, first)  # layer 0: third, layer 1: Ã = [[.5, .5], [.5, .5]]
    # (2, 0) -> (1, 0) 0.5 and (1, 1) 0.5; (1, 0) -> (0, 0) 0.5, (0, 1) 0.5; (1, 1) -> (0, 1) 1.
    # To input 0: only through (1, 0): min(0.5, 0.5) = 0.5. To input 1: min(.5, .5) + min(.5, 1) = 1.
    np.testing.assert_allclose(attention_flow(a, source=0), [0.5, 1.0])
    # rollout would give [0.25, 0.75] here: flow is limited by each path's narrowest edge, not their product
    rolled = residual_layers(a)[1] @ residual_layers(a)[0]
    np.testing.assert_allclose(rolled[0], [0.25, 0.75])


def test_against_networkx_default_maximum_flow():
    rng = np.random.default_rng(0)
    w = rng.random((3, 2, 5, 5))
    w = np.tril(w)  # a decoder's zeros above the diagonal
    w /= w.sum(axis=-1, keepdims=True)
    flows = attention_flow(w, source=4)
    graph = flow_graph(residual_layers(w))
    for j in range(5):
        assert flows[j] == pytest.approx(nx.maximum_flow_value(graph, (3, 4), (0, j)))
    assert flows.max() <= 1 + 1e-9
    only = attention_flow(w, source=4, targets=[1, 3])
    assert only[0] == only[2] == only[4] == 0 and only[1] == pytest.approx(flows[1])


def test_flow_length_limit_follows_the_layers():
    assert flow_token_limit(6, causal=False) == 46
    assert flow_token_limit(30, causal=True) == 27
    assert flow_token_limit(2, causal=False) > flow_token_limit(6, causal=False)
