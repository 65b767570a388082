"""Attention flow (Abnar & Zuidema 2020): the maximum flow through the layers' attention graph.

Node ``(l, j)`` is token j's state entering layer l (``l = 0`` the input, ``l = L`` the output);
the edge from ``(l + 1, i)`` down to ``(l, j)`` has capacity ``Ã_l[i, j]``, layer l's attention
averaged over heads with the residual added and rows normalised
(:func:`attnviz.maths.gradient_attention.residual_layers`). Token j's flow is the value of the
maximum flow from the explained position's output node ``(L, source)`` to ``(0, j)``. Where
rollout multiplies the layers (every path counts), flow is limited by each path's narrowest
edges, so it spreads relevance more evenly (their Table 1).

The max-flow itself is networkx's (a maintained implementation, as the issue asks): one residual
network is built once and reused for every token (``residual=``), which networkx resets between
calls. It costs one max-flow per token over ``L · t²`` edges, so it is only run up to a length
(:func:`flow_token_limit`, measured on this project's 2-core CPU).
"""

from __future__ import annotations

import networkx as nx
import numpy as np
from networkx.algorithms.flow import build_residual_network, preflow_push

from attnviz.maths.gradient_attention import residual_layers

#: Budget of ``layers x tokens^3`` (edges x max-flows) that runs in about 2 s on this project's 2-core
#: CPU: measured 1.2 s at 30 layers x 24 tokens (causal), 3.4 s at 30 x 32, 1.4 s at 6 x 48 and 3.2 s
#: at 6 x 64 (2-3.4 µs per unit); 600,000 gives the bundled decoder 27 tokens and the encoder 46.
FLOW_BUDGET = 600_000


def flow_token_limit(n_layers: int, causal: bool) -> int:
    """Longest input (tokens, special ones included) whose attention flow runs within about 2 s.

    The cost grows as ``layers · t³`` (``t`` max-flows over ``layers · t²`` edges); a decoder's graph
    has half the edges, yet measured no faster (preflow-push relabels more), so ``causal`` does not
    change the limit.
    """
    del causal
    return max(2, int((FLOW_BUDGET / max(1, n_layers)) ** (1 / 3) + 1e-9))


def flow_graph(capacities: np.ndarray) -> nx.DiGraph:
    """The layered graph of ``capacities`` ``[L, t, t]`` (``Ã_l[i, j]``): edges ``(l + 1, i) -> (l, j)``."""
    n_layers, t, _ = capacities.shape
    graph = nx.DiGraph()
    graph.add_nodes_from((l, j) for l in range(n_layers + 1) for j in range(t))
    for l in range(n_layers):
        rows, cols = np.nonzero(capacities[l] > 0)
        graph.add_edges_from(
            ((l + 1, int(i)), (l, int(j)), {"capacity": float(capacities[l, i, j])})
            for i, j in zip(rows, cols, strict=True)
        )
    return graph


def attention_flow(weights, source: int, targets=None) -> np.ndarray:
    """Max-flow from output token ``source`` to each input token, float64 ``[t]``.

    Args:
        weights: attention ``[layers, heads, t, t]`` (rows sum to 1).
        source: the position whose output is explained (a decoder's last token, an encoder's [CLS]).
        targets: the input positions to compute (default all); the others are 0.
    """
    capacities = residual_layers(weights)  # (L, t, t)
    n_layers, t, _ = capacities.shape
    graph = flow_graph(capacities)
    residual = build_residual_network(graph, "capacity")
    top = (n_layers, int(source) % t)
    flows = np.zeros(t, dtype=np.float64)
    for j in range(t) if targets is None else targets:
        flows[j] = preflow_push(graph, top, (0, int(j)), residual=residual, value_only=True).graph["flow_value"]
    return flows
