"""``python -m attnviz.image.scoreboard_cli`` on a random CNN-attention model: every map in the
table, the means equal to scoreboards computed image by image, bad options refused with exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

import attnviz
from attnviz.image import generated_shapes
from attnviz.image.explanation_scores import IMAGE_METHODS
from attnviz.image.scoreboard_cli import main

FAST = {"steps": 4, "random_orders": 3, "seed": 2}
FAST_ARGS = ["--steps", "4", "--random-orders", "3", "--seed", "2", "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("target", ["predicted", "true"])
def test_every_map_and_the_means_of_one_image_at_a_time(random_model, random_model_dir, tmp_path, capsys, target):
    out = tmp_path / "scores.json"
    args = ["--model", str(random_model_dir), "--images", "3", "--image-seed", "5", "--target", target]
    assert main([*args, "--json", str(out), *FAST_ARGS]) == 0
    printed = capsys.readouterr().out
    summary = {row["method"]: row for row in json.loads(out.read_text(encoding="utf-8"))["summary"]}
    assert set(summary) == set(IMAGE_METHODS)
    for method in IMAGE_METHODS:
        assert f"| {method} | 3 |" in printed

    tables = []
    for i in range(3):
        sample = generated_shapes.shape_sample(5, i, random_model.input_size[0])
        chosen = sample.label if target == "true" else None
        tables.append(attnviz.score_explanations(random_model, sample.image, target=chosen, **FAST).table)
    for method in IMAGE_METHODS:
        for column in ("deletion_auc", "insertion_auc"):
            values = np.array([t.loc[t["method"] == method, column].iloc[0] for t in tables])
            assert summary[method][f"{column}_mean"] == pytest.approx(values.mean(), abs=1e-6)
            assert summary[method][f"{column}_sd"] == pytest.approx(values.std(ddof=1), abs=1e-6)


def test_bad_options_exit_2(random_model_dir, tmp_path, capsys):
    cases = [
        (["--model", str(random_model_dir), "--images", "0"], "--images"),
        (["--model", str(random_model_dir), "--methods", "saliency"], "Unknown method(s)"),
        (["--model", str(tmp_path / "no-model")], "error: "),
    ]
    for args, message in cases:
        assert main([*args, *FAST_ARGS]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
