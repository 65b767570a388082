"""Which input tokens a model's output depends on: integrated gradients with captum.

captum's ``LayerIntegratedGradients`` (Sundararajan et al. 2017, "Axiomatic Attribution for
Deep Networks") integrates the gradient of one scalar output along the straight path from a
baseline to the input, at the output of the model's embedding layer. The baseline keeps the
special tokens ([CLS], [SEP], [MASK]) and puts [PAD] everywhere else, as captum's BERT
tutorial does. A token's attribution is the sum over the hidden dimension; by completeness
the attributions add up to ``F(input) - F(baseline)``, and captum's *convergence delta* is
how far the numerical integral misses that (smaller is better; more steps shrink it).

Which scalar is explained depends on what the model has:

* a classification head (``*ForSequenceClassification``): the logit of the predicted class;
* a masked-LM head (``*ForMaskedLM``): the logit of the predicted token at the [MASK];
* a plain encoder (the bundled all-MiniLM-L6-v2): with two sentences, the cosine similarity
  of the mean-pooled last-layer states of sentence A's and sentence B's tokens (one joint
  pass, the same input the attention views show); with one sentence, the norm of the
  mean-pooled state; or, asked for with ``target="whole text"``, the cosine similarity of the
  mean-pooled state to the full input's (1 at the input: which tokens make the embedding point
  where it points, whatever its size);
* a decoder language model (the bundled SmolLM2): the log-probability of its next token after
  the text, through captum's LLM attribution (:mod:`attnviz.text.next_token_attribution`).

Similarity needs two runs. With both sentences blanked, the baseline's two halves are
alike (both [PAD]) and score about the same similarity as the input (0.915 against 0.916
for "A man is playing a guitar." / "Someone plays an instrument."), so the attributions
would add up to ~0. Instead each sentence is blanked in turn while the other is kept
(similarity 0.47 and 0.61 for that pair), and each sentence's tokens get the attributions
of their own run: "how much does this token make its sentence similar to the other one".

Thread safety: captum puts a forward hook on the shared embedding module for the whole
call. A forward pass of another thread running meanwhile would go through the hook and get
wrong results (we measured ~10% corrupted passes). So the attribution holds the model's
``lock`` (the one :func:`attnviz.text_attention` holds around its forward pass), and captum
removes its hook in a ``finally`` before the lock is released. If the GPU runs out of memory,
the model moves to the CPU and the attribution runs again there
(:func:`attnviz.device.falls_back_to_cpu`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.text.extraction import encode, is_blank
from attnviz.text.loading import TextModel

#: What a plain encoder's attributions may explain (module docstring).
ENCODER_TARGETS = ("similarity", "norm", "whole text")
#: Interpolation steps of the integral (captum's default).
N_STEPS = 50
#: Attention cells (steps x layers x heads x n x n) per internal batch: bounds the memory of
#: long inputs (512 tokens of a 6x12 model: 2 steps at a time instead of 50).
MAX_CELLS = 50_000_000


@dataclass(frozen=True)
class TokenAttributions:
    """Integrated-gradients attribution of one scalar output to each input token.

    Attributes:
        tokens: the n tokens, as :func:`attnviz.text_attention` returns them for the same text.
        scores: float64 ``[n]``; positive: the token pushes the output up from the baseline.
            Special tokens are 0 (they are the same in the baseline).
        special, segment: as in :class:`~attnviz.TextAttention`, ``[n]``.
        kind: which output was explained: ``"class"``, ``"masked token"``, ``"similarity"``, ``"norm"``,
            ``"whole text"`` or ``"next token"`` (a decoder:
            :func:`~attnviz.text.next_token_attribution.next_token_attributions`).
        target: that output in words, e.g. ``"logit of class 1 (POSITIVE), the predicted class"``.
        value: the output at the input.
        baseline_values: the output at the baseline, one per run (two for ``"similarity"``:
            sentence A blanked, then sentence B blanked).
        deltas: captum's convergence delta of each run, ``sum(scores of the run's tokens) -
            (value - baseline value)``; :attr:`delta` is the largest.
        n_steps: interpolation steps used (0 for feature ablation, which has none).
        truncated, n_cut: the input was cut to the model's limit, by this many tokens.
        method: ``"integrated gradients"``, or ``"feature ablation"`` (decoders only: no baseline
            values, no deltas).
        next_token, next_token_id, next_token_probability: a decoder's explained next token (as
            text), its id and ``exp(value)``; None for an encoder.
        blank_token: a decoder's baseline token (as text), which replaced every token but the first.
    """

    tokens: list[str]
    scores: np.ndarray
    special: np.ndarray
    segment: np.ndarray
    kind: str
    target: str
    value: float
    baseline_values: tuple[float, ...]
    deltas: tuple[float, ...]
    n_steps: int
    text: str
    text_pair: str | None
    model_name: str
    truncated: bool
    n_cut: int
    method: str = "integrated gradients"
    next_token: str | None = None
    next_token_id: int | None = None
    next_token_probability: float | None = None
    blank_token: str | None = None

    @property
    def delta(self) -> float:
        """captum's convergence delta (of the run that missed most, for the two runs of "similarity");
        NaN for feature ablation, which has no integral."""
        return max(self.deltas, key=abs, default=float("nan"))

    @property
    def relative_delta(self) -> float:
        """Largest ``|delta|`` as a share of its run's ``|value - baseline value|`` (the integral's error)."""
        worst = 0.0
        for base, delta in zip(self.baseline_values, self.deltas, strict=True):
            change = abs(self.value - base)
            worst = max(worst, abs(delta) / change if change > 0 else (float("inf") if delta else 0.0))
        return worst


def model_kind(model: torch.nn.Module) -> str:
    """``"classification"``, ``"masked-lm"`` or ``"encoder"``, from the model's class."""
    name = type(model).__name__
    if name.endswith("ForSequenceClassification"):
        return "classification"
    if name.endswith("ForMaskedLM"):
        return "masked-lm"
    return "encoder"


def _embeddings(model: torch.nn.Module) -> torch.nn.Module:
    base = getattr(model, "base_model", model)
    layer = getattr(base, "embeddings", None)
    if not isinstance(layer, torch.nn.Module):
        raise InputError(f"{type(model).__name__} has no embeddings module to attribute to (BERT-style models do).")
    return layer


def _check_text(text, text_pair) -> tuple[str, str | None]:
    # The rule text_attention uses: a sentence of only invisible characters is no sentence.
    if not isinstance(text, str) or is_blank(text):
        raise InputError("The text is empty: type a sentence to attribute.")
    if text_pair is not None and not isinstance(text_pair, str):
        raise InputError(f"The second sentence must be a string, not {type(text_pair).__name__}.")
    return text, (None if text_pair is None or is_blank(text_pair) else text_pair)


def check_steps(n_steps) -> None:
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or not 2 <= n_steps <= 1000:
        raise InputError(f"n_steps must be a whole number from 2 to 1000, not {n_steps!r}.")


def _segments(encoding) -> torch.Tensor:
    """``[n]`` 0 for the first sentence (and [CLS], its [SEP]), 1 for the second (and the last [SEP])."""
    seq = [-1 if s is None else s for s in encoding.sequence_ids]
    types = encoding.type_ids
    return torch.tensor([s if s >= 0 else t for s, t in zip(seq, types, strict=True)], dtype=torch.long)


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``hidden`` ``[B, n, d]``, ``mask`` ``[n]`` bool -> ``[B, d]`` mean over the masked tokens."""
    return hidden[:, mask].mean(dim=1)


class _Objective:
    """The scalar that is explained, ``[B]`` for a batch of (interpolated) inputs, and its description."""

    def __init__(self, tm: TextModel, inputs: dict, segment: torch.Tensor, target, text_pair: str | None):
        self.model = tm.model
        self.kind = model_kind(tm.model)
        ids = inputs["input_ids"]
        if self.kind == "classification":
            self._setup_class(tm, inputs, target)
        elif self.kind == "masked-lm":
            self._setup_mask(tm, ids, inputs, target)
        else:
            self._setup_encoder(segment.to(ids.device), target, text_pair, inputs)

    def _logits(self, inputs: dict) -> torch.Tensor:
        with torch.no_grad():
            return self.model(**inputs).logits

    def _setup_class(self, tm: TextModel, inputs: dict, target) -> None:
        logits = self._logits(inputs)[0]  # (classes,)
        n_labels, predicted = int(logits.shape[-1]), int(logits.argmax())
        if target is None:
            target = predicted
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < n_labels:
            raise InputError(
                f"target must be a class index from 0 to {n_labels - 1} for this classifier, not {target!r}."
            )
        self.index = int(target)
        label = tm.model.config.id2label.get(self.index, str(self.index))
        which = "the predicted class" if self.index == predicted else f"the model predicts class {predicted}"
        self.label, self.description = "class", f"logit of class {self.index} ({label}); {which}"

    def _setup_mask(self, tm: TextModel, ids: torch.Tensor, inputs: dict, target) -> None:
        mask_id = tm.tokenizer.mask_token_id
        positions = (ids[0] == mask_id).nonzero().flatten().tolist() if mask_id is not None else []
        if not positions:
            mask = tm.tokenizer.mask_token or "[MASK]"
            raise InputError(
                f"This model predicts masked words: write {mask} where a word should be predicted "
                f"(e.g. 'The cat sat on the {mask}.')."
            )
        self.position = positions[0]
        logits = self._logits(inputs)[0, self.position]  # (V,)
        predicted = int(logits.argmax())
        if target is None:
            target = predicted
        elif isinstance(target, str):
            token_id = tm.tokenizer.convert_tokens_to_ids(target)
            if token_id is None or token_id == tm.tokenizer.unk_token_id:
                raise InputError(f"{target!r} is not a token of this model's vocabulary.")
            target = token_id
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < logits.shape[0]:
            raise InputError(f"target must be a token (or token id) of the vocabulary, not {target!r}.")
        self.index = int(target)
        token = tm.tokenizer.convert_ids_to_tokens(self.index)
        which = "the predicted token" if self.index == predicted else "not the predicted token"
        self.label = "masked token"
        self.description = f"logit of {token!r} at the [MASK] (token {self.position}); {which}"

    def _setup_encoder(self, segment: torch.Tensor, target, text_pair: str | None, inputs: dict) -> None:
        if target is None:
            target = "similarity" if text_pair is not None else "norm"
        if target not in ENCODER_TARGETS:
            raise InputError(
                f"A plain encoder has no classes or [MASK]: target must be 'similarity' (two sentences), "
                f"'norm', 'whole text' or None, not {target!r}."
            )
        if target == "similarity" and text_pair is None:
            raise InputError("target 'similarity' compares two sentences: give text_pair too.")
        self.label = target
        self.first, self.second = segment == 0, segment == 1
        self.description = {
            "similarity": "cosine similarity of the two sentences' mean-pooled embeddings",
            "norm": "norm of the sentence's mean-pooled embedding",
            "whole text": "cosine similarity of the mean-pooled embedding to the full input's",
        }[target]
        if target == "whole text":
            with torch.no_grad():
                hidden = self.model(**inputs).last_hidden_state  # (1, n, d)
            self.reference = _mean_pool(hidden, torch.ones_like(self.first))  # (1, d): the full input's

    def __call__(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        out = self.model(**kwargs)
        if self.kind == "classification":
            return out.logits[:, self.index]
        if self.kind == "masked-lm":
            return out.logits[:, self.position, self.index]
        hidden = out.last_hidden_state  # (B, n, d)
        if self.label == "similarity":
            a, b = _mean_pool(hidden, self.first), _mean_pool(hidden, self.second)
            return torch.nn.functional.cosine_similarity(a, b, dim=-1)
        pooled = _mean_pool(hidden, torch.ones_like(self.first))  # (B, d)
        if self.label == "whole text":
            return torch.nn.functional.cosine_similarity(pooled, self.reference, dim=-1)
        return pooled.norm(dim=-1)


def _runs(kind: str, fixed: np.ndarray, segment: np.ndarray) -> list[np.ndarray]:
    """Tokens blanked in each run, bool ``[n]``: all but the ``fixed`` ones, or each sentence in turn."""
    words = ~fixed
    if kind == "similarity":
        return [words & (segment == 0), words & (segment == 1)]
    return [words]


def _blanked(ids: torch.Tensor, blank: np.ndarray, pad_id: int | None) -> torch.Tensor:
    """``ids`` ``(1, n)`` with the ``blank`` tokens replaced by [PAD] (id 0 when there is none)."""
    where = torch.as_tensor(blank, device=ids.device)[None]
    return torch.where(where, torch.full_like(ids, 0 if pad_id is None else pad_id), ids)


@falls_back_to_cpu("computing integrated gradients")
def token_attributions(
    model: TextModel,
    text: str,
    text_pair: str | None = None,
    target=None,
    *,
    n_steps: int = N_STEPS,
) -> TokenAttributions:
    """Integrated gradients of one model output with respect to each input token's embedding.

    Args:
        model: a :class:`~attnviz.TextModel` (``attnviz.load_text_model()``); its ``.model``
            may also be a ``*ForSequenceClassification`` or ``*ForMaskedLM`` module. A decoder
            (``model.causal``) is handed to
            :func:`~attnviz.text.next_token_attribution.next_token_attributions`.
        text, text_pair: the input, tokenized and cut exactly as :func:`attnviz.text_attention` does.
        target: None picks the output by the model's head (module docstring). Otherwise a
            class index (classifier), a token or token id (masked LM), ``"similarity"`` /
            ``"norm"`` / ``"whole text"`` (plain encoder), or a next token as text or id (decoder).
        n_steps: interpolation steps; more steps, smaller convergence delta, longer run.

    Returns:
        :class:`TokenAttributions`: one score per token, the output explained (``target``),
        and captum's convergence ``delta``.

    Raises:
        InputError: empty text, a masked-LM input without [MASK], a target the model does not have.
    """
    from captum.attr import LayerIntegratedGradients  # captum loads in ~1 s: only when needed

    text, text_pair = _check_text(text, text_pair)
    check_steps(n_steps)
    tm = model
    if getattr(tm, "causal", False):
        if text_pair is not None:
            raise InputError(
                "A decoder language model reads one text, left to right: give one text (put both sentences in it)."
            )
        from attnviz.text.next_token_attribution import next_token_attributions  # imports this module

        return next_token_attributions(tm, text, target, n_steps=n_steps)
    inputs, enc, n_cut = encode(tm, text, text_pair, limit=tm.max_eager_tokens)
    encoding = enc.encodings[0]
    special = np.array(encoding.special_tokens_mask, dtype=bool)
    if special.all():
        raise InputError("The tokenizer kept nothing of this text (only spaces or invisible characters): type words.")
    ids = inputs["input_ids"]  # (1, n)
    segment = _segments(encoding)
    types = inputs.get("token_type_ids")
    mask = inputs.get("attention_mask", torch.ones_like(ids))
    n = ids.shape[1]
    per_step = max(1, tm.n_layers * tm.n_heads * n * n)
    internal_batch = max(1, min(n_steps, MAX_CELLS // per_step))
    scores = np.zeros(n, dtype=np.float64)

    # The lock keeps every other forward pass of this shared model out while captum's hook
    # is on its embeddings; captum removes the hook in a finally before we release it.
    with tm.lock, torch.inference_mode(False), torch.enable_grad():
        objective = _Objective(tm, inputs, segment, target, text_pair)
        lig = LayerIntegratedGradients(objective, _embeddings(tm.model))
        baseline_values, deltas = [], []
        # [MASK] stays in the baseline too: it marks where the masked-LM predicts, it is no content.
        # From the CPU copy of the ids: no copy back from the model's device.
        mask_id = tm.tokenizer.mask_token_id
        fixed = special | (enc["input_ids"][0].numpy() == (mask_id if mask_id is not None else -1))
        for blank in _runs(objective.label, fixed, segment.numpy()):  # (n,) tokens set to [PAD]
            baseline = _blanked(ids, blank, tm.tokenizer.pad_token_id)
            attributions, delta = lig.attribute(
                inputs=ids,
                baselines=baseline,
                additional_forward_args=(types, mask),
                n_steps=n_steps,
                internal_batch_size=internal_batch,
                return_convergence_delta=True,
            )
            scores[blank] = attributions.sum(dim=-1)[0].detach().double().cpu().numpy()[blank]  # (1, n, d) -> (n,)
            deltas.append(float(delta.detach().reshape(-1)[0]))
            with torch.no_grad():
                baseline_values.append(float(objective(baseline, types, mask)[0]))
        with torch.no_grad():
            value = float(objective(ids, types, mask)[0])
    return TokenAttributions(
        tokens=list(encoding.tokens),
        scores=scores,
        special=special,
        segment=segment.numpy(),
        kind=objective.label,
        target=objective.description,
        value=value,
        baseline_values=tuple(baseline_values),
        deltas=tuple(deltas),
        n_steps=n_steps,
        text=text,
        text_pair=text_pair,
        model_name=tm.name,
        truncated=n_cut > 0,
        n_cut=n_cut,
    )
