"""Head statistics over a corpus: a ``.txt`` file with one sentence per line.

The per-sentence sums of :class:`~attnviz.head_behaviour.HeadTotals` are added up over every
sentence, so the table has the same columns as :func:`attnviz.head_stats` and every token of
the corpus counts once. Sentences are run through the model in batches (padded, at most
:data:`MAX_BATCH_CELLS` attention cells per forward pass, so one long line cannot blow up a
batch); a callback reports progress after each batch and another can stop the run between
batches. Lines longer than the model's limit are cut to it, and counted.

Reading a file: :func:`decode_corpus` (bytes, e.g. an upload) and :func:`scan_corpus_file` +
:func:`iter_corpus_file` (a path, streamed line by line, for the command line) check that the
text is UTF-8 and not empty, and enforce optional size limits, before any model runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.divergence import DivergenceTotals
from attnviz.errors import InputError
from attnviz.head_behaviour import HeadTotals
from attnviz.text_model import TextModel

#: Sentences per batch (before the cell budget below splits a batch further).
BATCH_SIZE = 32
#: Attention cells (batch x heads x layers x t x t) of one forward pass: 50M float32 = 200 MB.
MAX_BATCH_CELLS = 50_000_000
#: The head map (Jensen–Shannon divergence) uses the first this many sentences; it costs
#: ~10 ms a sentence against ~5 ms for everything else.
DIVERGENCE_SENTENCES = 200
_BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16", b"\xff\xfe\x00\x00": "UTF-32"}

ProgressFn = Callable[[int, int | None], None]


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Corpus:
    """Sentences read from a file: the non-blank lines, stripped, in order."""

    sentences: list[str]
    lines: int  # lines in the file, blank ones included
    empty_lines: int  # blank lines skipped (or lines of only invisible characters)
    name: str = "the file"

    def __len__(self) -> int:
        return len(self.sentences)


def _human_bytes(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n / 1000:.1f} kB"


def _check_size(size: int, name: str, max_bytes: int | None) -> None:
    if size == 0:
        raise InputError(f"{name} is empty: put one sentence per line.")
    if max_bytes is not None and size > max_bytes:
        raise InputError(
            f"{name} is {_human_bytes(size)}; the limit here is {_human_bytes(max_bytes)}. Split it into smaller "
            "files, or run the command line `python -m attnviz.stats FILE --out stats.csv`, which has no limit."
        )


def _decode_line(raw: bytes, number: int, name: str) -> str:
    """One line as text, or an InputError that says where the file stops being UTF-8 text."""
    if b"\x00" in raw:
        raise InputError(
            f"{name} looks like a binary file, not text (line {number} holds a NUL byte). "
            "Upload a plain .txt file with one sentence per line."
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex().upper()
        raise InputError(
            f"{name} is not UTF-8 text: line {number} has the byte 0x{bad} at character {exc.start + 1}, "
            "which UTF-8 does not allow (the file was probably saved as Latin-1 or Windows-1252). "
            "Save it as UTF-8 and try again."
        ) from exc


def _lines(raw_lines: Iterable[bytes], name: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, text without the line end) for every line of a byte stream."""
    for number, raw in enumerate(raw_lines, start=1):
        if number == 1:
            for bom, encoding in _BOMS.items():
                if raw.startswith(bom):
                    raise InputError(f"{name} is {encoding} text; save it as UTF-8 and try again.")
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark is not part of the text
        yield number, _decode_line(raw.rstrip(b"\r\n"), number, name)


def decode_corpus(
    data: bytes, *, name: str = "the file", max_bytes: int | None = None, max_sentences: int | None = None
) -> Corpus:
    """Read uploaded bytes as UTF-8 text, one sentence per line (blank lines are skipped and counted).

    Raises:
        InputError: empty, larger than ``max_bytes``, more than ``max_sentences`` sentences,
            not UTF-8, or binary; the message names the line and says what to do.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise InputError(f"A corpus is read from bytes, not {type(data).__name__}.")
    _check_size(len(data), name, max_bytes)
    sentences, lines, empty = [], 0, 0
    for number, text in _lines(bytes(data).splitlines(), name):
        lines, text = number, text.strip()
        if text:
            sentences.append(text)
        else:
            empty += 1
    _check_count(len(sentences), name, max_sentences)
    return Corpus(sentences=sentences, lines=lines, empty_lines=empty, name=name)


def _check_count(count: int, name: str, max_sentences: int | None) -> None:
    if count == 0:
        raise InputError(f"{name} has only blank lines: put one sentence per line.")
    if max_sentences is not None and count > max_sentences:
        raise InputError(
            f"{name} has {count:,} sentences; the limit here is {max_sentences:,}. Split it into smaller files, "
            "or run the command line `python -m attnviz.stats FILE --out stats.csv`, which has no limit."
        )


def scan_corpus_file(
    path: str | os.PathLike, *, max_bytes: int | None = None, max_sentences: int | None = None
) -> Corpus:
    """Check a file as :func:`decode_corpus` does, streaming it; the sentences are not kept.

    Returns a :class:`Corpus` with an empty ``sentences`` list and the counts filled in;
    iterate :func:`iter_corpus_file` for the sentences (a second pass).
    """
    path = Path(path)
    name = path.name or str(path)
    if not path.is_file():
        raise InputError(f"{path} is not a file. Give the path of a .txt file with one sentence per line.")
    _check_size(path.stat().st_size, name, max_bytes)
    count = lines = empty = 0
    with open(path, "rb") as f:
        for number, text in _lines(f, name):
            lines = number
            if text.strip():
                count += 1
            else:
                empty += 1
    _check_count(count, name, max_sentences)
    return Corpus(sentences=[], lines=lines, empty_lines=empty, name=name)


def iter_corpus_file(path: str | os.PathLike) -> Iterator[str]:
    """The non-blank lines of a UTF-8 file, stripped, read lazily (check it with :func:`scan_corpus_file`)."""
    path = Path(path)
    with open(path, "rb") as f:
        for _, text in _lines(f, path.name):
            if text := text.strip():
                yield text


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class SentenceAttention:
    """The attention of one sentence of a batch, padding removed."""

    weights: np.ndarray  # float32 [layers, heads, n, n]
    tokens: list[str]
    special: np.ndarray  # bool [n]
    n_cut: int  # tokens cut because the line was longer than the model's limit


def _groups(lengths: list[int], cells_per_token2: int, max_cells: int) -> list[list[int]]:
    """Indices of the batch, sorted by length and split so that each forward pass stays in budget."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    groups: list[list[int]] = []
    for i in order:
        # Sorted ascending: the newest member is the longest and sets the padded length.
        if groups and (len(groups[-1]) + 1) * cells_per_token2 * lengths[i] ** 2 <= max_cells:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


@falls_back_to_cpu("computing corpus statistics")
def batch_attention(
    tm: TextModel, sentences: list[str], *, max_cells: int = MAX_BATCH_CELLS
) -> list[SentenceAttention]:
    """Attention of each sentence, run in padded batches; returned in the order given.

    Padding keys get exactly 0 weight (BERT adds the dtype's minimum to masked scores), so
    each sentence's rows, cut to its own tokens, are its attention as if run alone (to float
    rounding: batched matrix products may differ by ~1e-7).
    """
    tok = tm.tokenizer
    limit = tm.max_tokens
    lengths = [len(ids) for ids in tok(sentences, truncation=False, verbose=False)["input_ids"]]
    cut = [max(0, n - limit) for n in lengths]
    # [UNK] (an unknown word, e.g. one over 100 characters) is text, not a marker: as in
    # text_extraction's special_tokens_mask, so a line of one long word is not "blank".
    special_ids = np.array(sorted(set(tok.all_special_ids) - {tok.unk_token_id}), dtype=np.int64)
    out: list[SentenceAttention | None] = [None] * len(sentences)
    cells = tm.n_layers * tm.n_heads
    for group in _groups([min(n, limit) for n in lengths], cells, max_cells):
        padded = tok(
            [sentences[i] for i in group], truncation=True, max_length=limit, padding=True, return_tensors="pt"
        )
        inputs = {
            k: v.to(tm.device) for k, v in padded.items() if k in ("input_ids", "token_type_ids", "attention_mask")
        }
        with tm.lock, torch.inference_mode():
            attentions = tm.model(**inputs, output_attentions=True).attentions
        # L tensors (B, H, T, T) -> (B, L, H, T, T)
        stacked = torch.stack(attentions, dim=1).float().cpu().numpy()
        mask = padded["attention_mask"].numpy().astype(bool)  # (B, T)
        for b, i in enumerate(group):
            keep = np.flatnonzero(mask[b])  # works for left or right padding
            ids = np.asarray(padded["input_ids"][b].numpy()[keep], dtype=np.int64)
            out[i] = SentenceAttention(
                weights=np.ascontiguousarray(stacked[b][:, :, keep[:, None], keep[None, :]]),
                tokens=tok.convert_ids_to_tokens(ids.tolist()),
                special=np.isin(ids, special_ids),
                n_cut=cut[i],
            )
    return out  # type: ignore[return-value]


@dataclass(frozen=True)
class CorpusStats:
    """Head statistics of a corpus and what happened while computing them.

    Attributes:
        table: one row per (layer, head), the columns of :func:`attnviz.head_stats`.
        divergence: ``[m, m]`` mean Jensen–Shannon divergence between heads (m = layers·heads)
            over the first :data:`DIVERGENCE_SENTENCES` sentences, or None.
        sentences, tokens: how many were processed (tokens include [CLS]/[SEP]).
        total: how many sentences there were to process (None when unknown).
        truncated_lines, tokens_cut: lines longer than the model's limit, and tokens cut from them.
        empty_lines: blank lines skipped (and lines of only invisible characters).
        cancelled: the run was stopped before the end; the table covers the sentences processed.
        seconds: time spent running the model and adding up.
    """

    table: pd.DataFrame
    divergence: np.ndarray | None
    model_name: str
    sentences: int
    tokens: int
    total: int | None
    truncated_lines: int
    tokens_cut: int
    empty_lines: int
    cancelled: bool
    seconds: float
    max_tokens: int

    @property
    def sentences_per_second(self) -> float:
        return self.sentences / self.seconds if self.seconds > 0 else float("nan")

    def notes(self) -> list[str]:
        """Sentences a person should read about this run (cut lines, blank lines, stopped early)."""
        notes = []
        if self.cancelled:
            of = f" of {self.total:,}" if self.total is not None else ""
            notes.append(f"Stopped after {self.sentences:,}{of} sentences: the statistics cover those.")
        if self.truncated_lines:
            notes.append(
                f"{self.truncated_lines:,} line{'s were' if self.truncated_lines > 1 else ' was'} longer than the "
                f"model's limit of {self.max_tokens} tokens and cut to it ({self.tokens_cut:,} tokens dropped)."
            )
        if self.empty_lines:
            notes.append(f"{self.empty_lines:,} blank line{'s were' if self.empty_lines > 1 else ' was'} skipped.")
        return notes


@dataclass
class CorpusAccumulator:
    """Running totals of a corpus run; :meth:`add_batch` as often as wanted, then :meth:`result`.

    Kept between Streamlit reruns by the head-statistics page, so that a run interrupted by a
    click resumes where it was.
    """

    model_name: str
    n_layers: int
    n_heads: int
    max_tokens: int
    heads: HeadTotals = field(init=False)
    divergence: DivergenceTotals = field(default_factory=DivergenceTotals)
    divergence_sentences: int = DIVERGENCE_SENTENCES
    tokens: int = 0
    truncated_lines: int = 0
    tokens_cut: int = 0
    empty_lines: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.heads = HeadTotals(self.n_layers, self.n_heads)

    @classmethod
    def for_model(cls, tm: TextModel, **kwargs) -> CorpusAccumulator:
        return cls(model_name=tm.name, n_layers=tm.n_layers, n_heads=tm.n_heads, max_tokens=tm.max_tokens, **kwargs)

    @property
    def sentences(self) -> int:
        return self.heads.sentences

    def add_batch(self, tm: TextModel, sentences: list[str]) -> None:
        """Run ``sentences`` through ``tm`` and add them; blank ones are skipped and counted."""
        if tm.name != self.model_name or (tm.n_layers, tm.n_heads) != (self.n_layers, self.n_heads):
            raise InputError(f"These totals belong to {self.model_name!r}; they cannot take {tm.name!r}'s attention.")
        started = time.perf_counter()
        kept = [s.strip() for s in sentences if isinstance(s, str) and s.strip()]
        results = batch_attention(tm, kept) if kept else []
        # A line of only invisible characters tokenizes to [CLS] [SEP]: nothing to analyse.
        results = [r for r in results if not r.special.all()]
        self.empty_lines += len(sentences) - len(results)
        if results:
            # Sums of the batch first, merged at the end: a run stopped mid-batch leaves the totals whole.
            batch = HeadTotals(self.n_layers, self.n_heads)
            div = DivergenceTotals()
            for r in results:
                batch.add(r.weights, r.tokens, r.special)
                if self.divergence.sentences + div.sentences < self.divergence_sentences:
                    div.add(r.weights)
            self._merge(batch, div, results)
        self.seconds += time.perf_counter() - started

    def _merge(self, batch: HeadTotals, div: DivergenceTotals, results: list[SentenceAttention]) -> None:
        for name, total in batch.sums.items():
            self.heads.sums[name] = self.heads.sums[name] + total
        self.heads.rows += batch.rows
        self.heads.prev_rows += batch.prev_rows
        self.heads.next_rows += batch.next_rows
        self.heads.sentences += batch.sentences
        if div.sums is not None:
            self.divergence.sums = div.sums if self.divergence.sums is None else self.divergence.sums + div.sums
            self.divergence.rows += div.rows
            self.divergence.sentences += div.sentences
        self.tokens += sum(len(r.tokens) for r in results)
        self.truncated_lines += sum(r.n_cut > 0 for r in results)
        self.tokens_cut += sum(r.n_cut for r in results)

    def result(self, *, total: int | None = None, cancelled: bool = False) -> CorpusStats:
        return CorpusStats(
            table=self.heads.table(),
            divergence=self.divergence.mean(),
            model_name=self.model_name,
            sentences=self.sentences,
            tokens=self.tokens,
            total=total,
            truncated_lines=self.truncated_lines,
            tokens_cut=self.tokens_cut,
            empty_lines=self.empty_lines,
            cancelled=cancelled,
            seconds=self.seconds,
            max_tokens=self.max_tokens,
        )


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def corpus_head_stats(
    tm: TextModel,
    sentences: Iterable[str] | str | os.PathLike,
    *,
    batch_size: int = BATCH_SIZE,
    total: int | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CorpusStats:
    """Head statistics averaged over many sentences (every token counts once).

    Args:
        tm: a model from :func:`attnviz.load_text_model`.
        sentences: an iterable of sentences (read lazily, ``batch_size`` at a time), or the
            path of a UTF-8 ``.txt`` file with one sentence per line (checked first).
            Blank sentences are skipped and counted.
        total: how many sentences to expect, for ``progress`` (taken from a list's length or
            the file when not given).
        progress: called as ``progress(done, total)`` after every batch.
        should_stop: called between batches; when it returns True the run stops and the
            result covers the sentences processed so far (``cancelled=True``).

    Returns:
        :class:`CorpusStats`; ``.table`` has the columns of :func:`attnviz.head_stats`.

    Example::

        stats = attnviz.corpus_head_stats(tm, "sentences.txt", progress=lambda d, t: print(d, "/", t))
        stats.table.to_csv("stats.csv", index=False)
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}.")
    empty_in_file = 0
    if isinstance(sentences, (str, os.PathLike)):
        corpus = scan_corpus_file(sentences)
        total = len_hint = corpus.lines - corpus.empty_lines
        empty_in_file = corpus.empty_lines
        sentences = iter_corpus_file(sentences)
    else:
        len_hint = len(sentences) if hasattr(sentences, "__len__") else None
    total = total if total is not None else len_hint
    acc = CorpusAccumulator.for_model(tm)
    acc.empty_lines = empty_in_file
    done, cancelled = 0, False
    for batch in _batches(sentences, batch_size):
        if should_stop is not None and should_stop():
            cancelled = True
            break
        acc.add_batch(tm, batch)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    if acc.sentences == 0 and not cancelled:
        raise InputError("There were no sentences to analyse (every line was blank).")
    return acc.result(total=total, cancelled=cancelled)
