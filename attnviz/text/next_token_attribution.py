"""Which prompt tokens a decoder's next token depends on: captum's LLM attribution.

The scalar explained is ``log p(t | prompt)``, the log-probability the decoder gives a next token
``t`` after the text: by default its top-1 next token (greedy), or a token the caller names. Two
methods, both through captum's LLM wrappers (nothing re-implemented here):

* ``"integrated gradients"``: :class:`captum.attr.LLMGradientAttribution` over
  :class:`captum.attr.LayerIntegratedGradients` on the input-embedding layer (Sundararajan et
  al. 2017). A token's score is the sum over the hidden dimension; by completeness the scores add
  up to ``f(input) - f(baseline)``.
* ``"feature ablation"``: :class:`captum.attr.LLMAttribution` over
  :class:`captum.attr.FeatureAblation`: a token's score is ``f(input) - f(input with that token
  replaced by the baseline token)``, one forward pass per token (no integral, no delta).

The prompt goes in as a :class:`captum.attr.TextTokenInput` built from the very ids
:func:`attnviz.text_attention` sees (same tokenizer call, same cut), so the scores line up with
the attention's tokens.

The baseline. Every token is replaced by one "blank" token (a single space when the tokenizer has
one, else its pad, end-of-text or id-0 token), **except the first token**, which the baseline
keeps, as the encoder path keeps [CLS]. A decoder's first token is its attention sink (most heads
park their attention there), and moving its embedding makes the integrand jagged: on SmolLM2
with 50 steps, blanking it too left convergence deltas of 74 % to 5,900 % of ``f(input) -
f(baseline)`` over three prompts; keeping it brought them to 0.4-5 % (with a space as the blank;
10 % at most with <|im_end|>). The first token's score is therefore 0 by construction, like the
special tokens', and the comparison with attention leaves it out.

captum's LLM wrapper returns no convergence delta, so it is computed here by captum's own
definition, ``sum(scores) - (f(input) - f(baseline))``, from two plain forward passes.

Thread safety: captum hooks the shared model's embedding module, so the whole attribution (the
top-1 pass, the integral, the two end points) runs under ``tm.lock``; captum removes its hook in a
``finally`` before the lock is released. On a GPU out-of-memory error the model moves to the CPU
and the call runs again there (:func:`attnviz.device.falls_back_to_cpu`).
"""

from __future__ import annotations

import numpy as np
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.text.attribution import MAX_CELLS, N_STEPS, TokenAttributions, check_steps
from attnviz.text.extraction import encode, is_blank, token_texts
from attnviz.text.loading import TextModel

IG, ABLATION = "integrated gradients", "feature ablation"
NEXT_TOKEN_METHODS = (IG, ABLATION)


def _text_token_input_class():
    """A :class:`captum.attr.TextTokenInput` made from ids already encoded, with fixed *positions*.

    captum's own constructor tokenizes the text again (without our cut to the model's limit) and
    fixes tokens by id (``skip_tokens``), which would also fix every later copy of the first
    token; this sets the same attributes from our ids and a positional mask, and inherits
    ``to_tensor``, ``to_model_input`` and ``format_attr`` unchanged.
    """
    from captum.attr import TextTokenInput

    class PromptTokens(TextTokenInput):
        def __init__(self, ids: torch.Tensor, tokenizer, blank_id: int, fixed: np.ndarray) -> None:
            # ids (1, n) on the CPU; fixed (n,) bool: positions the baseline keeps
            self.inp_tensor = ids
            self.itp_mask = torch.as_tensor(~fixed)[None]  # (1, n)
            self.itp_tensor = ids[self.itp_mask][None]  # (1, m): the attributed tokens
            self.skip_tokens = None
            self.tokenizer = tokenizer
            self.values = tokenizer.convert_ids_to_tokens(self.itp_tensor[0].tolist())
            self.n_itp_features = len(self.values)
            self.baselines = int(blank_id)

    return PromptTokens


class _LabelSafeTokenizer:
    """The model's tokenizer as captum's LLM wrappers see it, with one change to ``decode``.

    The wrappers decode the target token only to label their result (we pass ids, never text).
    captum 0.9's labelling indexes past the end when the last target token is part of a
    character's UTF-8 bytes (it decodes alone to "\ufffd": a random model's or an emoji's next
    token), which would throw away the finished attribution. Such a token is labelled by its raw
    vocabulary entry instead.
    """

    def __init__(self, tokenizer) -> None:
        self._tokenizer = tokenizer

    def __getattr__(self, name: str):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)

    def decode(self, ids, *args, **kwargs) -> str:
        text = self._tokenizer.decode(ids, *args, **kwargs)
        if "\ufffd" not in text:
            return text
        flat = torch.as_tensor(ids).reshape(-1).tolist()
        return "".join(self._tokenizer.convert_ids_to_tokens(flat))


def blank_token(tokenizer) -> int:
    """The id the baseline puts in place of each token: a lone space if it is one token (byte-level
    BPE's ``Ġ``, SentencePiece's ``▁``), else the pad, end-of-text or unknown token, else 0."""
    space = tokenizer.encode(" ", add_special_tokens=False)
    if len(space) == 1:
        return int(space[0])
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id):
        if token_id is not None:
            return int(token_id)
    return 0


def _target_id(tm: TextModel, log_probs: torch.Tensor, target) -> int:
    """The id of the next token to explain: the top-1 (``target`` None), a token id, or a text
    that is exactly one token (``" mat"``)."""
    vocab = int(log_probs.shape[0])
    if target is None:
        return int(log_probs.argmax())
    if isinstance(target, str):
        if target == "":
            raise InputError("The next token to explain is empty: type one token (e.g. ' mat'), or leave it out.")
        ids = tm.tokenizer.encode(target, add_special_tokens=False)
        if len(ids) != 1:
            pieces = [tm.tokenizer.decode([i]) for i in ids]
            raise InputError(
                f"{target!r} is {len(ids)} tokens of this model ({', '.join(map(repr, pieces))}), not one: "
                f"the attribution explains a single next token. Try {pieces[0]!r}."
            )
        return int(ids[0])
    if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < vocab:
        raise InputError(f"target must be a token (text) or a token id from 0 to {vocab - 1}, not {target!r}.")
    return int(target)


def _log_prob(tm: TextModel, ids: torch.Tensor, token_id: int) -> torch.Tensor:
    """``[B]`` log p(token_id | ids[b]) at the last position, for ids ``(B, n)``."""
    with torch.no_grad():
        logits = tm.model(input_ids=ids).logits[:, -1]  # (B, V)
    return logits.float().log_softmax(dim=-1)[:, token_id]


def _describe(tm: TextModel, token_id: int, top_id: int, probability: float, top_probability: float) -> str:
    token = tm.tokenizer.decode([token_id], clean_up_tokenization_spaces=False)
    which = (
        "the model's top choice"
        if token_id == top_id
        else f"its top choice is {tm.tokenizer.decode([top_id], clean_up_tokenization_spaces=False)!r} "
        f"(p = {top_probability:.3g})"
    )
    return f"log-probability of the next token {token!r} (p = {probability:.3g}), {which}"


@falls_back_to_cpu("attributing the next token")
def next_token_attributions(
    model: TextModel,
    text: str,
    target=None,
    *,
    n_steps: int = N_STEPS,
    method: str = IG,
) -> TokenAttributions:
    """Attribution of a decoder's next-token log-probability to each token of the prompt.

    Args:
        model: a decoder :class:`~attnviz.TextModel` (``tm.causal``), e.g.
            ``attnviz.load_text_model("SmolLM2-135M-Instruct")``.
        text: the prompt, tokenized and cut exactly as :func:`attnviz.text_attention` does.
        target: None explains the top-1 next token; otherwise a token id or a text that is exactly
            one token of the model (``" mat"``: mind the leading space of byte-level BPE).
        n_steps: interpolation steps of integrated gradients (ignored by feature ablation).
        method: ``"integrated gradients"`` or ``"feature ablation"`` (:data:`NEXT_TOKEN_METHODS`).

    Returns:
        :class:`~attnviz.text.attribution.TokenAttributions` with ``kind="next token"``: ``scores``
        float64 ``[n]`` (0 for the first token and special tokens, which the baseline keeps),
        ``value`` = ``log p(next token)``, ``next_token`` / ``next_token_id`` /
        ``next_token_probability``, and for integrated gradients ``baseline_values`` (the log-prob
        at the baseline) and ``deltas`` (the convergence delta).

    Raises:
        InputError: empty text, not a decoder, a target that is not one token, a bad method or n_steps.
    """
    from captum.attr import (  # captum loads in ~1 s: only when needed
        FeatureAblation,
        LayerIntegratedGradients,
        LLMAttribution,
        LLMGradientAttribution,
    )

    tm = model
    if not getattr(tm, "causal", False):
        raise InputError(
            "next_token_attributions explains a decoder's next token; use token_attributions for an encoder."
        )
    if not isinstance(text, str) or is_blank(text):
        raise InputError("The text is empty: type a prompt whose next token should be explained.")
    if method not in NEXT_TOKEN_METHODS:
        raise InputError(f"method must be one of {', '.join(map(repr, NEXT_TOKEN_METHODS))}, not {method!r}.")
    check_steps(n_steps)
    _, enc, n_cut = encode(tm, text, limit=tm.max_eager_tokens)
    encoding = enc.encodings[0]
    special = np.array(encoding.special_tokens_mask, dtype=bool)  # (n,)
    ids = enc["input_ids"]  # (1, n), CPU
    n = ids.shape[1]
    fixed = special.copy()
    fixed[0] = True  # the attention sink stays in the baseline (module docstring)
    if fixed.all():
        raise InputError(
            "Nothing to attribute: the first token is kept as it is, and this prompt has no other "
            "(non-special) token. Type a longer prompt."
        )
    blank = blank_token(tm.tokenizer)
    # Per interpolation step: the attention (L x H x n x n) and the logits (n x V) dominate memory.
    per_step = max(1, tm.n_layers * tm.n_heads * n * n, n * int(tm.model.config.vocab_size))
    internal_batch = max(1, min(n_steps, MAX_CELLS // per_step))
    scores = np.zeros(n, dtype=np.float64)

    with tm.lock, torch.inference_mode(False), torch.enable_grad():
        device = tm.device
        on_device = ids.to(device)
        with torch.no_grad():
            all_log_probs = tm.model(input_ids=on_device).logits[0, -1].float().log_softmax(dim=-1)  # (V,)
        top_id = int(all_log_probs.argmax())
        token_id = _target_id(tm, all_log_probs, target)
        value = float(all_log_probs[token_id])
        inp = _text_token_input_class()(ids, tm.tokenizer, blank, fixed)
        target_tokens = torch.tensor([token_id])  # (1,): one next token, no generate()
        if method == IG:
            lig = LayerIntegratedGradients(tm.model, tm.model.get_input_embeddings())
            result = LLMGradientAttribution(lig, _LabelSafeTokenizer(tm.tokenizer)).attribute(
                inp, target=target_tokens, n_steps=n_steps, internal_batch_size=internal_batch
            )
        else:
            # One forward pass per token, the target appended to the prompt (no KV-cache replay).
            result = LLMAttribution(FeatureAblation(tm.model), _LabelSafeTokenizer(tm.tokenizer)).attribute(
                inp, target=target_tokens, forward_in_tokens=False
            )
        attributed = result.seq_attr.detach().double().cpu().numpy()  # (m,): the non-fixed tokens
        scores[~fixed] = attributed
        if method == IG:
            baseline_ids = inp.to_model_input(torch.zeros_like(inp.to_tensor())).to(device)  # (1, n)
            base = float(_log_prob(tm, baseline_ids, token_id)[0])
            baseline_values, deltas = (base,), (float(attributed.sum() - (value - base)),)
        else:
            baseline_values, deltas = (), ()
    return TokenAttributions(
        tokens=token_texts(tm, encoding),
        scores=scores,
        special=special,
        segment=np.zeros(n, dtype=np.int64),
        kind="next token",
        target=_describe(tm, token_id, top_id, float(np.exp(value)), float(all_log_probs[top_id].exp())),
        value=value,
        baseline_values=baseline_values,
        deltas=deltas,
        n_steps=n_steps if method == IG else 0,
        text=text,
        text_pair=None,
        model_name=tm.name,
        truncated=n_cut > 0,
        n_cut=n_cut,
        method=method,
        next_token=tm.tokenizer.decode([token_id], clean_up_tokenization_spaces=False),
        next_token_id=token_id,
        next_token_probability=float(np.exp(value)),
        blank_token=tm.tokenizer.decode([blank], clean_up_tokenization_spaces=False),
    )
