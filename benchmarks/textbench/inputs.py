"""Inputs: the corpus, prefixes of it that are exactly n tokens, and the two models measured."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

import attnviz

from .common import BUNDLED_TEXT_MODEL, CLICK_SIZE, VIEW_SIZE

# Ordinary English prose (written for this benchmark), ~540 tokens for the bundled tokenizer.
CORPUS = """\
On the first warm morning of spring, the small town by the river woke up a little earlier than usual. \
The baker opened his shop before six, and the smell of fresh bread drifted down the main street, past \
the post office and the old stone church. A few children walked slowly to school, stopping to look at \
the ducks that had returned to the pond in the park. Their parents hurried behind them, checking the \
time and talking about the weather, which had been cold and grey for most of the winter.
At the library, Mrs. Carter unlocked the heavy wooden door and switched on the lights. She liked the \
quiet hour before the first visitors arrived. She sorted the returned books, watered the plants on the \
windowsill, and wrote the date on the small board near the entrance. Later that day, a group of \
students would come to study for their exams, and an old man who read the newspaper every afternoon \
would sit in his favourite chair by the window.
Down at the harbour, the fishermen were already coming back with their boats. The sea had been calm \
during the night, and the catch was better than they had expected. They carried boxes of fish to the \
market, where the first customers were waiting with bags and baskets. Prices were written on pieces of \
cardboard, and people argued politely about which fish looked the freshest.
In the afternoon, the sun grew stronger, and the square filled with people. Some sat outside the cafe \
with cups of coffee, reading or watching the pigeons. A young woman played the guitar near the \
fountain, and a small crowd gathered to listen. When she finished a song, they clapped and dropped a \
few coins into the open case at her feet. A dog slept in the shade under a bench, ignoring everything \
around it.
By the evening, the air became cooler again, and a light wind came in from the water. Families walked \
along the river path, and the lights of the houses on the hill began to appear one by one. The baker \
closed his shop, tired but happy, because he had sold almost everything. Mrs. Carter locked the library \
and walked home through the park, where the ducks were settling down for the night.
Nobody in the town thought that this was a special day. It was simply the first day of the year when \
people could leave their heavy coats at home, open their windows, and stay outside a little longer. \
Yet many of them would remember it later, because it marked the end of a long winter and the beginning \
of a season full of plans. The farmers talked about planting, the teachers talked about the summer \
holidays, and the children talked about swimming in the river as soon as the water was warm enough.
"""


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"])


def text_with_tokens(tokenizer, n: int, corpus: str = CORPUS) -> str:
    """A prefix of ``corpus``, cut at a word end, that is exactly ``n`` tokens with [CLS]/[SEP]."""
    enc = tokenizer(corpus, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = enc["offset_mapping"]
    if n - 2 > len(offsets):
        raise SystemExit(f"the corpus has only {len(offsets) + 2} tokens; cannot build {n}")
    # Try cuts after k word pieces, nearest to n - 2 first; keep one the tokenizer counts as n.
    for delta in range(0, 12):
        for k in {n - 2 - delta, n - 2 + delta}:
            if not 1 <= k <= len(offsets):
                continue
            prefix = corpus[: offsets[k - 1][1]].strip()
            if n_tokens(tokenizer, prefix) == n:
                return prefix
    raise SystemExit(f"could not build an input of exactly {n} tokens")


def encode(tm, text: str) -> tuple[dict, object]:
    """Model inputs exactly as the app tokenizes (cut to the model's limit), and the tokenizer's output."""
    enc = tm.tokenizer(text, truncation="longest_first", max_length=tm.max_tokens, return_tensors="pt")
    keep = ("input_ids", "token_type_ids", "attention_mask")
    return {k: v.to(tm.device) for k, v in enc.items() if k in keep}, enc


def bundled_model_dir() -> Path:
    from attnviz.text.loading import bundled_model_dir as _dir

    return _dir()


@dataclass
class ModelCase:
    key: str  # short id
    label: str  # shown in tables
    load_name: str | None  # what load_text_model / the sidebar field gets (None = bundled)
    tm: object = None
    texts: dict = field(default_factory=dict)  # n -> text


def make_random_bert(folder: Path) -> None:
    """bert-base-sized encoder (BertConfig defaults) with random weights + the bundled tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig()).save_pretrained(folder)
    AutoTokenizer.from_pretrained(bundled_model_dir(), trust_remote_code=False).save_pretrained(folder)


def load_cases(sizes: list[int], folder: Path) -> list[ModelCase]:
    """Both models, loaded, each with a text of exactly n tokens per size (minilm: also the view and click sizes).

    The random bert-base is written to ``folder`` first; the caller removes it.
    """
    make_random_bert(folder)
    cases = [
        ModelCase("minilm", f"bundled {BUNDLED_TEXT_MODEL} (6 layers × 12 heads)", None),
        ModelCase(
            "bert-base", "random-weight bert-base (BertConfig defaults: 12 layers × 12 heads, hidden 768)", str(folder)
        ),
    ]
    for c in cases:
        c.tm = attnviz.load_text_model(c.load_name)
        wanted = set(sizes) | {VIEW_SIZE, CLICK_SIZE} if c.key == "minilm" else set(sizes)
        for n in sorted(wanted):
            c.texts[n] = text_with_tokens(c.tm.tokenizer, n)
            assert n_tokens(c.tm.tokenizer, c.texts[n]) == n
    return cases
