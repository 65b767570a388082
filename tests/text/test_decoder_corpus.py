"""Corpus head statistics for decoders: padded batches (on the right, with or without a pad token)
give each line the attention it has alone, and the table is the per-line statistics summed."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest

import attnviz
from attnviz.maths.decoder_heads import LOCAL_WINDOW, duplicate_mask, induction_mask
from attnviz.maths.head_statistics import DECODER_COLUMNS
from attnviz.text.corpus import batch_attention, corpus_head_stats, estimate_corpus

LINES = [
    "The cat sat on the mat.",
    "A dog.",
    "The cat sat on the mat, and the dog sat on the cat.",
    "Hello",
    "One two three one two three one two three.",
]


def per_line_rows(ids: np.ndarray) -> dict[str, int]:
    """How many rows each statistic's mean is over for one line (the totals' weights)."""
    n = len(ids)
    rows = dict.fromkeys(DECODER_COLUMNS, n - 1)  # every row but the first, which sees only itself
    rows["duplicate_mass"] = int(duplicate_mask(ids).any(axis=1).sum())
    rows["induction_mass"] = int(induction_mask(ids).any(axis=1).sum())
    rows["local_mass"] = max(0, n - LOCAL_WINDOW - 1)
    return rows


def summed_line_by_line(tm, lines: list[str]) -> dict[str, np.ndarray]:
    """Each column's mean over every counted row of every line, from head_stats of each line alone."""
    sums = {c: 0.0 for c in DECODER_COLUMNS}
    counts = dict.fromkeys(DECODER_COLUMNS, 0)
    for line in lines:
        ta = attnviz.text_attention(tm, line)
        table = attnviz.head_stats(ta)
        for column, rows in per_line_rows(ta.token_ids).items():
            if rows:
                sums[column] = sums[column] + table[column].to_numpy() * rows
                counts[column] += rows
    return {c: sums[c] / counts[c] if counts[c] else np.full(1, np.nan) for c in DECODER_COLUMNS}


def test_no_pad_token_and_left_padding_tokenizers_work(tiny_decoder):
    """The tiny gpt2 and llama tokenizers have no pad token; a copy without one, padding on the left,
    still gives each line its attention alone (the corpus pads on the right itself)."""
    tok = copy.deepcopy(tiny_decoder.tokenizer)
    tok.pad_token, tok.padding_side = None, "left"
    tm = dataclasses.replace(tiny_decoder, tokenizer=tok)
    for line, r in zip(LINES, batch_attention(tm, LINES), strict=True):
        np.testing.assert_allclose(r.weights, attnviz.text_attention(tiny_decoder, line).weights, atol=1e-6)


def test_right_padding_leaves_each_lines_attention_as_alone(tiny_decoder):
    pad_before = tiny_decoder.tokenizer.pad_token
    results = batch_attention(tiny_decoder, LINES)
    assert tiny_decoder.tokenizer.pad_token == pad_before  # the shared tokenizer is untouched
    for line, r in zip(LINES, results, strict=True):
        alone = attnviz.text_attention(tiny_decoder, line)
        assert r.tokens == alone.tokens
        np.testing.assert_array_equal(r.token_ids, alone.token_ids)
        np.testing.assert_array_equal(r.special, alone.special)
        np.testing.assert_allclose(r.weights, alone.weights, atol=1e-6)
        assert np.all(np.triu(r.weights, k=1) == 0)  # causal: exact zeros above the diagonal


def test_corpus_equals_per_line_head_stats_summed(tiny_decoder):
    stats = corpus_head_stats(tiny_decoder, LINES, batch_size=4)
    assert list(stats.table.columns) == ["layer", "head", *DECODER_COLUMNS, "label"]
    expected = summed_line_by_line(tiny_decoder, LINES)
    for column in DECODER_COLUMNS:
        np.testing.assert_allclose(stats.table[column], expected[column], atol=1e-6, err_msg=column)
    assert stats.sentences == len(LINES)
    assert stats.tokens == sum(len(attnviz.text_attention(tiny_decoder, s).tokens) for s in LINES)


def test_batch_sizes_1_and_4_give_the_same_table(tiny_decoder):
    one = corpus_head_stats(tiny_decoder, LINES, batch_size=1).table
    four = corpus_head_stats(tiny_decoder, LINES, batch_size=4).table
    np.testing.assert_allclose(one[list(DECODER_COLUMNS)], four[list(DECODER_COLUMNS)], atol=1e-6)
    assert list(one["label"]) == list(four["label"])


def test_a_decoder_file_is_estimated_and_read(tiny_decoder, tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(LINES[:3]) + "\n\n", encoding="utf-8")
    plan = estimate_corpus(tiny_decoder, LINES[:3])
    assert plan.seconds > 0 and len(plan.sentences) == 3
    stats = corpus_head_stats(tiny_decoder, path)
    assert stats.sentences == 3 and stats.empty_lines == 1


@pytest.mark.bundled
def test_bundled_decoder_corpus_equals_per_line_head_stats(bundled_decoder):
    stats = corpus_head_stats(bundled_decoder, LINES, batch_size=4)
    assert len(stats.table) == 270
    expected = summed_line_by_line(bundled_decoder, LINES)
    for column in DECODER_COLUMNS:
        np.testing.assert_allclose(stats.table[column], expected[column], atol=1e-5, err_msg=column)
    one = corpus_head_stats(bundled_decoder, LINES, batch_size=1).table
    np.testing.assert_allclose(one[list(DECODER_COLUMNS)], stats.table[list(DECODER_COLUMNS)], atol=1e-5)


def test_cli_writes_a_decoder_table(tiny_decoder_dirs, tmp_path, capsys):
    from attnviz.text.corpus_cli import main

    path, out = tmp_path / "lines.txt", tmp_path / "stats.csv"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    folder = str(tiny_decoder_dirs["gpt2"])
    assert main([str(path), "--model", folder, "--out", str(out), "--quiet", "--batch-size", "2"]) == 0
    written = pd.read_csv(out)
    assert list(written.columns) == ["layer", "head", *DECODER_COLUMNS, "label"]
    expected = corpus_head_stats(attnviz.load_text_model(folder, device="cpu"), LINES).table
    np.testing.assert_allclose(written[list(DECODER_COLUMNS)], expected[list(DECODER_COLUMNS)], rtol=1e-5)
    assert "5 sentences" in capsys.readouterr().err
