"""The induction probe: random tokens repeated twice, and how much each head attends to the token
that followed the current token's first occurrence.

Olsson et al., "In-context Learning and Induction Heads" (Transformer Circuits Thread, 2022)
find induction heads with this probe, and TransformerLens computes its score the same way: on
``[r_0 ... r_{N-1} r_0 ... r_{N-1}]`` an induction head at the second ``r_k`` attends to
``r_{k+1}`` of the first copy, which lets the model predict the second copy almost perfectly
while the first, random, copy cannot be predicted at all. The score of a head is
:func:`attnviz.maths.decoder_heads.induction_score` on this input: the mean of
``w[N + k, k + 1]`` over the second copy (the N tokens are distinct, so each has exactly one
earlier occurrence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.maths.decoder_heads import induction_score
from attnviz.text.loading import TextModel


@dataclass(frozen=True)
class InductionProbe:
    """What one run of the probe measured.

    Attributes:
        table: one row per (layer, head), columns ``layer``, ``head``, ``score`` (in [0, 1]),
            best score first (ties: lower layer, then lower head first), index 0..m-1.
        token_ids: int ``[P + 2N]``: the input, the P tokens the tokenizer puts before any text
            (a BOS for Llama-2-style tokenizers, none for SmolLM2 or GPT-2), then N random ids twice.
        prefix: P.
        first_loss: mean next-token loss (nats) on tokens 2..N of the first copy (random: no
            model can predict them; ln(vocabulary) is the loss of a uniform guess).
        repeated_loss: the same on tokens 2..N of the second copy, each of which follows a token
            seen before, so induction can predict it; far below ``first_loss`` in a model with
            induction heads.
        model_name: the model probed.
    """

    table: pd.DataFrame
    token_ids: np.ndarray
    prefix: int
    first_loss: float
    repeated_loss: float
    model_name: str


def random_token_ids(tm: TextModel, n_tokens: int, seed: int) -> np.ndarray:
    """``[n_tokens]`` distinct token ids drawn with ``numpy.random.default_rng(seed)``, special
    tokens left out (a BOS or end-of-text in the middle would reset what the model reads)."""
    vocab = min(len(tm.tokenizer), int(tm.model.config.vocab_size))
    allowed = np.setdiff1d(np.arange(vocab), np.asarray(tm.tokenizer.all_special_ids, dtype=np.int64))
    if not 2 <= n_tokens <= len(allowed):
        raise InputError(f"n_tokens must be between 2 and {len(allowed)} (this vocabulary's ordinary tokens).")
    return np.random.default_rng(seed).choice(allowed, size=n_tokens, replace=False)


def _prefix_ids(tm: TextModel) -> list[int]:
    """The ids the tokenizer puts before any text (a BOS), so the probe reads as text would."""
    tok = tm.tokenizer
    bos = tok.bos_token_id
    if bos is None:
        return []
    ids = tok("a")["input_ids"]
    return [int(bos)] if ids and ids[0] == bos else []


@falls_back_to_cpu("running the induction probe")
def induction_probe(tm: TextModel, n_tokens: int = 50, seed: int = 0) -> InductionProbe:
    """Run the induction probe once: ``n_tokens`` random tokens repeated twice, one forward pass.

    Args:
        tm: a decoder language model (``tm.causal``).
        n_tokens: N, the length of each copy (2N tokens, plus a BOS where the tokenizer adds
            one, must fit the model's limit).
        seed: seed of the numpy generator that draws the tokens; the same seed gives the same table.

    Raises:
        InputError: ``tm`` is an encoder, or ``n_tokens`` is out of range.
    """
    if not getattr(tm, "causal", False):
        raise InputError(
            "The induction probe needs a decoder language model (one that reads left to right, such as "
            "SmolLM2-135M-Instruct); this model is an encoder, which sees the whole input at once."
        )
    if not isinstance(n_tokens, int | np.integer) or isinstance(n_tokens, bool):
        raise InputError(f"n_tokens must be a whole number, not {n_tokens!r}.")
    prefix = _prefix_ids(tm)
    if len(prefix) + 2 * n_tokens > tm.max_eager_tokens:
        raise InputError(
            f"n_tokens must be at most {(tm.max_eager_tokens - len(prefix)) // 2}: twice {n_tokens} tokens "
            f"is past the limit for eager attention of {tm.max_eager_tokens}."
        )
    random_ids = random_token_ids(tm, int(n_tokens), seed)
    ids = np.concatenate([np.asarray(prefix, dtype=np.int64), random_ids, random_ids])  # (P + 2N,)
    input_ids = torch.as_tensor(ids, device=tm.device)[None]  # (1, P + 2N)
    # The whole model, not its base: one pass gives the attention and the logits for the losses.
    with tm.lock, torch.inference_mode():
        out = tm.model(input_ids=input_ids, output_attentions=True)
    if out.attentions is None or any(a is None for a in out.attentions):
        raise RuntimeError(f"{tm.name} returned no attention weights; load it with attn_implementation='eager'.")
    weights = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # (L, H, P+2N, P+2N)
    # Loss of predicting token t+1 from position t: (P + 2N - 1,)
    logp = torch.log_softmax(out.logits[0].float(), dim=-1)
    nll = -logp[:-1].gather(1, input_ids[0, 1:, None])[:, 0].cpu().numpy()
    p, n = len(prefix), int(n_tokens)
    # Token at position q is predicted at nll[q - 1]; tokens 2..N of each copy.
    first_loss = float(nll[p : p + n - 1].mean())
    repeated_loss = float(nll[p + n : p + 2 * n - 1].mean())
    scores = induction_score(weights, ids)  # (L, H)
    n_layers, n_heads = scores.shape
    layer, head = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    table = pd.DataFrame({"layer": layer.ravel(), "head": head.ravel(), "score": scores.ravel()})
    # Stable sort on the score alone keeps (layer, head) order among equal scores.
    table = table.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    return InductionProbe(
        table=table,
        token_ids=ids,
        prefix=p,
        first_loss=first_loss,
        repeated_loss=repeated_loss,
        model_name=tm.name,
    )


def induction_scores(tm: TextModel, n_tokens: int = 50, seed: int = 0) -> pd.DataFrame:
    """Each head's induction score on ``n_tokens`` random tokens repeated twice.

    Returns:
        DataFrame, one row per (layer, head), columns ``layer``, ``head``, ``score`` in [0, 1],
        best score first (``.head(5)`` are the strongest induction heads). The losses of the
        same run are on :func:`induction_probe`'s result.

    Raises:
        InputError: ``tm`` is an encoder, or ``n_tokens`` is out of range.

    Example::

        tm = attnviz.load_text_model("SmolLM2-135M-Instruct")
        attnviz.induction_scores(tm).head(5)   # layers 17-18 on SmolLM2
    """
    return induction_probe(tm, n_tokens=n_tokens, seed=seed).table
