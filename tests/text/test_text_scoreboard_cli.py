"""``python -m attnviz.text.scoreboard_cli``: every method in the table, each mean ± sd equal to a
numpy computation over scoreboards computed one sentence at a time, bad files refused with exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import attnviz
from attnviz.maths.score_summary import method_key
from attnviz.text.explanation_scores import TEXT_METHODS
from attnviz.text.scoreboard_cli import main

SENTENCES = ["the cat sat on the mat .", "a dog ran to the house .", "where did the cat sit ?"]
FAST = {"steps": 4, "random_orders": 3, "seed": 1}
FAST_ARGS = ["--steps", "4", "--random-orders", "3", "--seed", "1", "--device", "cpu", "--quiet"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("\n".join(SENTENCES[:2]) + "\n\n" + SENTENCES[2] + "\n", encoding="utf-8")  # a blank line
    return path


def test_every_method_and_the_means_of_one_sentence_at_a_time(tiny_model, tiny_bert_dir, corpus, tmp_path, capsys):
    out = tmp_path / "out" / "scores.json"
    assert main([str(corpus), "--model", str(tiny_bert_dir), "--json", str(out), *FAST_ARGS]) == 0
    printed = capsys.readouterr().out
    payload = json.loads(out.read_text(encoding="utf-8"))
    assert payload["inputs_scored"] == 3 and not payload["stopped"]
    summary = {row["method"]: row for row in payload["summary"]}
    tables = [attnviz.score_explanations(tiny_model, s, **FAST).table for s in SENTENCES]
    # one row per method of TEXT_METHODS (flow included: the sentences are short), named as the library names them
    expected = {method_key(m) for t in tables for m in t["method"]}
    assert len(expected) == len(TEXT_METHODS) and set(summary) == expected
    for method in expected:
        assert f"| {method} |" in printed

    for method in expected:
        rows = [t[t["method"].map(method_key) == method].iloc[0] for t in tables]
        for column in ("deletion_auc", "insertion_auc", "loo_spearman"):
            values = np.array([r[column] for r in rows], dtype=float)
            values = values[~np.isnan(values)]
            assert summary[method][f"{column}_mean"] == pytest.approx(values.mean(), abs=1e-6)
            assert summary[method][f"{column}_sd"] == pytest.approx(values.std(ddof=1), abs=1e-6)
        assert summary[method]["inputs"] == 3


def test_limit_methods_and_markdown(tiny_bert_dir, corpus, tmp_path, capsys):
    md = tmp_path / "scores.md"
    args = [str(corpus), "--model", str(tiny_bert_dir), "--limit", "2", "--methods", "rollout,random"]
    assert main([*args, "--markdown", str(md), *FAST_ARGS]) == 0
    text = md.read_text(encoding="utf-8")
    assert "2 of 2 inputs scored" in text and "| rollout | 2 |" in text and "| random | 2 |" in text
    assert "leave-one-out |" not in text
    assert main([*args[:-1], "rollout,saliency", *FAST_ARGS]) == 2
    assert "Unknown method(s) 'saliency'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n \n", "only blank lines"),
        ("the cat sat".encode("utf-16"), "UTF-16"),
        (b"the cat \xff\xfe sat\n", "UTF-8"),
    ],
)
def test_bad_files_exit_2_with_a_message(tiny_bert_dir, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    json_out = tmp_path / "s.json"
    assert main([str(bad), "--model", str(tiny_bert_dir), "--json", str(json_out), *FAST_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not json_out.exists()


def test_bad_options_exit_2(tiny_bert_dir, corpus, tmp_path, capsys):
    for extra in (["--steps", "1"], ["--limit", "0"], ["--threads", "0"], ["--json", str(tmp_path)]):
        assert main([str(corpus), "--model", str(tiny_bert_dir), *FAST_ARGS, *extra]) == 2
        assert "error: " in capsys.readouterr().err


def test_runs_as_a_module(tiny_bert_dir, corpus, tmp_path):
    args = [sys.executable, "-m", "attnviz.text.scoreboard_cli", "--model", str(tiny_bert_dir), *FAST_ARGS]
    done = subprocess.run(
        [*args, str(corpus), "--methods", "rollout,random"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "| rollout | 3 |" in done.stdout
    missing = subprocess.run([*args, str(tmp_path / "nope.txt")], capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "not a file" in missing.stderr and "Traceback" not in missing.stderr
