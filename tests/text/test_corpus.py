"""Corpus statistics: reading and checking files, batched runs equal to one-by-one runs, progress,
stopping, over-long lines, and the command line."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import attnviz
from attnviz import InputError, corpus_head_stats
from attnviz.maths.head_statistics import COLUMNS, HeadTotals
from attnviz.text.corpus import _groups, batch_attention, decode_corpus, iter_corpus_file, scan_corpus_file
from attnviz.text.corpus_cli import ProgressBar, main
from tests.helpers import TINY_MAX

SENTENCES = [
    "the cat sat on the mat .",
    "a dog ran .",
    "where did the cat sit ?",
    "the quick brown fox jumps over the lazy dog because it was not tired",
    "he plays guitar",
]
NUMBERS = list(COLUMNS)


def expected_table(tm, sentences) -> pd.DataFrame:
    """Token-weighted means over sentences, each run alone through text_attention."""
    totals = HeadTotals(tm.n_layers, tm.n_heads)
    for s in sentences:
        ta = attnviz.text_attention(tm, s)
        totals.add(ta.weights, ta.tokens, ta.special)
    return totals.table()


# ---------------------------------------------------------------- reading


def test_decode_strips_blank_lines_bom_and_line_ends():
    data = "\ufeffthe cat sat .\r\n\r\n  a dog ran .  \n\n\nhe plays guitar".encode()
    corpus = decode_corpus(data, name="c.txt")
    assert corpus.sentences == ["the cat sat .", "a dog ran .", "he plays guitar"]
    assert (corpus.lines, corpus.empty_lines, len(corpus)) == (6, 3, 3)


@pytest.mark.parametrize(
    "data, kwargs, message",
    [
        (b"", {}, "is empty"),
        (b"\n  \n\t\n", {}, "only blank lines"),
        (b"x" * 2_000, {"max_bytes": 1_000}, "limit here is 1.0 kB"),
        (b"a\nb\nc\n", {"max_sentences": 2}, "has 3 sentences; the limit here is 2"),
        ("ok\ncaf\u00e9 au lait\n".encode("latin-1"), {}, "line 2 has the byte 0xE9"),
        (b"text\x00\x01binary", {}, "binary file"),
        ("hello".encode("utf-16"), {}, "UTF-16"),
    ],
)
def test_bad_files_say_what_to_fix(data, kwargs, message):
    with pytest.raises(InputError, match=message):
        decode_corpus(data, name="c.txt", **kwargs)


def test_files_are_checked_in_full_then_streamed(tmp_path):
    good = tmp_path / "good.txt"
    good.write_bytes(b"one .\n\ntwo .\nthree .\n")
    info = scan_corpus_file(good)
    assert (info.lines, info.empty_lines) == (4, 1)
    assert list(iter_corpus_file(good)) == ["one .", "two .", "three ."]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\n" * 1000 + "\u00e9".encode("latin-1") + b"\n")
    with pytest.raises(InputError, match="line 1001"):
        scan_corpus_file(bad)
    with pytest.raises(InputError, match="not a file"):
        scan_corpus_file(tmp_path / "missing.txt")
    with pytest.raises(InputError, match="limit here"):
        scan_corpus_file(good, max_bytes=5)


# ---------------------------------------------------------------- running


def test_batched_run_equals_sentences_run_one_by_one(tiny_model):
    stats = corpus_head_stats(tiny_model, SENTENCES, batch_size=2)
    expected = expected_table(tiny_model, SENTENCES)
    np.testing.assert_allclose(stats.table[NUMBERS].to_numpy(), expected[NUMBERS].to_numpy(), atol=1e-5)
    assert stats.table["label"].tolist() == expected["label"].tolist()
    assert stats.sentences == len(SENTENCES) and stats.total == len(SENTENCES)
    assert stats.tokens == sum(attnviz.text_attention(tiny_model, s).n_tokens for s in SENTENCES)
    assert not stats.cancelled and stats.notes() == []
    assert stats.divergence.shape == (8, 8)


def test_one_sentence_is_head_stats(tiny_model):
    ta = attnviz.text_attention(tiny_model, SENTENCES[3])
    stats = corpus_head_stats(tiny_model, [SENTENCES[3]])
    np.testing.assert_allclose(stats.table[NUMBERS].to_numpy(), attnviz.head_stats(ta)[NUMBERS].to_numpy(), atol=1e-5)


def test_padding_and_the_cell_budget_do_not_change_results(tiny_model):
    one_by_one = batch_attention(tiny_model, SENTENCES, max_cells=1)  # every sentence alone
    together = batch_attention(tiny_model, SENTENCES)
    for a, b, s in zip(one_by_one, together, SENTENCES, strict=True):
        ta = attnviz.text_attention(tiny_model, s)
        assert a.tokens == b.tokens == ta.tokens
        np.testing.assert_array_equal(a.special, ta.special)
        np.testing.assert_allclose(b.weights, ta.weights, atol=1e-5)
        np.testing.assert_allclose(a.weights, ta.weights, atol=1e-5)


def test_groups_sort_by_length_and_respect_the_budget():
    lengths = [10, 3, 64, 5, 64]
    groups = _groups(lengths, cells_per_token2=1, max_cells=3 * 10**2)
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    for g in groups:
        assert len(g) == 1 or len(g) * max(lengths[i] for i in g) ** 2 <= 300
    assert groups[0] == [1, 3, 0]  # short ones together


def test_lines_over_the_limit_are_cut_counted_and_reported(tiny_model):
    long_line = " ".join(["cat"] * (TINY_MAX + 20))  # 84 words + [CLS]/[SEP], the limit is 64
    stats = corpus_head_stats(tiny_model, ["a dog ran .", long_line, "", "\u200b\u200b"])
    assert stats.sentences == 2
    assert (stats.truncated_lines, stats.tokens_cut) == (1, TINY_MAX + 22 - TINY_MAX)
    assert stats.empty_lines == 2  # a blank line, and one of only zero-width spaces
    notes = " ".join(stats.notes())
    assert "1 line was longer than the model's limit of 64 tokens" in notes
    assert "22 tokens dropped" in notes
    assert "2 blank lines were skipped" in notes


def test_progress_and_stop_between_batches(tiny_model):
    calls = []
    stats = corpus_head_stats(
        tiny_model, SENTENCES * 3, batch_size=4, progress=lambda d, t: calls.append((d, t)), should_stop=lambda: False
    )
    assert calls == [(4, 15), (8, 15), (12, 15), (15, 15)]
    assert stats.sentences == 15
    done = []
    stats = corpus_head_stats(
        tiny_model,
        iter(SENTENCES * 3),  # a generator: no length, read lazily
        batch_size=4,
        total=15,
        progress=lambda d, t: done.append(d),
        should_stop=lambda: len(done) >= 2,
    )
    assert stats.cancelled and stats.sentences == 8 and stats.total == 15
    assert "Stopped after 8 of 15 sentences" in stats.notes()[0]
    expected = expected_table(tiny_model, (SENTENCES * 3)[:8])
    np.testing.assert_allclose(stats.table[NUMBERS].to_numpy(), expected[NUMBERS].to_numpy(), atol=1e-5)


def test_a_path_is_read_as_a_corpus(tiny_model, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(SENTENCES[:3]) + "\n\n", encoding="utf-8")
    stats = corpus_head_stats(tiny_model, path)
    assert (stats.sentences, stats.total, stats.empty_lines) == (3, 3, 1)
    with pytest.raises(InputError, match="batch_size"):
        corpus_head_stats(tiny_model, SENTENCES, batch_size=0)
    with pytest.raises(InputError, match="no sentences"):
        corpus_head_stats(tiny_model, ["", "  "])


def test_corpus_head_stats_is_the_exported_function():
    assert attnviz.corpus_head_stats is corpus_head_stats


# ---------------------------------------------------------------- command line


def test_cli_writes_the_table_and_reports(tiny_bert_dir, tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "stats.csv"
    args = [str(corpus), "--model", str(tiny_bert_dir), "--out", str(out), "--batch-size", "2", "--device", "cpu"]
    import torch

    threads = torch.get_num_threads()
    try:
        assert main([*args, "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    table = pd.read_csv(out)
    assert list(table.columns) == ["layer", "head", *COLUMNS, "label"]
    assert len(table) == 8
    err = capsys.readouterr().err
    assert "5 sentences" in err and "100%" in err and "Written to" in err
    assert main([*args, "--threads", "0"]) == 2
    assert "--threads must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message", [(b"", "is empty"), (b"\xff\xfeh\x00i\x00", "UTF-16"), (b"\xe9\n\xe8\n", "only blank")]
)
def test_cli_bad_file_is_a_message_not_a_traceback(tiny_bert_dir, tmp_path, capsys, content, message):
    corpus = tmp_path / "bad.txt"
    corpus.write_bytes(content)
    out = tmp_path / "stats.csv"
    assert main([str(corpus), "--model", str(tiny_bert_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not out.exists()


def test_cli_skips_and_counts_lines_that_are_not_utf8(tiny_bert_dir, tmp_path, capsys):
    """One bad line never ends a long run: the command line skips it and says which it was."""
    corpus = tmp_path / "mixed.txt"
    corpus.write_bytes(b"the cat sat .\ncaf\xe9 au lait\na dog ran .\n\xff\n")
    out = tmp_path / "stats.csv"
    assert main([str(corpus), "--model", str(tiny_bert_dir), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "2 lines were not UTF-8 text and were skipped (lines 2, 4)" in err
    assert "2 sentences" in err and len(pd.read_csv(out)) == 8


def test_cli_runs_as_a_module(tiny_bert_dir, tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    out = tmp_path / "stats.csv"
    args = [sys.executable, "-m", "attnviz.text.corpus_cli", str(corpus), "--model", str(tiny_bert_dir)]
    args += ["--out", str(out)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(out)) == 8
    missing = subprocess.run([*args[:3], str(tmp_path / "nope.txt")], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "not a file" in missing.stderr and "Traceback" not in missing.stderr


def test_progress_bar_lines_without_a_terminal():
    import io

    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream)
    for done in range(0, 101, 5):
        bar(done)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # one per 10%, not one per call
    assert lines[-1].startswith("[" + "#" * 30 + "] 100/100 sentences 100%")


# ---------------------------------------------------------------- defects found by a hostile probe


def test_overlapping_steps_count_every_batch_once(tiny_model, monkeypatch):
    """Streamlit's fast reruns start a new script thread while the old one is inside a step: both
    threads step the same run. Each batch must be counted exactly once, and none skipped."""
    import threading
    import time

    from attnviz.text import corpus as corpus_module
    from attnviz.text.corpus import CorpusAccumulator, CorpusRun

    real = corpus_module.batch_attention

    def slow_batch_attention(tm, sentences, **kwargs):
        time.sleep(0.05)  # widen the window in which a second thread reads the position
        return real(tm, sentences, **kwargs)

    monkeypatch.setattr(corpus_module, "batch_attention", slow_batch_attention)
    sentences = SENTENCES * 4  # 20 sentences, 10 batches of 2
    run = CorpusRun(sentences=sentences, acc=CorpusAccumulator.for_model(tiny_model), batch_size=2)
    start = threading.Barrier(3)

    def script_thread():
        start.wait()
        while run.step(tiny_model):
            pass

    threads = [threading.Thread(target=script_thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert run.finished and run.batch_starts == list(range(0, 20, 2))
    stats = run.result()
    serial = corpus_head_stats(tiny_model, sentences)
    assert (stats.sentences, stats.tokens) == (serial.sentences, serial.tokens) == (20, serial.tokens)
    np.testing.assert_allclose(stats.table[NUMBERS].to_numpy(), serial.table[NUMBERS].to_numpy(), atol=1e-6)


def test_a_result_read_during_a_step_is_whole(tiny_model, monkeypatch):
    """The page reads the totals (after Stop) while the old thread may still be merging a batch."""
    import threading

    from attnviz.text import corpus as corpus_module
    from attnviz.text.corpus import CorpusAccumulator, CorpusRun

    inside, release = threading.Event(), threading.Event()
    real_merge = CorpusAccumulator._merge

    def paused_merge(self, *args):
        real_merge(self, *args)
        inside.set()
        release.wait(10)  # the sentences are counted; the tokens of this batch are not yet

    run = CorpusRun(sentences=SENTENCES, acc=CorpusAccumulator.for_model(tiny_model), batch_size=2)
    run.step(tiny_model)
    monkeypatch.setattr(corpus_module.CorpusAccumulator, "_merge", paused_merge)
    worker = threading.Thread(target=run.step, args=(tiny_model,))
    worker.start()
    assert inside.wait(60)
    results = []
    reader = threading.Thread(target=lambda: results.append(run.result()))
    reader.start()
    reader.join(0.3)
    assert reader.is_alive(), "the result was read in the middle of a batch"
    release.set()
    worker.join(60)
    reader.join(60)
    stats = results[0]
    assert stats.sentences == 4
    assert stats.tokens == sum(attnviz.text_attention(tiny_model, s).n_tokens for s in SENTENCES[:4])


def test_typed_special_tokens_are_text_as_in_a_single_sentence(tiny_model):
    """One rule everywhere: special tokens are the ones the tokenizer adds; a typed "[SEP]" is text."""
    lines = ["the cat [SEP] sat on the mat [PAD] .", "[MASK] dog ran [SEP]", "[SEP]"]
    stats = corpus_head_stats(tiny_model, lines)
    expected = expected_table(tiny_model, lines)
    np.testing.assert_allclose(stats.table[NUMBERS].to_numpy(), expected[NUMBERS].to_numpy(), atol=1e-5)
    assert stats.table["label"].tolist() == expected["label"].tolist()
    assert stats.sentences == 3 and stats.empty_lines == 0
    for got, line in zip(batch_attention(tiny_model, lines), lines, strict=True):
        np.testing.assert_array_equal(got.special, attnviz.text_attention(tiny_model, line).special)


def test_utf32_is_named_utf32():
    import codecs

    text = "hello\nworld"
    marked = {
        "UTF-32": [codecs.BOM_UTF32_LE + text.encode("utf-32-le"), codecs.BOM_UTF32_BE + text.encode("utf-32-be")],
        "UTF-16": [codecs.BOM_UTF16_LE + text.encode("utf-16-le"), codecs.BOM_UTF16_BE + text.encode("utf-16-be")],
    }
    for encoding, files in marked.items():
        for data in files:
            with pytest.raises(InputError, match=f"is {encoding} text"):
                decode_corpus(data, name="c.txt")


@pytest.mark.parametrize("end", [b"\r", b"\n", b"\r\n"])
def test_line_ends_split_alike_on_the_page_and_from_a_file(tmp_path, end):
    data = end.join([b"one .", b"", b"two .", b"three ."]) + end
    path = tmp_path / "c.txt"
    path.write_bytes(data)
    page = decode_corpus(data, name="c.txt")
    scanned = scan_corpus_file(path)
    assert page.sentences == list(iter_corpus_file(path)) == ["one .", "two .", "three ."]
    assert (page.lines, page.empty_lines) == (scanned.lines, scanned.empty_lines) == (4, 1)


def test_a_chunked_file_splits_cr_lf_across_chunks(tmp_path):
    from attnviz.text.corpus import _byte_lines

    data = b"a\r\nb\rc\n\r\nd" * 500
    path = tmp_path / "c.txt"
    path.write_bytes(data)
    with open(path, "rb") as f:
        assert list(_byte_lines(f, chunk_size=7)) == data.splitlines()


def test_the_work_is_estimated_from_a_first_pass(tiny_model):
    from attnviz.text.corpus import estimate_corpus

    long_line = " ".join(["cat"] * (TINY_MAX + 20))
    plan = estimate_corpus(tiny_model, ["a dog ran .", long_line, "\u200b", "the cat sat ."])
    tokens = [attnviz.text_attention(tiny_model, s).n_tokens for s in ("a dog ran .", long_line, "the cat sat .")]
    assert plan.sentences == ["a dog ran .", long_line, "the cat sat ."]
    assert plan.invisible_lines == 1
    assert plan.tokens == sum(tokens) == 6 + TINY_MAX + 6
    assert plan.seconds > 0
    # Cost grows with the square of a line's length: one long line outweighs many short ones.
    short = estimate_corpus(tiny_model, ["a dog ran ."] * 10)
    assert estimate_corpus(tiny_model, [long_line]).seconds > short.seconds * 64**2 / (10 * 6**2) / 4


def test_a_corpus_of_only_invisible_lines_says_so(tiny_model):
    from attnviz.text.corpus import estimate_corpus

    with pytest.raises(InputError, match="invisible"):
        estimate_corpus(tiny_model, ["\u200b", "\u200b\u200c", "\u2060"], name="c.txt")


def test_partial_sums_travel_as_plain_arrays_of_a_fixed_size(tiny_model):
    """What a Ray worker sends back: the totals, whole after a round trip, and as small for long
    lines as for short ones (sums per head, never an attention array)."""
    from attnviz.text.corpus import CorpusAccumulator

    short, long = CorpusAccumulator.for_model(tiny_model), CorpusAccumulator.for_model(tiny_model)
    short.add_batch(tiny_model, SENTENCES[:2])
    short.add_bad_lines([1, 2])
    long.add_batch(tiny_model, [" ".join(["cat"] * 60)] * 8)
    long.add_bad_lines([7, 3])
    back = CorpusAccumulator.from_bytes(long.to_bytes())
    pd.testing.assert_frame_equal(back.result().table, long.result().table)
    np.testing.assert_array_equal(back.divergence.sums, long.divergence.sums)
    assert (back.tokens, back.offered, back.first_bad_lines, back.empty_lines) == (long.tokens, 8, (3, 7), 0)
    assert len(long.to_bytes()) == len(short.to_bytes()) < 16_000
