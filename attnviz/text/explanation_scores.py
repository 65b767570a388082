"""Is this picture faithful? Deletion and insertion scores of every explanation of one text.

:func:`score_text_explanations` (``attnviz.score_explanations`` on a text model) ranks the
removable tokens by each method, removes them in that order (deletion) or puts them back in that
order into an input with all of them removed (insertion), and follows the model's **target score**
(RISE, Petsiuk et al. 2018). The arithmetic of the curves is in :mod:`attnviz.maths.deletion_curves`
and :mod:`attnviz.maths.curve_runs`; the table in :mod:`attnviz.maths.explanation_table`.

Targets:

* a decoder (``tm.causal``): the probability (softmax) of the next token after the text, the
  model's top choice by default or the token given as ``target`` (one token, as text or id);
* an encoder with a masked-LM head: the probability of the predicted (or given) token at the first
  [MASK]; with a classification head, the predicted (or given) class's probability;
* a plain encoder (the bundled all-MiniLM-L6-v2): the cosine similarity of the sentence embedding
  (the mean of the last layer's token states, as sentence-transformers pools it) to the full
  input's embedding, so the full input scores 1.

Removal, one way for every method. A removed token's id is replaced by the neutral token the
integrated-gradients baseline uses: [PAD] for an encoder (:mod:`attnviz.text.attribution`), a
lone space token for a decoder (:func:`attnviz.text.next_token_attribution.blank_token`). The
input keeps its length and every other token keeps its position, so only the removed content
changes (dropping the token from the attention mask would keep positions too, but a decoder has
no such mask on the bundled path, and the attention rows would then lose a column for some
methods and not others). Using the IG baseline also makes the fully removed input exactly IG's
baseline, so IG's scores add up to the very change the curves span. Never removed: [CLS], [SEP]
and other special tokens, an MLM's [MASK], and a decoder's first token, its attention sink, which
the IG baseline keeps as well (blanking it moves every head at once, see
:mod:`attnviz.text.next_token_attribution`).

Methods (:data:`TEXT_METHODS`), each an importance over the removable tokens, read from the
*target position* (a decoder's last token, an encoder's [CLS], an MLM's [MASK]):

* ``attention (last layer)``: the last layer's attention from the target position, mean over heads;
* ``attention (best layer)``: the layer whose map agrees best with leave-one-out *on this input*
  (Spearman's rho, Abnar & Zuidema's measure). Leave-one-out is computed anyway, so the choice costs
  no forward pass, where comparing every layer on even a coarse deletion curve cost the bundled
  decoder 90 passes (30 layers); the row is named ``attention (best layer: L)``, 0-based like the
  app's layer picker. Choosing on the input that is scored is optimistic, and a note says so;
* ``attention (mean over layers)``: mean over layers and heads;
* ``rollout``: :func:`attnviz.rollout`'s row (a decoder's with the causal correction, as the app shows);
* ``attention × gradient``: Chefer et al. 2021 (:func:`~attnviz.maths.gradient_attention.gradient_weighted_rollout`);
* ``integrated gradients``: captum's ``LayerIntegratedGradients`` on the embeddings, of the target
  score, from the fully removed input (``ig_steps``, :data:`IG_STEPS` by default), signed; its
  convergence delta is carried on the result (``ig_delta``), and the app warns past 5 % of the change;
* ``leave-one-out``: captum's ``FeatureAblation``, one unit at a time, with the same removal;
* ``random``: mean and sd over ``random_orders`` orders (``numpy.random.default_rng(seed)``);
* ``position``: recency for a decoder, nearness to [CLS] for an encoder;
* ``attention flow``: Abnar & Zuidema's max-flow (:mod:`attnviz.text.attention_flow`), only up to
  :func:`~attnviz.text.attention_flow.flow_token_limit` tokens (about 2 s); past it a note says so.

Cost. Every curve point of every method is one masked input; all of them go through one pool
(each distinct mask once, batched, under ``torch.inference_mode``). The attention, its gradient
and the target come from one forward and backward pass. Everything holds ``tm.lock``: captum puts
hooks on the shared model (see docs/architecture.md).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.maths.agreement import spearman
from attnviz.maths.attention_rollout import rollout
from attnviz.maths.curve_runs import Progress, run_curves
from attnviz.maths.deletion_curves import (
    MaskScores,
    check_settings,
    chosen_methods,
    fractions,
    nearness,
    recency,
)
from attnviz.maths.explanation_table import RANDOM, ExplanationScores, assemble
from attnviz.maths.gradient_attention import gradient_weighted_rollout
from attnviz.maths.integral_check import check_steps
from attnviz.text.attention_flow import attention_flow, flow_token_limit
from attnviz.text.attribution import _embeddings, model_kind
from attnviz.text.extraction import encode, is_blank, token_texts
from attnviz.text.loading import TextModel
from attnviz.text.next_token_attribution import _target_id, blank_token

LAST = "attention (last layer)"
BEST = "attention (best layer)"
MEAN = "attention (mean over layers)"
ROLLOUT = "rollout"
GRADIENT = "attention × gradient"
IG = "integrated gradients"
LOO = "leave-one-out"
POSITION = "position"
FLOW = "attention flow"
#: The method names ``methods=`` accepts for a text model (rows may carry more words: the best
#: layer's number, the kind of position baseline).
TEXT_METHODS = (LAST, BEST, MEAN, ROLLOUT, GRADIENT, IG, LOO, RANDOM, POSITION, FLOW)
_ATTENTION = (LAST, BEST, MEAN, ROLLOUT, GRADIENT, FLOW)
#: Interpolation steps of integrated gradients. Each step is a forward and a backward pass, and the
#: scoreboard's budget is seconds: 16 steps kept the bundled models' convergence deltas small next
#: to the change explained on the sentences tried (the notes give each run's delta).
IG_STEPS = 16
#: Tokens per batch of masked inputs (16 inputs of 32 tokens). Progress moves once per batch: at
#: 2,048 tokens a batch took the bundled decoder about 7 s on one thread, with no sign of life;
#: at 512 it is under 2 s, and the panel was no slower.
BATCH_TOKENS = 512


class _TextTarget:
    """The target score of a batch of token ids ``[B, n]`` -> ``[B]`` (differentiable), and its words."""

    def __init__(self, tm: TextModel, inputs: dict, target):
        self.tm = tm
        self.ids = inputs["input_ids"]  # (1, n)
        self.types = inputs.get("token_type_ids")
        self.mask = inputs.get("attention_mask")
        self.kind = "next token" if tm.causal else model_kind(tm.model)
        self.fixed_positions: list[int] = []
        with torch.no_grad():
            if self.kind == "next token":
                self._setup_decoder(target)
            elif self.kind == "masked-lm":
                self._setup_masked(target)
            elif self.kind == "classification":
                self._setup_class(target)
            else:
                if target not in (None, "similarity"):
                    raise InputError(
                        "This encoder has no head to predict with: its target is the similarity of the sentence "
                        f"embedding to the full input's. Leave target out (it was {target!r})."
                    )
                self.row = 0
                self.reference = self._outputs(self.ids).last_hidden_state.mean(dim=1)  # (1, d)
                self.description = (
                    "cosine similarity of the sentence embedding (mean of the last layer's token states) to the "
                    "full input's (1 for the full input)"
                )

    # -- set-up per kind
    def _setup_decoder(self, target) -> None:
        tm = self.tm
        own = tm.model(input_ids=self.ids, use_cache=False).logits[0, -1].float()  # (V,)
        logits = self._decoder_logits(self.ids, False)[0][0].float()  # (V,)
        # The head on the last position alone skips n - 1 rows of the vocabulary projection; a model
        # that does more after its head (logit soft-capping, scaling) gets its own full forward instead.
        self.last_only = bool(torch.allclose(logits, own, rtol=1e-4, atol=1e-4))
        logits = logits if self.last_only else own
        log_probs = logits.float().log_softmax(dim=-1)
        top = int(log_probs.argmax())
        self.index = _target_id(tm, log_probs, target)
        self.row = int(self.ids.shape[1]) - 1
        p = float(log_probs[self.index].exp())
        token = tm.tokenizer.decode([self.index], clean_up_tokenization_spaces=False)
        which = (
            "the model's top choice"
            if self.index == top
            else f"its top choice is {tm.tokenizer.decode([top], clean_up_tokenization_spaces=False)!r} "
            f"(p = {float(log_probs[top].exp()):.3g})"
        )
        self.description = f"probability of the next token {token!r} (p = {p:.3g} after the full text), {which}"

    def _setup_masked(self, target) -> None:
        tm = self.tm
        mask_id = tm.tokenizer.mask_token_id
        positions = (self.ids[0] == mask_id).nonzero().flatten().tolist() if mask_id is not None else []
        if not positions:
            mask = tm.tokenizer.mask_token or "[MASK]"
            raise InputError(
                f"This model predicts masked words: write {mask} where a word should be predicted "
                f"(e.g. 'The cat sat on the {mask}.'); the scoreboard follows that word's probability."
            )
        self.row = positions[0]
        self.fixed_positions = positions
        probs = self._outputs(self.ids).logits[0, self.row].float().softmax(dim=-1)  # (V,)
        top = int(probs.argmax())
        if target is None:
            target = top
        elif isinstance(target, str):
            token_id = tm.tokenizer.convert_tokens_to_ids(target)
            if token_id is None or token_id == tm.tokenizer.unk_token_id:
                raise InputError(f"{target!r} is not a token of this model's vocabulary.")
            target = token_id
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < probs.shape[0]:
            raise InputError(f"target must be a token (or token id) of the vocabulary, not {target!r}.")
        self.index = int(target)
        token = tm.tokenizer.convert_ids_to_tokens(self.index)
        which = "the predicted token" if self.index == top else "not the predicted token"
        self.description = f"probability of {token!r} at the [MASK] (token {self.row}), {which}"

    def _setup_class(self, target) -> None:
        probs = self._outputs(self.ids).logits[0].float().softmax(dim=-1)  # (classes,)
        top = int(probs.argmax())
        target = top if target is None else target
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or not 0 <= target < probs.shape[0]:
            raise InputError(f"target must be a class index from 0 to {probs.shape[0] - 1}, not {target!r}.")
        self.index, self.row = int(target), 0
        label = self.tm.model.config.id2label.get(self.index, str(self.index))
        which = "the predicted class" if self.index == top else f"the model predicts class {top}"
        self.description = f"probability of class {self.index} ({label}), {which}"

    # -- forward passes
    def _outputs(self, ids: torch.Tensor, attentions: bool = False):
        b = ids.shape[0]
        kwargs = {"input_ids": ids}
        if self.mask is not None:
            kwargs["attention_mask"] = self.mask.expand(b, -1)
        if self.types is not None:
            kwargs["token_type_ids"] = self.types.expand(b, -1)
        if attentions:
            kwargs["output_attentions"] = True
        return self.tm.model(**kwargs)

    def _decoder_logits(self, ids: torch.Tensor, attentions: bool):
        """Logits at the last position ``[B, V]`` (the head runs on that position only), and the attentions."""
        if not getattr(self, "last_only", True):
            out = self.tm.model(input_ids=ids, use_cache=False, output_attentions=attentions)
            return out.logits[:, -1], out.attentions
        out = self.tm.model.base_model(input_ids=ids, use_cache=False, output_attentions=attentions)
        logits = self.tm.model.get_output_embeddings()(out.last_hidden_state[:, -1])  # (B, V)
        return logits, out.attentions

    def __call__(self, ids: torch.Tensor, attentions: bool = False):
        """``[B]`` target scores of ``ids`` ``[B, n]`` (and, with ``attentions``, every layer's weights)."""
        if self.kind == "next token":
            logits, att = self._decoder_logits(ids, attentions)
            score = logits.float().softmax(dim=-1)[:, self.index]
        else:
            out = self._outputs(ids, attentions)
            att = out.attentions if attentions else None
            if self.kind == "masked-lm":
                score = out.logits[:, self.row].float().softmax(dim=-1)[:, self.index]
            elif self.kind == "classification":
                score = out.logits.float().softmax(dim=-1)[:, self.index]
            else:
                pooled = out.last_hidden_state.mean(dim=1)  # (B, d)
                score = torch.nn.functional.cosine_similarity(pooled, self.reference.expand_as(pooled), dim=-1)
        return (score, att) if attentions else score


def _check_input(tm: TextModel, text, text_pair) -> tuple[str, str | None]:
    if not isinstance(tm, TextModel):
        raise InputError(f"score_explanations needs a text model (attnviz.load_text_model()), not {type(tm).__name__}.")
    if not isinstance(text, str) or is_blank(text):
        raise InputError("The text is empty: type a sentence whose explanations should be scored.")
    if text_pair is not None and not isinstance(text_pair, str):
        raise InputError(f"The second sentence must be a string, not {type(text_pair).__name__}.")
    text_pair = None if text_pair is None or is_blank(text_pair) else text_pair
    if tm.causal and text_pair is not None:
        raise InputError("A decoder language model reads one text, left to right: put both sentences in one text.")
    return text, text_pair


def _removal(tm: TextModel, blank: str) -> str:
    if tm.causal:
        return (
            f"A removed token is replaced by {blank!r}, the blank token the integrated-gradients baseline uses: the "
            "text keeps its length and every token its position, so only the removed content changes. The first "
            "token is never removed: it is the decoder's attention sink, which the baseline keeps too."
        )
    return (
        f"A removed token is replaced by {blank} (still attended), the token the integrated-gradients baseline "
        "uses: the text keeps its length and every token its position, so only the removed content changes. "
        "[CLS], [SEP] and other special tokens are never removed."
    )


@falls_back_to_cpu("scoring explanations")
def score_text_explanations(
    tm: TextModel,
    text: str,
    target=None,
    methods=None,
    steps: int = 20,
    random_orders: int = 20,
    seed: int = 0,
    text_pair: str | None = None,
    progress=None,
    ig_steps: int = IG_STEPS,
) -> ExplanationScores:
    """Deletion and insertion scores of every explanation of ``text`` (module docstring).

    Args:
        tm: a text model (encoder or decoder).
        text, text_pair: the input (a pair for encoders only); at most ``tm.max_eager_tokens`` tokens.
        target: decoder: the next token (one token as text, or an id; None: the top choice); MLM: the
            token at [MASK]; classifier: the class index; plain encoder: None.
        methods: None for all of :data:`TEXT_METHODS`, or a list of them.
        steps: curve points are ``steps + 1`` fractions 0..1.
        random_orders: orders averaged for the random row (0: no random row).
        seed: seed of the random orders.
        progress: ``progress(done, total, what)`` as the work advances.
        ig_steps: integrated gradients' steps (1 to 4096); more steps, a smaller convergence delta.

    Raises:
        InputError: empty or too long text, no removable token, an unknown method or a bad target.
    """
    check_settings(steps, random_orders, seed)
    ig_steps = check_steps(ig_steps)
    wanted = chosen_methods(methods, TEXT_METHODS)
    text, text_pair = _check_input(tm, text, text_pair)
    inputs, enc, n_cut = encode(tm, text, text_pair)
    n = int(inputs["input_ids"].shape[1])
    if n_cut or n > tm.max_eager_tokens:
        raise InputError(
            f"This text has {n + n_cut:,} tokens; the scoreboard takes at most {tm.max_eager_tokens:,} (it runs the "
            "model hundreds of times and reads every head's weights). Shorten the text."
        )
    encoding = enc.encodings[0]
    tokens = token_texts(tm, encoding)
    fixed = np.array(encoding.special_tokens_mask, dtype=bool)  # (n,)
    if tm.causal:  # the first token (the attention sink) stays; a removed token becomes the IG blank
        fixed[0] = True
        blank_id = blank_token(tm.tokenizer)
        blank_text = tm.tokenizer.decode([blank_id], clean_up_tokenization_spaces=False)
    else:  # [PAD], as attribution._blanked
        blank_id = 0 if tm.tokenizer.pad_token_id is None else int(tm.tokenizer.pad_token_id)
        blank_text = tm.tokenizer.convert_ids_to_tokens(blank_id)
    n_layers = tm.n_layers
    flow_limit = flow_token_limit(n_layers, tm.causal)
    notes: list[str] = []
    if FLOW in wanted and n > flow_limit:
        wanted.remove(FLOW)
        notes.append(
            f"Attention flow is left out: this input has {n} tokens, and max-flow over {n_layers} layers runs "
            f"within about 2 s only up to {flow_limit} tokens."
        )
    # Batches of steps (a quarter of them at most), then captum's two passes for the delta.
    ig_batches = math.ceil(ig_steps / _ig_batch(ig_steps, n)) + 2 if IG in wanted else 0
    prog = Progress(progress, 4 + ig_batches + (len(wanted) + random_orders) * (steps - 1) + n)
    phase = ["full input"]
    delta = float("nan")

    with tm.lock:
        target_fn = _TextTarget(tm, inputs, target)
        fixed[target_fn.fixed_positions] = True
        units = np.flatnonzero(~fixed)  # (m,) positions of the removable tokens
        if units.size == 0:
            besides = "the first token" if tm.causal else "[CLS], [SEP] and [MASK]"
            raise InputError(f"Nothing to remove: the text has no token besides {besides}. Type a longer text.")
        m = units.size
        ids = inputs["input_ids"]  # (1, n)
        units_t = torch.as_tensor(units, device=ids.device)

        def masked_ids(removed: np.ndarray) -> torch.Tensor:
            batch = ids.repeat(len(removed), 1)  # (B, n)
            sub = batch[:, units_t]
            sub[torch.as_tensor(removed, device=ids.device)] = blank_id
            batch[:, units_t] = sub
            return batch

        def compute(removed: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return target_fn(masked_ids(removed)).double().cpu().numpy()

        batch = max(1, min(64, BATCH_TOKENS // n))
        cache = MaskScores(m, batch=batch, progress=lambda k: prog.step(phase[0], k))
        full, removed_score = cache.scores(np.array([np.zeros(m, bool), np.ones(m, bool)]), compute)
        importance: dict[str, np.ndarray] = {}
        spent: dict[str, float] = {}
        row = target_fn.row
        per_layer = None
        if any(x in wanted for x in _ATTENTION):
            phase[0] = "attention and its gradient"
            began = time.perf_counter()
            with torch.inference_mode(False), torch.enable_grad():
                score, att = target_fn(ids, attentions=True)
                if att is None or any(a is None for a in att):
                    raise RuntimeError(
                        f"{tm.name} returned no attention weights (it must be loaded with eager attention)."
                    )
                grads = torch.autograd.grad(score.sum(), att) if GRADIENT in wanted else None
            weights = torch.stack([a[0].detach() for a in att]).double().cpu().numpy()  # (L, H, n, n)
            shared = time.perf_counter() - began
            prog.step(phase[0])
            users = [x for x in _ATTENTION if x in wanted]
            for method in users:
                began = time.perf_counter()
                if method == LAST:
                    imp = weights[-1, :, row].mean(axis=0)[units]
                elif method == MEAN:
                    imp = weights[:, :, row].mean(axis=(0, 1))[units]
                elif method == ROLLOUT:
                    imp = rollout(weights, causal=tm.causal)[row][units]
                elif method == GRADIENT:
                    g = torch.stack([x[0] for x in grads]).double().cpu().numpy()  # (L, H, n, n)
                    imp = gradient_weighted_rollout(weights, g)[row][units]
                elif method == FLOW:
                    phase[0] = "attention flow"
                    imp = attention_flow(weights, row, targets=units)[units]
                    prog.step(phase[0])
                else:  # BEST: every layer is a candidate, chosen against leave-one-out below
                    per_layer = {layer: weights[layer, :, row].mean(axis=0)[units] for layer in range(n_layers)}
                    imp = None
                if imp is not None:
                    importance[method] = np.asarray(imp, dtype=np.float64)
                spent[method] = time.perf_counter() - began + shared / len(users)
        if IG in wanted:
            phase[0] = "integrated gradients"
            began = time.perf_counter()
            importance[IG], delta = _integrated_gradients(
                tm,
                target_fn,
                ids,
                masked_ids(np.ones((1, m), bool)),
                units,
                n,
                ig_steps,
                on_batch=lambda: prog.step(phase[0]),
            )
            spent[IG] = time.perf_counter() - began
            change = float(full - removed_score)
            share = f" ({abs(delta) / abs(change):.0%} of the change it explains)" if change else ""
            notes.append(f"Integrated gradients: {ig_steps} steps, convergence delta {delta:.3g}{share}.")
        # Leave-one-out is the reference of every row's loo_spearman: computed even when not a row.
        phase[0] = "leave-one-out"
        began, cached = time.perf_counter(), cache.seconds
        loo = _leave_one_out(cache, compute, m)
        loo_seconds = time.perf_counter() - began - (cache.seconds - cached)
        loo_masks = np.eye(m, dtype=bool)  # (m, m): unit i removed alone
        if LOO in wanted:
            importance[LOO] = loo
            spent[LOO] = loo_seconds
        best_layer = None
        if per_layer is not None:
            # Ties (and constant maps, whose rho is NaN) go to the later layer: "no better layer" then
            # shows as the last layer's own row.
            agreement = {layer: np.nan_to_num(spearman(m, loo), nan=-np.inf) for layer, m in per_layer.items()}
            best_layer = max(reversed(list(agreement)), key=agreement.__getitem__)
            importance[BEST] = per_layer[best_layer]
        if POSITION in wanted:
            importance[POSITION] = recency(n)[units] if tm.causal else nearness(units)
            spent[POSITION] = 0.0
        phase[0] = "curves"
        runs, rows = run_curves(
            cache,
            compute,
            importance={k: importance[k] for k in wanted if k in importance},
            steps=steps,
            random_count=random_orders if RANDOM in wanted else 0,
            seed=seed,
            extra_masks={LOO: loo_masks} if LOO in wanted else None,
            importance_seconds=spent,
            on_total=lambda k: prog.expect(k),
        )
    prog.finish()
    renames = {POSITION: "position (recency)" if tm.causal else "position (nearness to [CLS])"}
    if best_layer is not None:
        best_layer = int(best_layer)
        renames[BEST] = f"attention (best layer: {best_layer})"
        notes.append(
            f"The best layer ({best_layer}) was picked among {n_layers} for agreeing best with leave-one-out on this "
            "very input, so its row is optimistic: on another input another layer may win."
        )
    if tm.causal:
        notes.append("The first token is never removed (the decoder's attention sink; the IG baseline keeps it too).")

    def renamed(d: dict) -> dict:
        return {renames.get(k, k): v for k, v in d.items()}

    return assemble(
        fractions=fractions(steps),
        importance=renamed({k: rows[k] for k in TEXT_METHODS if k in rows}),
        deletion_raw=renamed(runs.deletion),
        insertion_raw=renamed(runs.insertion),
        seconds=renamed(runs.seconds),
        loo=loo,
        random_deletion_raw=runs.random_deletion,
        random_insertion_raw=runs.random_insertion,
        random_importance=runs.random_importance,
        random_seconds=runs.random_seconds,
        full_score=float(full),
        removed_score=float(removed_score),
        target=target_fn.description,
        removal=_removal(tm, blank_text),
        units=[tokens[i] for i in units],
        notes=notes,
        model_name=tm.name,
        family="decoder" if tm.causal else "encoder",
        steps=steps,
        random_orders=random_orders if RANDOM in wanted else 0,
        seed=seed,
        best_layer=best_layer,
        ig_steps=ig_steps if IG in wanted else None,
        ig_delta=delta,
    )


def _leave_one_out(cache: MaskScores, compute, m: int) -> np.ndarray:
    """captum's FeatureAblation over the units (a keep-vector of ones, each set to 0 in turn), its
    forward passes going through the shared pool: ``[m]`` full score minus the score without unit i."""
    from captum.attr import FeatureAblation

    def forward(keep: torch.Tensor) -> torch.Tensor:  # (B, m) 1 = kept
        removed = keep.detach().cpu().numpy() < 0.5
        return torch.as_tensor(cache.scores(removed, compute))

    attribution = FeatureAblation(forward).attribute(
        torch.ones(1, m, dtype=torch.float64), baselines=0.0, perturbations_per_eval=m
    )
    return attribution[0].double().numpy()


def _ig_batch(ig_steps: int, n: int) -> int:
    """Steps per batch of integrated gradients on ``n`` tokens."""
    return max(1, min(ig_steps // 4, BATCH_TOKENS // n))


def _integrated_gradients(
    tm: TextModel, target_fn, ids, baseline, units, n, ig_steps: int, on_batch
) -> tuple[np.ndarray, float]:
    """Signed IG of the target score per removable token, from the fully removed input; and its delta.

    ``on_batch()`` is called after each forward pass captum makes. The steps go in batches of at most
    a quarter of them, so that progress moves during IG: in one batch, the decoder's 16 steps at 32
    tokens were the panel's longest silence (8.8 s).
    """
    from captum.attr import LayerIntegratedGradients

    def forward(batch: torch.Tensor) -> torch.Tensor:
        out = target_fn(batch)
        on_batch()
        return out

    layer = tm.model.get_input_embeddings() if tm.causal else _embeddings(tm.model)
    internal = _ig_batch(ig_steps, n)
    with torch.inference_mode(False), torch.enable_grad():
        lig = LayerIntegratedGradients(forward, layer)
        attributions, delta = lig.attribute(
            ids, baselines=baseline, n_steps=ig_steps, internal_batch_size=internal, return_convergence_delta=True
        )
    scores = attributions.sum(dim=-1)[0].detach().double().cpu().numpy()  # (1, n, d) -> (n,)
    return scores[units], float(delta.detach().reshape(-1)[0])
