"""The scoreboard commands' loop: Ctrl+C stops after the current input with the inputs done so far,
a refused input is skipped and reported, and the files hold what was scored."""

from __future__ import annotations

import json
import os
import signal
from types import SimpleNamespace

import pandas as pd
import pytest

from attnviz.errors import InputError
from attnviz.scoreboard_runs import StopRequest, score_inputs, write_results


def fake_scores(value: float):
    table = pd.DataFrame(
        {
            "method": ["attention (best layer: 2)", "random"],
            "deletion_auc": [value, 0.5],
            "insertion_auc": [1 - value, 0.5],
            "loo_spearman": [0.3, 0.0],
            "seconds": [0.1, 0.2],
        }
    )
    return SimpleNamespace(
        table=table,
        units=["a", "b", "c"],
        full_score=1.0,
        removed_score=0.2,
        best_layer=2,
        target="similarity",
        notes=["Integrated gradients: 16 steps, delta 0.01."],
        removal="blank",
    )


def test_ctrl_c_stops_after_the_current_input_with_what_was_done():
    calls = []

    def score(value):
        calls.append(value)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as if Ctrl+C were pressed during the second input
        return fake_scores(value)

    previous = signal.getsignal(signal.SIGINT)
    with StopRequest() as stop:
        run = score_inputs(
            ((f"in {i}", v) for i, v in enumerate([0.1, 0.2, 0.3, 0.4])), score, total=4, should_stop=lambda: stop.asked
        )
    assert signal.getsignal(signal.SIGINT) is previous
    assert run.stopped and run.done == 2 and calls == [0.1, 0.2]
    summary = run.summary().set_index("method")
    assert summary.loc["attention (best layer)", "deletion_auc_mean"] == pytest.approx(0.15)
    assert summary.loc["attention (best layer)", "beats_random_deletion"] == 1.0


def test_a_second_ctrl_c_aborts():
    with pytest.raises(KeyboardInterrupt), StopRequest():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)


def test_refused_inputs_are_skipped_and_the_files_written(tmp_path):
    def score(value):
        if value is None:
            raise InputError("The text is blank.")
        return fake_scores(value)

    run = score_inputs([("a", 0.1), ("b", None), ("c", 0.3)], score, total=3)
    assert run.done == 2 and run.skipped == [("b", "The text is blank.")] and not run.stopped
    settings = {"model": "m", "steps": 4, "random_orders": 3, "seed": 0}
    paths = {"out": tmp_path / "s.csv", "json_path": tmp_path / "s.json", "markdown": tmp_path / "s.md"}
    text = write_results(run, settings, **paths)
    assert "m: 2 of 3 inputs scored, 1 skipped" in text and "Best layer picked per input (layer: inputs): 2: 2." in text
    assert "Removal: blank" in text and "Integrated gradients (2)" in text
    assert paths["markdown"].read_text(encoding="utf-8").strip() == text
    payload = json.loads(paths["json_path"].read_text(encoding="utf-8"))
    assert payload["inputs_scored"] == 2 and payload["skipped"] == [{"input": "b", "reason": "The text is blank."}]
    assert len(payload["rows"]) == 4 and len(pd.read_csv(paths["out"])) == 4
