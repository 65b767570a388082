"""Training on a visitor's images as the app does it: input sizes, a time budget, progress, Stop.

Each run is a few steps on 2 classes x 6 tiny images, so the figures are checked, not the quality
(benchmarks/train_in_app.py measures that).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
from PIL import Image

import attnviz
from attnviz.errors import InputError, ModelLoadError
from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
from attnviz.image.model_files import CARD_FILE
from attnviz.image.train import (
    SIZES,
    STOPPED_BY_STOP,
    STOPPED_BY_TIME,
    TrainProgress,
    _augment,
    folder_dataset,
    held_out_split,
    main,
    size_config,
    train,
)
from attnviz.model_source import register_app_folder

QUIET = dict(device="cpu", log=lambda s: None, batch=4)


def two_classes(root, n=6):
    """Red-ish and blue-ish noise squares, one folder per class."""
    rng = np.random.default_rng(0)
    for i, name in enumerate(("blue", "red")):
        (root / name).mkdir(parents=True)
        for j in range(n):
            arr = rng.integers(0, 120, (24, 24, 3), dtype=np.uint8)
            arr[..., 2 - 2 * i] = 255
            Image.fromarray(arr).save(root / name / f"{j}.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return two_classes(tmp_path_factory.mktemp("own") / "data")


@pytest.mark.parametrize("size", SIZES)
def test_each_size_has_a_config_whose_grid_and_strides_give_it(size):
    config = size_config(size, 3)
    assert config.grid * math.prod(config.stem_strides) == size
    x = CnnAttention(config).eval()(torch.zeros(1, 3, size, size), return_attention=True)[1]
    assert x.shape[-1] == 1 + config.grid**2
    assert size_config(64, 8) == CnnAttentionConfig()  # the bundled model's, unchanged


def test_an_offered_size_only():
    with pytest.raises(InputError, match="64, 128, 224"):
        size_config(96, 2)


@pytest.mark.parametrize("size", [128, 224])
def test_a_model_trained_at_another_size_loads_and_sees_that_size(tmp_path, data, size):
    card = train(tmp_path / "m", data_dir=data, steps=2, size=size, **QUIET)
    assert card["input_size"] == [size, size] and card["config"]["image_size"] == size
    model = attnviz.load_image_model(str(tmp_path / "m"), device="cpu")
    assert model.input_size == (size, size) and model.grid == (size_config(size, 2).grid,) * 2
    ia = attnviz.image_attention(model, Image.new("RGB", (50, 30), "red"))
    assert ia.weights.shape[-1] == 1 + model.grid[0] ** 2


def test_stop_between_steps_saves_a_usable_model_whose_card_says_so(tmp_path, data):
    stop = threading.Event()
    seen: list[TrainProgress] = []

    def progress(p: TrainProgress) -> None:
        seen.append(p)
        if p.step == 3:
            stop.set()

    card = train(tmp_path / "m", data_dir=data, steps=500, progress=progress, stop=stop, eval_every=3, **QUIET)
    assert [p.step for p in seen] == [1, 2, 3]
    assert all(math.isfinite(p.loss) and p.steps == 500 for p in seen)
    assert card["training"]["steps"] == 3 and card["training"]["max_steps"] == 500
    assert card["training"]["stopped"] == STOPPED_BY_STOP
    # The saved weights are those of the best held-out score reported (measured again when saving).
    best = max(p.held_out_accuracy for p in seen)
    assert card["metrics"]["validation_accuracy"] == pytest.approx(best, abs=5e-5)
    assert card["training"]["kept_step"] in (1, 3)
    assert json.loads((tmp_path / "m" / CARD_FILE).read_text()) == card
    model = attnviz.load_image_model(str(tmp_path / "m"), device="cpu")
    assert model.classes == ("blue", "red") and model.domain is not None


def test_a_stop_before_the_first_step_still_saves(tmp_path, data):
    stop = threading.Event()
    stop.set()
    card = train(tmp_path / "m", data_dir=data, steps=50, stop=stop, progress=lambda p: None, **QUIET)
    assert card["training"]["steps"] == 0 and card["training"]["stopped"] == STOPPED_BY_STOP
    assert attnviz.load_image_model(str(tmp_path / "m"), device="cpu").classes == ("blue", "red")


def test_the_time_budget_ends_the_run(tmp_path, data):
    seen: list[TrainProgress] = []
    card = train(tmp_path / "m", data_dir=data, steps=1_000_000, time_budget=0.5, progress=seen.append, **QUIET)
    training = card["training"]
    assert training["stopped"] == STOPPED_BY_TIME and training["time_budget_seconds"] == 0.5
    assert 0 < training["steps"] < 1_000_000 and seen[-1].step == training["steps"]
    assert seen[-1].seconds >= 0.5 and seen[-2].seconds < 0.5  # it stopped at the first step past the budget
    assert seen[-1].fraction == 1.0


def test_a_run_without_budget_or_stop_keeps_the_bundled_cards_fields(tmp_path, data):
    card = train(tmp_path / "m", data_dir=data, steps=2, **QUIET)
    assert not {"max_steps", "time_budget_seconds", "stopped"} & set(card["training"])


def test_a_class_whose_images_do_not_open_is_refused_when_a_minimum_is_asked(tmp_path):
    data = two_classes(tmp_path / "d", n=5)
    (data / "red" / "0.png").write_bytes(b"not a png")
    assert folder_dataset(data, 64)[0].shape[0] == 9  # no minimum: skipped
    with pytest.raises(InputError, match=r"'red' has 4 readable image\(s\) \(1 file"):
        folder_dataset(data, 64, min_per_class=5)


def test_cli_size_and_time_budget(tmp_path, data):
    out = tmp_path / "cli"
    assert main(["--data", str(data), "--out", str(out), "--size", "128", "--time-budget", "0.3", "--batch", "4"]) == 0
    card = json.loads((out / CARD_FILE).read_text())
    assert card["input_size"] == [128, 128] and card["training"]["stopped"] == STOPPED_BY_TIME


def test_python_m_attnviz_train_is_the_same_command():
    command = [sys.executable, "-m", "attnviz.train", "--help"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--time-budget" in done.stdout and "--size" in done.stdout


def test_a_folder_the_app_wrote_loads_even_where_folders_are_off(tmp_path, data, monkeypatch):
    train(tmp_path / "m", data_dir=data, steps=1, **QUIET)
    train(tmp_path / "other", data_dir=data, steps=1, **QUIET)
    monkeypatch.setenv("ATTNVIZ_LOCAL_MODELS", "off")
    name = register_app_folder(tmp_path / "m")
    assert attnviz.load_image_model(name, device="cpu").classes == ("blue", "red")
    with pytest.raises(ModelLoadError, match="ATTNVIZ_LOCAL_MODELS=off"):
        attnviz.load_image_model(str((tmp_path / "other").resolve()), device="cpu")


def test_the_held_out_share_comes_from_every_class_and_never_from_training():
    labels = np.array([0] * 50 + [1] * 50 + [2] * 5)
    held, kept = held_out_split(labels, seed=3)
    assert sorted(np.concatenate([held, kept]).tolist()) == list(range(len(labels)))  # a partition
    assert np.bincount(labels[held]).tolist() == [5, 5, 1]  # 10 % of each class, at least one


def test_shifted_images_are_crops_of_the_edge_padded_image():
    x = torch.rand(16, 3, 12, 12)
    out = _augment(x, "none", torch.Generator().manual_seed(0), shift=2)
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    offsets = set()
    for i in range(len(x)):
        found = [
            (dy, dx)
            for dy in range(5)
            for dx in range(5)
            if np.array_equal(out[i].numpy(), padded[i, :, dy : dy + 12, dx : dx + 12])
        ]
        assert found, f"image {i} is not a crop of its padded self"
        offsets.add(found[0])
    assert len(offsets) > 3  # moved about, not one fixed offset


def test_the_saved_weights_are_the_best_held_out_step(tmp_path, data, monkeypatch):
    """Held-out scores scripted per evaluation: the kept step is the best (accuracy, then lower loss)."""
    import attnviz.image.train as train_module

    scripted = iter([(0.5, 0.7), (1.0, 0.4), (1.0, 0.2), (0.5, 0.9), (1.0, 0.3)])
    weights_at: dict[int, torch.Tensor] = {}
    real = train_module._held_out_score

    def fake(model, images, labels):
        real(model, images, labels)
        weights_at[len(weights_at) + 1] = model.head.weight.detach().clone()
        return next(scripted)

    monkeypatch.setattr(train_module, "_held_out_score", fake)
    card = train(tmp_path / "m", data_dir=data, steps=5, eval_every=1, **QUIET)
    assert card["training"]["kept_step"] == 3
    saved = attnviz.load_image_model(str(tmp_path / "m"), device="cpu")
    assert torch.equal(saved.model.head.weight.cpu(), weights_at[3])
