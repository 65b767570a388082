"""Inputs of exactly n tokens, cut from ordinary English prose at token boundaries."""

from __future__ import annotations

from textbench.inputs import CORPUS  # ordinary English prose, 548 tokens for SmolLM2's tokenizer


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, truncation=False, verbose=False)["input_ids"])


def text_with_tokens(tokenizer, n: int, corpus: str = CORPUS) -> str:
    """A prefix of ``corpus`` ending at a token boundary that the tokenizer counts as exactly ``n``
    tokens (special tokens included: SmolLM2's tokenizer adds none)."""
    enc = tokenizer(corpus, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = enc["offset_mapping"]
    added = n_tokens(tokenizer, "a") - len(tokenizer("a", add_special_tokens=False)["input_ids"])
    if n - added > len(offsets):
        raise SystemExit(f"the corpus has only {len(offsets) + added} tokens; cannot build {n}")
    # Cut after k tokens, nearest to n first; re-tokenizing a cut can merge pieces, so count again.
    for delta in range(12):
        for k in sorted({n - added - delta, n - added + delta}):
            if 1 <= k <= len(offsets):
                prefix = corpus[: offsets[k - 1][1]]
                if n_tokens(tokenizer, prefix) == n:
                    return prefix
    raise SystemExit(f"could not build an input of exactly {n} tokens")
