"""Head statistics over a corpus: a ``.txt`` file with one sentence per line.

The per-sentence sums of :class:`~attnviz.maths.head_statistics.HeadTotals` are added up over every
sentence, so the table has the same columns as :func:`attnviz.head_stats` and every token of
the corpus counts once. Sentences are run through the model in batches (padded, at most
:data:`MAX_BATCH_CELLS` attention cells per forward pass, so one long line cannot blow up a
batch); a callback reports progress after each batch and another can stop the run between
batches. Lines longer than the model's limit are cut to it, and counted.

Reading a file: :func:`decode_corpus` (bytes, e.g. an upload) and :func:`scan_corpus_file` +
:func:`iter_corpus_file` (a path, streamed line by line, for the command line) check that the
text is UTF-8 and not empty, and enforce optional size limits, before any model runs. Both
split lines the same way: at ``\n``, ``\r\n`` or a lone ``\r``.

Before a long run, :func:`estimate_corpus` tokenizes every line once (fast: no model) and
estimates the run's time from the token counts, so a caller can say how long it will take, or
refuse it (:func:`check_corpus_budget`), before the model runs at all.

Special tokens are the ones the tokenizer adds ([CLS], [SEP]; none for SmolLM2), exactly as in
:func:`attnviz.text_attention`: a "[SEP]" typed in a line is text, so a sentence has the same
statistics alone and in a corpus.

A decoder (``tm.causal``) gets its own statistics, :class:`DecoderHeadTotals` (the columns of
:func:`attnviz.head_stats` for a causal result, tokens compared by id). Batches are padded on
the right by :func:`batch_attention` itself, with any id when the tokenizer has no pad token:
a causal model's real tokens never see what comes after them, so padding changes nothing.

:class:`CorpusRun` is a run that can be stepped one batch at a time from several threads (the
app's overlapping reruns): a lock makes each step and each read of the totals whole.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.maths.divergence import DivergenceTotals
from attnviz.maths.head_statistics import DecoderHeadTotals, HeadTotals
from attnviz.text.loading import TextModel

#: Sentences per batch (before the cell budget below splits a batch further).
BATCH_SIZE = 32
#: Attention cells (batch x heads x layers x t x t) of one forward pass: 50M float32 = 200 MB.
MAX_BATCH_CELLS = 50_000_000
#: The head map (Jensen–Shannon divergence) uses the first this many sentences; it costs
#: ~10 ms a sentence against ~5 ms for everything else.
DIVERGENCE_SENTENCES = 200
# Longest first: the UTF-32 little-endian mark starts with the UTF-16 one.
_BOMS = {
    b"\xff\xfe\x00\x00": "UTF-32",
    b"\x00\x00\xfe\xff": "UTF-32",
    b"\xff\xfe": "UTF-16",
    b"\xfe\xff": "UTF-16",
}
#: Bad (non-UTF-8) line numbers a note names; the rest are counted.
FIRST_BAD_LINES = 5
#: Bytes read at a time when a file is streamed line by line.
_CHUNK = 1 << 16
#: The time model of :func:`estimate_corpus`, measured with the bundled model (6 layers x 12 heads,
#: hidden size 384) on 2 CPU cores (``benchmarks/corpus_cost.py``): seconds per token (the
#: model's dense layers) and per token squared (attention and the head statistics of every row).
#: Measured/estimated: 0.44-0.54 for lines of 16-32 tokens (batches of short lines are cheaper),
#: 0.9-1.3 for 64-510 tokens. The same constants, scaled by :func:`_cost_factors`, hold for the
#: bundled decoder (SmolLM2, 30 layers x 9 heads, hidden size 576: x11 per token, x3.75 per token
#: squared): measured/estimated 0.63, 1.37, 1.15 at 16, 64, 256 tokens, against 0.32, 1.08, 0.75
#: for the encoder in the same session (load ~1), so decoders need no constants of their own.
SECONDS_PER_TOKEN = 0.6e-3
SECONDS_PER_TOKEN2 = 2.6e-6
_REFERENCE = {"layers": 6, "heads": 12, "hidden": 384}
#: ``ATTNVIZ_CORPUS_MINUTES``: the estimated time past which the app refuses a corpus (the
#: command line has no limit). The default keeps a run on the bundled model near 10 minutes.
BUDGET_ENV = "ATTNVIZ_CORPUS_MINUTES"
DEFAULT_BUDGET_MINUTES = 10.0

ProgressFn = Callable[[int, int | None], None]


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Corpus:
    """Sentences read from a file: the non-blank lines, stripped, in order."""

    sentences: list[str]
    lines: int  # lines in the file, blank ones included
    empty_lines: int  # blank lines skipped (or lines of only invisible characters)
    name: str = "the file"
    bad_lines: int = 0  # lines that are not UTF-8 text, skipped (the command line's files only)
    first_bad_lines: tuple[int, ...] = ()  # the first few of their line numbers
    #: The line number of the last of the first :data:`DIVERGENCE_SENTENCES` sentences (every
    #: line up to it may join the head map), or None when the file has fewer sentences.
    divergence_last_line: int | None = None

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
            "files, or run the command line `python -m attnviz.text.corpus_cli FILE --out stats.csv`, "
            "which has no limit."
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


def _byte_lines(f, chunk_size: int = _CHUNK) -> Iterator[bytes]:
    """The lines of a binary stream, split as ``bytes.splitlines`` splits (``\n``, ``\r\n``, ``\r``).

    A file object's own iteration splits at ``\n`` only, so a file saved with old Mac line ends
    would be one line on the command line and many on the page.
    """
    rest = b""
    while chunk := f.read(chunk_size):
        data = rest + chunk
        lines = data.splitlines(keepends=True)
        # The last piece may be incomplete, and a final "\r" may be the first half of "\r\n".
        rest = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
        for line in lines:
            yield line.rstrip(b"\r\n")
    if rest:
        yield rest.rstrip(b"\r\n")


def _check_first_line(raw: bytes, name: str) -> bytes:
    """The first line without a UTF-8 byte order mark; a UTF-16/32 mark refuses the whole file."""
    for bom, encoding in _BOMS.items():
        if raw.startswith(bom):
            raise InputError(f"{name} is {encoding} text; save it as UTF-8 and try again.")
    return raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark is not part of the text


def corpus_line(raw: bytes, number: int, name: str = "the file") -> str | None:
    """One raw line of a corpus file as text, or None when it is not UTF-8 text (a bad line).

    The command line's rule, for both engines: a bad line is skipped and counted in the notes
    (:attr:`CorpusStats.bad_lines`), never the end of a run. A UTF-16/32 byte order mark on the
    first line still refuses the file (every line would be bad).
    """
    if number == 1:
        raw = _check_first_line(raw, name)
    try:
        return _decode_line(raw.rstrip(b"\r\n"), number, name)
    except InputError:
        return None


def _lines(raw_lines: Iterable[bytes], name: str, *, skip_bad: bool = False) -> Iterator[tuple[int, str | None]]:
    """(line number from 1, text without the line end) for every line of a byte stream.

    With ``skip_bad`` a line that is not UTF-8 text gives None instead of an InputError.
    """
    for number, raw in enumerate(raw_lines, start=1):
        if skip_bad:
            yield number, corpus_line(raw, number, name)
            continue
        if number == 1:
            raw = _check_first_line(raw, name)
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
            "or run the command line `python -m attnviz.text.corpus_cli FILE --out stats.csv`, which has no limit."
        )


def scan_corpus_file(
    path: str | os.PathLike,
    *,
    max_bytes: int | None = None,
    max_sentences: int | None = None,
    skip_bad_lines: bool = False,
) -> Corpus:
    """Check a file as :func:`decode_corpus` does, streaming it; the sentences are not kept.

    Returns a :class:`Corpus` with an empty ``sentences`` list and the counts filled in;
    iterate :func:`iter_corpus_file` for the sentences (a second pass). With
    ``skip_bad_lines`` (the command line) a line that is not UTF-8 text is counted in
    ``bad_lines`` instead of refusing the file.
    """
    path = Path(path)
    name = path.name or str(path)
    if not path.is_file():
        raise InputError(f"{path} is not a file. Give the path of a .txt file with one sentence per line.")
    _check_size(path.stat().st_size, name, max_bytes)
    count = lines = empty = 0
    bad: list[int] = []
    divergence_last_line = None
    with open(path, "rb") as f:
        for number, text in _lines(_byte_lines(f), name, skip_bad=skip_bad_lines):
            lines = number
            if text is None:
                bad.append(number)
            elif text.strip():
                count += 1
                if count == DIVERGENCE_SENTENCES:
                    divergence_last_line = number
            else:
                empty += 1
    _check_count(count, name, max_sentences)
    return Corpus(
        sentences=[],
        lines=lines,
        empty_lines=empty,
        name=name,
        bad_lines=len(bad),
        first_bad_lines=tuple(bad[:FIRST_BAD_LINES]),
        divergence_last_line=divergence_last_line,
    )


def iter_corpus_file(path: str | os.PathLike, *, skip_bad_lines: bool = False) -> Iterator[str]:
    """The non-blank lines of a UTF-8 file, stripped, read lazily (check it with :func:`scan_corpus_file`)."""
    path = Path(path)
    with open(path, "rb") as f:
        for _, text in _lines(_byte_lines(f), path.name, skip_bad=skip_bad_lines):
            if text and (text := text.strip()):
                yield text


# ---------------------------------------------------------------- running


@dataclass(frozen=True)
class SentenceAttention:
    """The attention of one sentence of a batch, padding removed."""

    weights: np.ndarray  # float32 [layers, heads, n, n]
    tokens: list[str]
    special: np.ndarray  # bool [n]
    n_cut: int  # tokens cut because the line was longer than the model's limit
    token_ids: np.ndarray | None = None  # int [n]: the tokenizer's ids (a decoder's tokens are compared by id)


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


def _pad_right(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``rows`` of token ids padded on the right: ids ``(B, T)`` and attention mask ``(B, T)``.

    Padded here, not by the tokenizer: a decoder's tokenizer may have no pad token (asking it to
    pad raises) and may pad on the left; setting one would change an object every session shares.
    On the right, a causal model's real tokens never see the padding (it comes after them), and
    their positions stay 0..n-1, so each line's attention is the one it has alone.
    """
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for b, r in enumerate(rows):
        ids[b, : len(r)] = torch.tensor(r, dtype=torch.long)
        mask[b, : len(r)] = 1
    return ids, mask


def _pad_id(tok) -> int:
    """The tokenizer's pad id; else its end-of-text id, else 0 (any id will do: the mask hides it)."""
    for pad in (getattr(tok, "pad_token_id", None), getattr(tok, "eos_token_id", None)):
        if isinstance(pad, int):
            return pad
    return 0


@falls_back_to_cpu("computing corpus statistics")
def batch_attention(
    tm: TextModel, sentences: list[str], *, max_cells: int = MAX_BATCH_CELLS
) -> list[SentenceAttention]:
    """Attention of each sentence, run in padded batches; returned in the order given.

    Sentences are padded on the right. Padding keys get exactly 0 weight (the model adds the
    dtype's minimum to masked scores; a decoder's real tokens cannot see later positions
    anyway), so each sentence's rows, cut to its own tokens, are its attention as if run alone
    (to float rounding: batched matrix products may differ by ~1e-7). A decoder runs its
    ``base_model`` (no vocabulary projection), as :func:`attnviz.text_attention` does.
    """
    tok = tm.tokenizer
    limit = tm.max_eager_tokens
    lengths = [len(ids) for ids in tok(sentences, truncation=False, verbose=False)["input_ids"]]
    cut = [max(0, n - limit) for n in lengths]
    out: list[SentenceAttention | None] = [None] * len(sentences)
    cells = tm.n_layers * tm.n_heads
    model = tm.model.base_model if tm.causal else tm.model
    pad_id = _pad_id(tok)
    for group in _groups([min(n, limit) for n in lengths], cells, max_cells):
        enc = tok(
            [sentences[i] for i in group],
            truncation=True,
            max_length=limit,
            return_special_tokens_mask=True,
            verbose=False,
        )
        ids, mask = _pad_right(enc["input_ids"], pad_id)  # (B, T) each
        inputs = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in enc:
            inputs["token_type_ids"] = _pad_right(enc["token_type_ids"], 0)[0]
        inputs = {k: v.to(tm.device) for k, v in inputs.items()}
        with tm.lock, torch.inference_mode():
            attentions = model(**inputs, output_attentions=True).attentions
        # L tensors (B, H, T, T) -> (B, L, H, T, T)
        stacked = torch.stack(attentions, dim=1).float().cpu().numpy()
        for b, i in enumerate(group):
            row_ids = enc["input_ids"][b]
            n = len(row_ids)
            out[i] = SentenceAttention(
                weights=np.ascontiguousarray(stacked[b][:, :, :n, :n]),
                tokens=_token_texts(tm, row_ids),
                # The tokens the tokenizer added, as text_attention reads them: a typed "[SEP]" is text.
                special=np.array(enc["special_tokens_mask"][b], dtype=bool),
                n_cut=cut[i],
                token_ids=np.array(row_ids, dtype=np.int64),
            )
    return out  # type: ignore[return-value]


def _token_texts(tm: TextModel, ids: list[int]) -> list[str]:
    """Token texts as :func:`attnviz.text.extraction.token_texts` shows them (a decoder's decoded)."""
    if not tm.causal:
        return tm.tokenizer.convert_ids_to_tokens(ids)
    decode = tm.tokenizer.decode
    return [decode([i], clean_up_tokenization_spaces=False) for i in ids]


@dataclass(frozen=True)
class CorpusStats:
    """Head statistics of a corpus and what happened while computing them.

    Attributes:
        table: one row per (layer, head), the columns of :func:`attnviz.head_stats` (a decoder's:
            :data:`~attnviz.maths.head_statistics.DECODER_COLUMNS`).
        divergence: ``[m, m]`` mean Jensen–Shannon divergence between heads (m = layers·heads)
            over the first :data:`DIVERGENCE_SENTENCES` sentences, or None.
        sentences, tokens: how many were processed (tokens include those the tokenizer adds, [CLS]/[SEP]).
        total: how many sentences there were to process (None when unknown).
        truncated_lines, tokens_cut: lines longer than the model's limit, and tokens cut from them.
        empty_lines: blank lines skipped (and lines of only invisible characters).
        cancelled: the run was stopped before the end; the table covers the sentences processed.
        seconds: time spent running the model and adding up (the Ray engine: the run's wall-clock
            time, start-up excluded).
        bad_lines, first_bad_lines: lines that were not UTF-8 text, skipped (the command line's
            rule), and the first few of their numbers.
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
    bad_lines: int = 0
    first_bad_lines: tuple[int, ...] = ()

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
        if self.bad_lines:
            numbers = ", ".join(str(n) for n in self.first_bad_lines)
            more = ", …" if self.bad_lines > len(self.first_bad_lines) else ""
            notes.append(
                f"{self.bad_lines:,} line{'s were' if self.bad_lines > 1 else ' was'} not UTF-8 text and "
                f"{'were' if self.bad_lines > 1 else 'was'} skipped (line{'s' if self.bad_lines > 1 else ''} "
                f"{numbers}{more}); save the file as UTF-8 to include {'them' if self.bad_lines > 1 else 'it'}."
            )
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
    #: A decoder's run: its own statistics (:class:`DecoderHeadTotals`, causal rows, token ids).
    causal: bool = False
    heads: HeadTotals | DecoderHeadTotals = field(init=False)
    divergence: DivergenceTotals = field(default_factory=DivergenceTotals)
    divergence_sentences: int = DIVERGENCE_SENTENCES
    tokens: int = 0
    truncated_lines: int = 0
    tokens_cut: int = 0
    empty_lines: int = 0
    bad_lines: int = 0
    first_bad_lines: tuple[int, ...] = ()
    seconds: float = 0.0
    #: Sentences handed to :meth:`add_batch` so far (blank ones included): the first
    #: ``divergence_sentences`` of them may join the head map, whichever order batches come in.
    offered: int = 0

    def __post_init__(self) -> None:
        self.heads = self._totals()

    def _totals(self) -> HeadTotals | DecoderHeadTotals:
        return (DecoderHeadTotals if self.causal else HeadTotals)(self.n_layers, self.n_heads)

    @classmethod
    def for_model(cls, tm: TextModel, **kwargs) -> CorpusAccumulator:
        return cls(
            model_name=tm.name,
            n_layers=tm.n_layers,
            n_heads=tm.n_heads,
            max_tokens=tm.max_eager_tokens,
            causal=tm.causal,
            **kwargs,
        )

    @property
    def sentences(self) -> int:
        return self.heads.sentences

    def empty_like(self) -> CorpusAccumulator:
        """Zero totals for the same model: a batch's partial sums, merged into these later."""
        return CorpusAccumulator(
            model_name=self.model_name,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            max_tokens=self.max_tokens,
            causal=self.causal,
            divergence_sentences=self.divergence_sentences,
        )

    def add_batch(self, tm: TextModel, sentences: list[str], *, divergence: list[bool] | None = None) -> None:
        """Run ``sentences`` through ``tm`` and add them; blank ones are skipped and counted.

        ``divergence`` says which sentences may join the head map (default: those among the first
        ``divergence_sentences`` ever offered to these totals). The Ray engine, whose batches
        arrive in any order, passes it from the lines' numbers, so both engines pick the same
        sentences.
        """
        if tm.name != self.model_name or (tm.n_layers, tm.n_heads, tm.causal) != (
            self.n_layers,
            self.n_heads,
            self.causal,
        ):
            raise InputError(f"These totals belong to {self.model_name!r}; they cannot take {tm.name!r}'s attention.")
        started = time.perf_counter()
        if divergence is None:
            divergence = [self.offered + i < self.divergence_sentences for i in range(len(sentences))]
        kept = [
            (s.strip(), joins)
            for s, joins in zip(sentences, divergence, strict=True)
            if isinstance(s, str) and s.strip()
        ]
        results = batch_attention(tm, [s for s, _ in kept]) if kept else []
        # A line of only invisible characters tokenizes to [CLS] [SEP] (a decoder: to nothing): nothing to analyse.
        results = [(r, joins) for r, (_, joins) in zip(results, kept, strict=True) if not r.special.all()]
        # Sums of the batch first, merged at the end: a run stopped mid-batch leaves the totals whole.
        batch = self.empty_like()
        batch.empty_lines = len(sentences) - len(results)
        batch.offered = len(sentences)
        for r, joins in results:
            if self.causal:
                batch.heads.add(r.weights, r.tokens, r.special, r.token_ids)
            else:
                batch.heads.add(r.weights, r.tokens, r.special)
            if joins:
                batch.divergence.add(r.weights)
            batch.tokens += len(r.tokens)
            batch.truncated_lines += r.n_cut > 0
            batch.tokens_cut += r.n_cut
        batch.seconds = time.perf_counter() - started
        self._merge(batch)

    def add_bad_lines(self, numbers: Iterable[int]) -> None:
        """Count lines that were not UTF-8 text (skipped), keeping the first few numbers."""
        numbers = list(numbers)
        self.bad_lines += len(numbers)
        self.first_bad_lines = tuple(sorted({*self.first_bad_lines, *numbers})[:FIRST_BAD_LINES])

    def merge(self, other: CorpusAccumulator) -> None:
        """Add another run's totals of the same model (a Ray worker's batch) to these."""
        if (other.model_name, other.n_layers, other.n_heads, other.causal) != (
            self.model_name,
            self.n_layers,
            self.n_heads,
            self.causal,
        ):
            raise InputError(f"These totals belong to {self.model_name!r}; they cannot take {other.model_name!r}'s.")
        self._merge(other)

    # Plain numbers, sent between processes (the Ray engine's workers) as an ``.npz`` without pickles.
    _COUNTERS = ("tokens", "truncated_lines", "tokens_cut", "empty_lines", "bad_lines", "offered")
    _HEAD_ROWS = ("rows", "prev_rows", "next_rows", "sentences")

    def to_bytes(self) -> bytes:
        """These totals as ``.npz`` bytes of plain arrays (no pickle): a Ray worker's reply."""
        arrays: dict[str, np.ndarray] = {
            "model_name": np.array(self.model_name),
            "shape": np.array([self.n_layers, self.n_heads, self.max_tokens, self.causal, self.divergence_sentences]),
            "counters": np.array([getattr(self, name) for name in self._COUNTERS], dtype=np.int64),
            "seconds": np.array(self.seconds),
            "first_bad_lines": np.array(self.first_bad_lines, dtype=np.int64),
            "head_rows": np.array([getattr(self.heads, name, 0) for name in self._HEAD_ROWS], dtype=np.int64),
            "divergence_rows": np.array([self.divergence.rows, self.divergence.sentences], dtype=np.int64),
        }
        for name, total in self.heads.sums.items():
            arrays[f"sum:{name}"] = total
        for name, count in getattr(self.heads, "counts", {}).items():
            arrays[f"count:{name}"] = np.array(count, dtype=np.int64)
        if self.divergence.sums is not None:
            arrays["divergence_sums"] = self.divergence.sums
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> CorpusAccumulator:
        """The totals :meth:`to_bytes` wrote (read with ``allow_pickle=False``)."""
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        n_layers, n_heads, max_tokens, causal, divergence_sentences = (int(v) for v in arrays["shape"])
        acc = cls(
            model_name=str(arrays["model_name"]),
            n_layers=n_layers,
            n_heads=n_heads,
            max_tokens=max_tokens,
            causal=bool(causal),
            divergence_sentences=divergence_sentences,
        )
        for name, value in zip(cls._COUNTERS, arrays["counters"].tolist(), strict=True):
            setattr(acc, name, value)
        acc.seconds = float(arrays["seconds"])
        acc.first_bad_lines = tuple(arrays["first_bad_lines"].tolist())
        for name, value in zip(cls._HEAD_ROWS, arrays["head_rows"].tolist(), strict=True):
            if hasattr(acc.heads, name):
                setattr(acc.heads, name, value)
        for key, value in arrays.items():
            if key.startswith("sum:"):
                acc.heads.sums[key[4:]] = value
            elif key.startswith("count:"):
                acc.heads.counts[key[6:]] = int(value)
        acc.divergence.rows, acc.divergence.sentences = arrays["divergence_rows"].tolist()
        acc.divergence.sums = arrays.get("divergence_sums")
        return acc

    def _merge(self, other: CorpusAccumulator) -> None:
        batch = other.heads
        for name, total in batch.sums.items():
            self.heads.sums[name] = self.heads.sums[name] + total
        if self.causal:
            for name, count in batch.counts.items():
                self.heads.counts[name] += count
        else:
            self.heads.rows += batch.rows
            self.heads.prev_rows += batch.prev_rows
            self.heads.next_rows += batch.next_rows
        self.heads.sentences += batch.sentences
        div = other.divergence
        if div.sums is not None:
            self.divergence.sums = div.sums if self.divergence.sums is None else self.divergence.sums + div.sums
            self.divergence.rows += div.rows
            self.divergence.sentences += div.sentences
        self.tokens += other.tokens
        self.truncated_lines += other.truncated_lines
        self.tokens_cut += other.tokens_cut
        self.empty_lines += other.empty_lines
        self.offered += other.offered
        self.seconds += other.seconds
        if other.bad_lines:
            self.bad_lines += other.bad_lines
            self.first_bad_lines = tuple(sorted({*self.first_bad_lines, *other.first_bad_lines})[:FIRST_BAD_LINES])

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
            bad_lines=self.bad_lines,
            first_bad_lines=self.first_bad_lines,
        )


@dataclass(eq=False)
class CorpusRun:
    """A corpus run stepped one batch at a time, safely from several threads at once.

    The app keeps one per visitor and steps it from its script; Streamlit's fast reruns start a
    new script thread while the old one is still inside a step, so two threads can step the same
    run. A lock held for the whole step (read the position, run the batch, add it, move the
    position) and for every read of the totals means each batch is counted exactly once, none is
    skipped, and a reader never sees a batch half added.
    """

    sentences: list[str]
    acc: CorpusAccumulator
    batch_size: int = BATCH_SIZE
    position: int = 0  # sentences done
    #: The first sentence of every batch added, in order (each batch exactly once).
    batch_starts: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total(self) -> int:
        return len(self.sentences)

    @property
    def finished(self) -> bool:
        return self.position >= self.total

    def step(self, tm: TextModel) -> bool:
        """Add the next batch; False when there was none left. Waits while another thread steps."""
        with self._lock:
            start = self.position
            if start >= self.total:
                return False
            batch = self.sentences[start : start + self.batch_size]
            self.acc.add_batch(tm, batch)  # an exception leaves the position, and the totals, as they were
            self.position = start + len(batch)
            self.batch_starts.append(start)
            return True

    def result(self) -> CorpusStats:
        """The statistics of the sentences done so far (waits for a step in progress to finish)."""
        with self._lock:
            return self.acc.result(total=self.total, cancelled=not self.finished)

    def seconds(self) -> float:
        with self._lock:
            return self.acc.seconds


@dataclass(frozen=True)
class CorpusPlan:
    """What a run would do, from one tokenizer pass (no model): see :func:`estimate_corpus`."""

    sentences: list[str]  # the lines that hold text, in order
    tokens: int  # tokens the model would see ([CLS]/[SEP] included, long lines cut to the limit)
    invisible_lines: int  # lines of only invisible characters (nothing for the model)
    seconds: float  # estimated run time on 2 CPU cores
    longest: int  # tokens of the longest line (after the cut)

    @property
    def minutes(self) -> float:
        return self.seconds / 60


def _cost_factors(tm: TextModel) -> tuple[float, float]:
    """How much slower than the reference model ``tm`` is, per token and per token squared."""
    hidden = getattr(tm.model.config, "hidden_size", _REFERENCE["hidden"]) or _REFERENCE["hidden"]
    per_token = (tm.n_layers * hidden**2) / (_REFERENCE["layers"] * _REFERENCE["hidden"] ** 2)
    per_token2 = (tm.n_layers * tm.n_heads) / (_REFERENCE["layers"] * _REFERENCE["heads"])
    return per_token, per_token2


def estimate_corpus(tm: TextModel, sentences: Iterable[str], *, name: str = "the file") -> CorpusPlan:
    """Tokenize every line once and estimate the run: tokens, and seconds on 2 CPU cores.

    The time grows with each line's tokens n as ``a·n + b·n²`` (:data:`SECONDS_PER_TOKEN`,
    :data:`SECONDS_PER_TOKEN2`, scaled by the model's size): one 512-token line costs as much as
    about 75 lines of 20 tokens. Lines that tokenize to nothing but the tokenizer's own tokens
    (zero-width or control characters only) are dropped and counted.

    Raises:
        InputError: no line holds anything the model can read.
    """
    kept = [s.strip() for s in sentences if isinstance(s, str) and s.strip()]
    limit = tm.max_eager_tokens
    texts, lengths = [], []
    masks = tm.tokenizer(kept, truncation=True, max_length=limit, return_special_tokens_mask=True, verbose=False)
    for text, mask in zip(kept, masks["special_tokens_mask"], strict=True):
        if not all(mask):
            texts.append(text)
            lengths.append(len(mask))
    if not texts:
        raise InputError(
            f"{name} has no line the model can read: every line is blank or holds only invisible characters "
            "(zero-width or control characters). Put one sentence per line."
        )
    n = np.asarray(lengths, dtype=np.float64)
    per_token, per_token2 = _cost_factors(tm)
    seconds = float(SECONDS_PER_TOKEN * per_token * n.sum() + SECONDS_PER_TOKEN2 * per_token2 * (n**2).sum())
    return CorpusPlan(
        sentences=texts,
        tokens=int(n.sum()),
        invisible_lines=len(kept) - len(texts),
        seconds=seconds,
        longest=int(n.max()),
    )


def budget_minutes(env: dict[str, str] | None = None) -> float:
    """The app's corpus budget in estimated minutes (``ATTNVIZ_CORPUS_MINUTES``; a bad value: the default)."""
    raw = (os.environ if env is None else env).get(BUDGET_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_BUDGET_MINUTES
    except ValueError:
        return DEFAULT_BUDGET_MINUTES
    return value if value > 0 and np.isfinite(value) else DEFAULT_BUDGET_MINUTES


def human_duration(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"3.7 h"``: a run's length as a person says it."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def check_corpus_budget(plan: CorpusPlan, max_minutes: float, *, name: str = "the file") -> None:
    """Refuse a run whose estimate is over ``max_minutes``, saying how to do it instead."""
    if plan.minutes <= max_minutes:
        return
    share = max_minutes / plan.minutes
    raise InputError(
        f"{name} would take about {human_duration(plan.seconds)} here ({plan.tokens:,} tokens in "
        f"{len(plan.sentences):,} lines; long lines cost the most, the longest has {plan.longest} tokens). "
        f"This page runs corpora of up to about {human_duration(max_minutes * 60)}: upload about "
        f"{share:.0%} of it, or run the command line `python -m attnviz.text.corpus_cli FILE --out stats.csv`, "
        "which has no limit."
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
    skip_bad_lines: bool = False,
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
        skip_bad_lines: a file's lines that are not UTF-8 text are skipped and counted in the
            notes (the command line's rule) instead of refusing the file.

    Returns:
        :class:`CorpusStats`; ``.table`` has the columns of :func:`attnviz.head_stats`.

    Example::

        stats = attnviz.corpus_head_stats(tm, "sentences.txt", progress=lambda d, t: print(d, "/", t))
        stats.table.to_csv("stats.csv", index=False)
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, not {batch_size}.")
    acc = CorpusAccumulator.for_model(tm)
    if isinstance(sentences, (str, os.PathLike)):
        corpus = scan_corpus_file(sentences, skip_bad_lines=skip_bad_lines)
        len_hint = corpus.lines - corpus.empty_lines - corpus.bad_lines
        acc.empty_lines = corpus.empty_lines
        acc.bad_lines, acc.first_bad_lines = corpus.bad_lines, corpus.first_bad_lines
        sentences = iter_corpus_file(sentences, skip_bad_lines=skip_bad_lines)
    else:
        len_hint = len(sentences) if hasattr(sentences, "__len__") else None
    total = total if total is not None else len_hint
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
