"""The shape every attention result shares: what views, figures, rollout and statistics read.

:class:`~attnviz.TextAttention` (one forward pass of a text model), :class:`~attnviz.ImageAttention`
(of an image model) and :class:`~attnviz.AttentionView` (the rows and columns chosen for display)
are :class:`AttentionResult`\\ s, in the way Hugging Face's ``ModelOutput`` and TransformerLens's
``ActivationCache`` give every model one result type. A new model family's result (a decoder
language model's, say) is one too, so that the views, figures and statistics take it without a
special case. The contract:

- ``weights``: float32 ``[layers, heads, q, k]``; ``weights[l, h, i, j]`` is how much row (query)
  i attends to column (key) j. Every row sums to 1 over the keys of the unit it came from (a
  causal model's row i is 0 after column i; a view that hides columns may sum to less).
- :attr:`row_labels` and :attr:`column_labels`: what each row and column is (tokens, words, the
  class token and grid cells), as text; ``q`` and ``k`` of them.
- ``model_name``: the model that produced the weights.

:class:`~attnviz.HeadSteps` (one head's Q/K/V intermediates, ``weights (n, n)``) and
:class:`~attnviz.text.attribution.TokenAttributions` (one score per token) are not attention
over layers and heads, so they are not AttentionResults; they carry ``tokens`` and
``model_name`` under the same names.
"""

from __future__ import annotations

import numpy as np


class AttentionResult:
    """Base of every result holding attention: counts read off ``weights``, labels per subclass."""

    weights: np.ndarray
    model_name: str

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    def head(self, layer: int, head: int, queries: slice | None = None) -> np.ndarray:
        """One head's weights, float32 ``[rows, k]``: every query row, or the rows of ``queries``.

        The one way to read a single head whatever the input's length: a long text's result
        computes it on demand (:class:`~attnviz.TextAttention`), where ``weights`` is not held.
        """
        return np.asarray(self.weights[layer, head, queries or slice(None)], dtype=np.float32)

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])

    @property
    def row_labels(self) -> list[str]:
        raise NotImplementedError

    @property
    def column_labels(self) -> list[str]:
        raise NotImplementedError


class TokenSelfAttention(AttentionResult):
    """A text's self-attention: rows and columns are the same ``tokens`` (a sentence or pair's
    :class:`~attnviz.TextAttention`, a decoder's :class:`~attnviz.Generation`)."""

    tokens: list[str]
    text_pair: str | None

    @property
    def n_tokens(self) -> int:
        return len(self.tokens)

    @property
    def row_labels(self) -> list[str]:
        return self.tokens

    @property
    def column_labels(self) -> list[str]:
        return self.tokens

    @property
    def is_pair(self) -> bool:
        return self.text_pair is not None
