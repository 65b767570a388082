"""A short training run: it writes loadable weights and an honest model card."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz.errors import InputError
from attnviz.image.model_files import CARD_FILE
from attnviz.image.train import folder_dataset, main, train


def test_smoke_training_on_generated_shapes(tmp_path):
    out = tmp_path / "model"
    card = train(out, steps=6, batch=16, n_train=64, n_val=16, n_test=16, seed=3, device="cpu", log=lambda s: None)
    saved = json.loads((out / CARD_FILE).read_text())
    assert saved["classes"] == list(attnviz.image.generated_shapes.CLASSES)
    assert saved["training"]["steps"] == 6 and saved["training"]["seed"] == 3
    assert 0 <= saved["metrics"]["test_accuracy"] <= 1
    assert saved["weights_sha256"] == card["weights_sha256"]
    model = attnviz.load_image_model(str(out), device="cpu")
    ia = attnviz.image_attention(model, attnviz.image.generated_shapes.shape_sample(0, 0).image)
    assert ia.weights.shape == (2, 4, 65, 65)


def test_same_seed_same_weights(tmp_path):
    kw = dict(steps=4, batch=8, n_train=32, n_val=8, n_test=8, seed=1, device="cpu", log=lambda s: None)
    a = train(tmp_path / "a", **kw)
    b = train(tmp_path / "b", **kw)
    assert a["weights_sha256"] == b["weights_sha256"]


def _folder(root, classes=("apples", "pears"), n=6):
    rng = np.random.default_rng(0)
    for i, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for j in range(n):
            arr = rng.integers(0, 255, (20 + j, 30, 3), dtype=np.uint8)
            arr[..., i] = 255
            Image.fromarray(arr).save(root / name / f"{j}.png")
    return root


def test_training_on_a_folder_of_images(tmp_path):
    data = _folder(tmp_path / "data")
    (data / "apples" / "broken.png").write_bytes(b"not an image")
    images, labels, classes = folder_dataset(data, 64)
    assert classes == ["apples", "pears"] and images.shape == (12, 64, 64, 3)
    assert np.bincount(labels).tolist() == [6, 6]
    out = tmp_path / "mine"
    assert main(["--data", str(data), "--out", str(out), "--steps", "3", "--batch", "4"]) == 0
    model = attnviz.load_image_model(str(out), device="cpu")
    assert model.classes == ("apples", "pears")


@pytest.mark.parametrize("setup", ["missing", "one class", "empty class"])
def test_bad_folders_are_input_errors(tmp_path, setup):
    if setup == "missing":
        path = tmp_path / "nope"
    elif setup == "one class":
        path = _folder(tmp_path / "d", classes=("only",))
    else:
        path = _folder(tmp_path / "d")
        (path / "empty").mkdir()
    with pytest.raises(InputError):
        folder_dataset(path, 64)


def test_cli_needs_out_with_data(tmp_path):
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path)])
