"""Shape accessors shared by every result container with ``weights [layers, heads, q, k]``."""

from __future__ import annotations

import numpy as np


class LayersHeads:
    """Mixin: ``n_layers`` and ``n_heads`` read off ``self.weights``."""

    weights: np.ndarray

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])
