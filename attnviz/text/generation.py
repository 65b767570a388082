"""A decoder's next tokens, and text generated token by token with the attention of every step.

* :func:`next_tokens`: the model's k most likely next tokens after a text (or after any of its
  tokens), with their probabilities.
* :func:`generate`: continue a prompt one token at a time, greedy or sampled, reusing the keys and
  values of earlier tokens (``past_key_values``, the KV cache) so that each step runs the model
  on one new token only. Each step's attention row is kept, and the rows are assembled into one
  causal ``[layers, heads, n, n]`` array: a :class:`Generation` is an
  :class:`~attnviz.results.AttentionResult`, so the text views, figures and head statistics draw
  it like a :class:`~attnviz.TextAttention` of the final text.

Why the cache reproduces a full forward pass: a decoder's query i sees keys 0..i only, so the keys
and values of tokens 0..i-1 do not change when token i is appended. The row computed for the new
token from the cache equals row i of one forward pass over all the tokens, up to float rounding
(``tests/text/test_generation.py`` checks this to 1e-5).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.results import TokenSelfAttention
from attnviz.text.extraction import encode, is_blank, token_texts
from attnviz.text.loading import TextModel
from attnviz.text.recorded_attention import recording_attention

#: Most tokens one :func:`generate` call adds. Each step keeps a row of every layer's and head's
#: attention, and the page redraws the whole matrix, so generation is for short continuations.
MAX_NEW_TOKENS = 64


@dataclass(frozen=True)
class Generation(TokenSelfAttention):
    """A prompt, the tokens a decoder generated after it, and the attention of every step.

    Attributes:
        tokens: the n = ``n_prompt`` + ``n_generated`` tokens as text (``" cat"``), prompt first.
        token_ids: int64 ``[n]``, the ids of those tokens.
        n_prompt: how many of ``tokens`` are the prompt's (special tokens the tokenizer adds
            included).
        weights: float32 ``[layers, heads, n, n]``, rows 0..n_prompt-1 from the prompt's forward
            pass, then one row per generated token (computed when that token was fed back); row i
            is 0 after column i and sums to 1, as one forward pass over ``token_ids`` gives.
        probabilities: float64 ``[n_generated]``, the model's probability of each generated token
            when it was chosen: ``softmax(logits)`` at temperature 1, whatever the sampling
            settings (what :func:`next_tokens` reports for the same text).
        prompt: the prompt as given; ``text``: the prompt followed by the generated text
            (special tokens such as an end-of-sequence token left out).
        stopped_at_eos: generation ended on an end-of-sequence token (the last of ``tokens``).
        temperature, top_k, seed: the sampling settings (temperature 0: greedy, top_k and seed
            unused).
        special: bool ``[n]``, True for the tokenizer's special tokens (``<|im_end|>``, ...).
        model_name: the model that generated.
        causal: always True: a decoder's attention.

    For the views that read a :class:`~attnviz.TextAttention` (``attnviz.make_view``,
    ``attnviz.head_stats``) it also has ``segment`` (all 0), ``word_index`` and ``words`` (each
    token is a word of its own: the word level of a generation is its token level), ``text_pair``
    (None), ``truncated`` (False: an over-long prompt is refused, never cut) and ``n_cut`` (0).
    """

    tokens: list[str]
    token_ids: np.ndarray
    n_prompt: int
    weights: np.ndarray
    probabilities: np.ndarray
    prompt: str
    text: str
    stopped_at_eos: bool
    temperature: float
    top_k: int | None
    seed: int
    special: np.ndarray
    model_name: str = ""
    causal: bool = True
    text_pair: None = None
    truncated: bool = False
    n_cut: int = 0

    @property
    def n_generated(self) -> int:
        return len(self.tokens) - self.n_prompt

    @property
    def generated_tokens(self) -> list[str]:
        return self.tokens[self.n_prompt :]

    @property
    def segment(self) -> np.ndarray:
        return np.zeros(len(self.tokens), dtype=np.int64)

    @property
    def word_index(self) -> np.ndarray:
        return np.arange(len(self.tokens), dtype=np.int64)

    @property
    def words(self) -> list[str]:
        return list(self.tokens)

    def step_query(self, step: int) -> int:
        """Index of the token whose query chose generated token ``step`` (0-based): the one before it."""
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or not 0 <= step < self.n_generated:
            raise InputError(f"step must be a whole number from 0 to {self.n_generated - 1}, not {step!r}.")
        return self.n_prompt + int(step) - 1

    def step_attention(self, step: int) -> np.ndarray:
        """Where the model looked when it chose generated token ``step``: float32
        ``[layers, heads, n_prompt + step]``, the attention row of the token before it over every
        token before generated token ``step`` (the prompt and the ``step`` tokens generated so far).
        Each row sums to 1."""
        q = self.step_query(step)
        return self.weights[:, :, q, : q + 1]


def _require_decoder(tm: TextModel, what: str) -> None:
    if not getattr(tm, "causal", False):
        raise InputError(
            f"{what} needs a decoder language model, one that reads left to right and predicts the next token "
            f"(such as SmolLM2-135M-Instruct); {getattr(tm, 'name', 'this model')} is an encoder, which has no "
            "next token. Load a decoder with attnviz.load_text_model('SmolLM2-135M-Instruct')."
        )


def _whole_number(value, name: str, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, or an InputError naming ``name`` and the range."""
    whole = isinstance(value, int | np.integer) and not isinstance(value, bool)
    if not whole or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise InputError(f"{name} must be a whole number {bounds}, not {value!r}.")
    return int(value)


def _prompt_ids(tm: TextModel, text, what: str, limit: int | None = None) -> tuple[torch.Tensor, object]:
    """The token ids ``(1, n)`` of ``text`` on ``tm.device`` and its encoding; refuses what cannot run.

    ``limit``: the longest prompt; default ``tm.max_eager_tokens``, for generation, which keeps
    every head's weights."""
    where = "the limit of {} for generation" if limit is None else "this model's limit of {}"
    limit = tm.max_eager_tokens if limit is None else limit
    if not isinstance(text, str):
        raise InputError(f"{what} must be a string, not {type(text).__name__}.")
    if is_blank(text):
        raise InputError(f"{what} is empty: type some words for the model to continue.")
    inputs, enc, n_cut = encode(tm, text, limit=limit)
    n = enc["input_ids"].shape[1]
    if n_cut:
        # Cutting would drop the end of the text, the very tokens the next token follows.
        raise InputError(
            f"{what} has {n + n_cut} tokens, past {where.format(limit)}: shorten it by at least {n_cut} tokens."
        )
    if n == 0:
        raise InputError(f"The tokenizer kept nothing of {what.lower()}: type some words.")
    return inputs["input_ids"], enc.encodings[0]


def _stop_ids(tm: TextModel) -> set[int]:
    """End-of-sequence ids: the tokenizer's and those of the model's generation config (Llama 3 and
    chat models list several; ``model.generate`` stops on these too)."""
    ids = set()
    if tm.tokenizer.eos_token_id is not None:
        ids.add(int(tm.tokenizer.eos_token_id))
    config = getattr(tm.model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None)
    if eos is not None:
        ids.update(int(i) for i in (eos if isinstance(eos, list | tuple) else [eos]))
    return ids


def _decode_one(tm: TextModel, token_id: int) -> str:
    return tm.tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False)


@falls_back_to_cpu("predicting the next token")
def next_tokens(tm: TextModel, text: str, k: int = 5, position: int | None = None) -> list[tuple[str, float]]:
    """The ``k`` tokens a decoder finds most likely to come next, with their probabilities.

    Args:
        tm: a decoder language model (``tm.causal``).
        text: the text; its tokens are those of ``attnviz.text_attention(tm, text).tokens``.
        k: how many tokens, from 1 to the vocabulary's size.
        position: the token after which to predict (0-based, negative counts from the end, as
            Python's indexing); None: after the last token, i.e. what follows ``text``.

    Returns:
        ``[(token text, probability), ...]``, most likely first: ``softmax`` of the logits at that
        position (temperature 1), so the probabilities of all tokens of the vocabulary sum to 1.

    Raises:
        InputError: ``tm`` is an encoder; ``text`` is empty or longer than the model's limit;
            ``k`` or ``position`` is out of range.
    """
    _require_decoder(tm, "next_tokens")
    input_ids, _ = _prompt_ids(tm, text, "The text", limit=tm.max_tokens)  # (1, n), up to the model's context
    n = input_ids.shape[1]
    k = _whole_number(k, "k", 1)
    if position is None:
        position = n - 1
    if isinstance(position, bool) or not isinstance(position, int | np.integer) or not -n <= position < n:
        raise InputError(
            f"position must be a token index from 0 to {n - 1} (or -{n} to -1 from the end), not {position!r}: "
            f"the text has {n} tokens."
        )
    position = int(position) % n
    # Causal: the logits at `position` depend on tokens 0..position only, so the rest is not run,
    # and only that position's logits are computed (logits_to_keep=1), not n x vocabulary of them.
    # No weights are needed: the fused kernel (SDPA, through the recording function with nothing
    # recording) keeps an 8,192-token prompt's memory flat, where eager attention holds n² per head.
    with tm.lock, torch.inference_mode(), recording_attention(tm.model):
        ids = input_ids[:, : position + 1]
        logits = tm.model(input_ids=ids, logits_to_keep=1, use_cache=False).logits[0, -1]  # (vocab,)
        probs = torch.softmax(logits.float(), dim=-1)
        if k > probs.numel():
            raise InputError(f"k must be at most {probs.numel()}, the size of this model's vocabulary, not {k}.")
        top = torch.topk(probs, k)
    values, ids = top.values.cpu().tolist(), top.indices.cpu().tolist()
    return [(_decode_one(tm, i), float(p)) for i, p in zip(ids, values, strict=True)]


def _check_sampling(temperature, top_k, seed) -> tuple[float, int | None, int]:
    if isinstance(temperature, bool) or not isinstance(temperature, int | float | np.number):
        raise InputError(f"temperature must be a number (0 for greedy, such as 0.7 to sample), not {temperature!r}.")
    temperature = float(temperature)
    if not math.isfinite(temperature) or temperature < 0:
        raise InputError(
            f"temperature must be 0 (always the most likely token) or a positive number such as 0.7 or 1.0 "
            f"(sampling), not {temperature!r}."
        )
    if top_k is not None:
        top_k = _whole_number(top_k, "top_k", 1)
    seed = _whole_number(seed, "seed", 0, 2**63 - 1)
    return temperature, top_k, seed


def _choose(logits: torch.Tensor, temperature: float, top_k: int | None, generator: torch.Generator | None) -> int:
    """The next token id from ``logits (vocab,)``: argmax at temperature 0, else a draw from
    ``softmax(logits / temperature)`` over the ``top_k`` most likely tokens."""
    if temperature == 0.0:
        return int(torch.argmax(logits))
    # On the CPU in float64: the same seed draws the same token on any device. The maximum is
    # subtracted before dividing so that a tiny temperature gives -inf (probability 0), never NaN.
    scaled = logits.double().cpu()
    scaled = (scaled - scaled.max()) / temperature
    if top_k is not None and top_k < scaled.numel():
        values, indices = torch.topk(scaled, top_k)
    else:
        values, indices = scaled, torch.arange(scaled.numel())
    probs = torch.softmax(values, dim=-1)
    return int(indices[torch.multinomial(probs, 1, generator=generator)])


def _cache_name(model) -> str:
    """The forward argument that takes the KV cache: ``cache`` since transformers 5.25 (which warns
    that ``past_key_values`` will be removed in 5.40), ``past_key_values`` before."""
    # The class's forward: an instance's may be wrapped (hooks, test doubles) with *args, **kwargs.
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _step(tm: TextModel, input_ids: torch.Tensor, cache, capture: bool):
    """One forward pass of ``input_ids (1, t)`` after the ``cache`` of earlier tokens (None: none).

    Returns (logits of the last token ``(vocab,)``, attention rows ``(layers, heads, t, past + t)``
    as numpy float32 or None when not ``capture``, the updated cache).
    """
    cache_arg = {_cache_name(tm.model): cache} if cache is not None else {}
    out = tm.model(input_ids=input_ids, use_cache=True, output_attentions=capture, logits_to_keep=1, **cache_arg)
    rows = None
    if capture:
        if out.attentions is None or any(a is None for a in out.attentions):
            raise RuntimeError(f"{tm.name} returned no attention weights; load it with attn_implementation='eager'.")
        rows = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()  # (L, H, t, past + t)
    cache = out.cache if "cache" in out else out.past_key_values
    return out.logits[0, -1], rows, cache


def continue_ids(
    tm: TextModel,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
    capture: bool = True,
) -> tuple[list[int], list[float], bool, np.ndarray | None]:
    """The token loop of :func:`generate`, on checked arguments (also timed by ``benchmarks/generation.py``).

    Args:
        input_ids: ``(1, p)`` on ``tm.device``.
        capture: keep the attention (``output_attentions``); when False, no weights are returned.

    Returns:
        (generated ids, each one's probability at temperature 1, whether an end-of-sequence token
        ended it, weights float32 ``[layers, heads, p + g, p + g]`` or None).
    """
    stop = _stop_ids(tm)
    generator = torch.Generator().manual_seed(seed) if temperature > 0 else None
    p = input_ids.shape[1]
    generated: list[int] = []
    probabilities: list[float] = []
    stopped = False
    # The lock is held for the whole loop, not each pass: the cache lives on the model's device,
    # which must not change between steps (move_to_cpu takes this lock too).
    with tm.lock, torch.inference_mode():
        logits, prompt_rows, cache = _step(tm, input_ids, None, capture)  # prompt rows: (L, H, p, p)
        step_rows = []  # one (L, H, p + i + 1) per token fed back
        while True:
            token = _choose(logits, temperature, top_k, generator)
            generated.append(token)
            probabilities.append(float(torch.softmax(logits.float(), dim=-1)[token]))
            stopped = token in stop
            if not capture and (stopped or len(generated) == max_new_tokens):
                break  # the last token's own attention row is only wanted with capture
            # Feed the token back: its row of attention, and the logits for the next choice.
            logits, rows, cache = _step(tm, torch.tensor([[token]], device=input_ids.device), cache, capture)
            if capture:
                step_rows.append(rows[:, :, 0, :])
            if stopped or len(generated) == max_new_tokens:
                break
    if not capture:
        return generated, probabilities, stopped, None
    n = p + len(generated)
    weights = np.zeros((prompt_rows.shape[0], prompt_rows.shape[1], n, n), dtype=np.float32)  # (L, H, n, n)
    weights[:, :, :p, :p] = prompt_rows
    for i, row in enumerate(step_rows):  # row: (L, H, p + i + 1), query p + i over keys 0..p + i
        weights[:, :, p + i, : p + i + 1] = row
    return generated, probabilities, stopped, weights


@falls_back_to_cpu("generating text")
def generate(
    tm: TextModel,
    prompt: str,
    max_new_tokens: int = 20,
    temperature: float = 0.0,
    top_k: int | None = None,
    seed: int = 0,
) -> Generation:
    """Continue ``prompt`` token by token and keep the attention of every step.

    Each step runs the model on one new token with the keys and values of the earlier ones
    (``past_key_values``) and ``output_attentions=True``; the last generated token is fed back
    once more so that it has its own row of attention too.

    Args:
        tm: a decoder language model (``tm.causal``).
        prompt: the text to continue (tokenized as :func:`attnviz.text_attention` does).
        max_new_tokens: at most this many tokens are added, from 1 to :data:`MAX_NEW_TOKENS`;
            fewer when the model produces an end-of-sequence token (kept as the last token).
        temperature: 0 (default): greedy, always the most likely token, as
            ``model.generate(do_sample=False)``. Above 0: sample from
            ``softmax(logits / temperature)``, restricted to the ``top_k`` most likely tokens
            (None: all), with a ``torch.Generator`` seeded by ``seed`` (the same seed gives the
            same text).
        top_k, seed: see ``temperature``.

    Returns:
        A :class:`Generation`; ``weights`` float32 ``[layers, heads, n, n]`` over the prompt's and
        the generated tokens (n = n_prompt + n_generated).

    Raises:
        InputError: ``tm`` is an encoder; the prompt is empty; the prompt's tokens plus
            ``max_new_tokens`` exceed the limit for generation (``tm.max_eager_tokens``: the prompt is refused,
            not cut, since cutting it would change what is continued); an argument is out of range.
    """
    _require_decoder(tm, "generate")
    max_new_tokens = _whole_number(max_new_tokens, "max_new_tokens", 1, MAX_NEW_TOKENS)
    temperature, top_k, seed = _check_sampling(temperature, top_k, seed)
    input_ids, encoding = _prompt_ids(tm, prompt, "The prompt")  # (1, p)
    p = input_ids.shape[1]
    if p + max_new_tokens > tm.max_eager_tokens:
        room = tm.max_eager_tokens - p
        fewer = f", or ask for at most {room} new tokens" if room >= 1 else ""
        raise InputError(
            f"The prompt has {p} tokens and max_new_tokens is {max_new_tokens}: together past the limit "
            f"of {tm.max_eager_tokens} tokens for generation. Shorten the prompt to at most "
            f"{tm.max_eager_tokens - max_new_tokens} tokens{fewer}."
        )
    generated, probabilities, stopped, weights = continue_ids(
        tm, input_ids, max_new_tokens, temperature, top_k, seed, capture=True
    )
    ids = np.concatenate([input_ids[0].cpu().numpy().astype(np.int64), np.array(generated, dtype=np.int64)])
    special_ids = set(tm.tokenizer.all_special_ids)
    continuation = tm.tokenizer.decode(generated, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return Generation(
        tokens=token_texts(tm, encoding) + [_decode_one(tm, i) for i in generated],
        token_ids=ids,
        n_prompt=p,
        weights=weights,
        probabilities=np.array(probabilities, dtype=np.float64),
        prompt=prompt,
        text=prompt + continuation,
        stopped_at_eos=stopped,
        temperature=temperature,
        top_k=top_k,
        seed=seed,
        special=np.array([int(i) in special_ids for i in ids], dtype=bool),
        model_name=tm.name,
    )
