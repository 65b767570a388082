"""A short training run: it writes loadable weights and an honest model card.

Every figure is checked against a recomputation: the card's accuracies against the saved model's own
predictions (through the public API) on regenerated images, the loss against the model training starts from.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import attnviz
from attnviz.errors import InputError
from attnviz.image import generated_shapes, training_archive
from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
from attnviz.image.model_files import CARD_FILE, WEIGHTS_FILE
from attnviz.image.train import TEST_SEED, TRAIN_SEED, VAL_SEED, folder_dataset, main, train

SEED = 3
RUN = dict(steps=40, batch=16, n_train=64, n_val=24, n_test=32, seed=SEED, device="cpu", log=lambda s: None)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(output folder, returned card) of one tiny run on generated shapes (~2 s)."""
    out = tmp_path_factory.mktemp("train") / "model"
    return out, train(out, **RUN)


def samples(seed: int, n: int) -> list:
    return [generated_shapes.shape_sample(seed, i) for i in range(n)]


def accuracy_of(model, data: list) -> float:
    """Share of images whose top prediction, through attnviz.image_attention, is the true class."""
    return sum(attnviz.image_attention(model, s.image).predictions[0][0] == s.label for s in data) / len(data)


def as_batch(data: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 64, 64) floats in [0, 1] and (N,) class indices."""
    x = torch.from_numpy(np.stack([np.asarray(s.image) for s in data])).permute(0, 3, 1, 2).float() / 255
    return x, torch.tensor([s.label_index for s in data])


def weights(folder) -> dict[str, torch.Tensor]:
    return load_file(str(folder / WEIGHTS_FILE))


def test_smoke_training_on_generated_shapes(run):
    out, card = run
    saved = json.loads((out / CARD_FILE).read_text())
    assert saved == card
    assert saved["classes"] == list(generated_shapes.CLASSES)
    assert saved["training"]["steps"] == 40 and saved["training"]["seed"] == SEED
    assert saved["weights_sha256"] == hashlib.sha256((out / WEIGHTS_FILE).read_bytes()).hexdigest()
    model = attnviz.load_image_model(str(out), device="cpu")
    ia = attnviz.image_attention(model, generated_shapes.shape_sample(0, 0).image)
    assert ia.weights.shape == (2, 4, 65, 65)
    # Every trained model carries its domain check, calibrated on its 24 validation images.
    assert saved["domain_check"]["calibration_images"] == 24 and (out / saved["domain_check"]["file"]).is_file()
    assert model.domain is not None and ia.domain_note


def test_the_cards_accuracies_are_the_saved_models_on_its_validation_and_test_images(run):
    """Recomputed from the saved file, on the images the card says it used (their seeds are train.py's)."""
    out, card = run
    model = attnviz.load_image_model(str(out), device="cpu")
    test = accuracy_of(model, samples(TEST_SEED + 100 * SEED, RUN["n_test"]))
    val = accuracy_of(model, samples(VAL_SEED + 100 * SEED, RUN["n_val"]))
    assert card["metrics"]["test_accuracy"] == pytest.approx(test, abs=5e-5)  # the card rounds to 4 places
    assert card["metrics"]["validation_accuracy"] == pytest.approx(val, abs=5e-5)
    assert card["data"] == "generated shapes: 64 train, 24 validation, 32 test images"


def test_a_tiny_run_lowers_the_training_loss(run):
    """The loss on the training images falls below that of the model the run starts from (seeded as
    train() seeds it) and below ln 8, a uniform guess over the eight classes."""
    out, card = run
    x, y = as_batch(samples(TRAIN_SEED + 100 * SEED, RUN["n_train"]))
    torch.manual_seed(SEED)
    start = CnnAttention(CnnAttentionConfig(n_classes=8)).eval()
    trained = CnnAttention(CnnAttentionConfig.from_dict(card["config"])).eval()
    trained.load_state_dict(weights(out))
    with torch.no_grad():
        before = torch.nn.functional.cross_entropy(start(x), y).item()
        after = torch.nn.functional.cross_entropy(trained(x), y).item()
    assert after < before - 0.2, (before, after)
    assert after < np.log(8) - 0.2, after


def test_same_seed_same_weights_and_another_seed_others(tmp_path):
    kw = dict(steps=4, batch=8, n_train=32, n_val=8, n_test=8, device="cpu", log=lambda s: None)
    a = train(tmp_path / "a", seed=1, **kw)
    b = train(tmp_path / "b", seed=1, **kw)
    c = train(tmp_path / "c", seed=2, **kw)
    wa, wb, wc = weights(tmp_path / "a"), weights(tmp_path / "b"), weights(tmp_path / "c")
    assert wa.keys() == wb.keys() == wc.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["weights_sha256"] == b["weights_sha256"]
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert a["weights_sha256"] != c["weights_sha256"]


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


@pytest.mark.bundled
def test_folder_images_are_resized_as_the_model_sees_them(tmp_path):
    """Bilinear, as ImageModel.pixels and the page's domain check resize every image: the training images and
    the check's calibration see what the model is later shown."""
    data = _folder(tmp_path / "data")
    images, _, _ = folder_dataset(data, 64)
    first = Image.open(data / "apples" / "0.png").convert("RGB")
    assert first.size != (64, 64)
    np.testing.assert_array_equal(images[0], np.asarray(first.resize((64, 64), Image.Resampling.BILINEAR)))
    bundled = attnviz.load_image_model(device="cpu")  # a 64 x 64 model: what it is shown of the same file
    seen = bundled.pixels(first)[0].permute(1, 2, 0).cpu().numpy() * np.array(bundled.std) + np.array(bundled.mean)
    np.testing.assert_allclose(seen * 255, images[0], atol=1e-3)


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


def test_cli_without_out_saves_to_a_new_folder_named_after_the_data_and_size(tmp_path, monkeypatch, capsys):
    """Issue 17's command, ``python -m attnviz.train --data FOLDER --size 128``: a new folder under the app's
    trained-models folder (its command-line subfolder), named after the data folder and size, never an
    existing one, and the command says where."""
    monkeypatch.setattr(training_archive, "TRAINED_ROOT", tmp_path / "trained")
    data = _folder(tmp_path / "my photos")
    args = ["--data", str(data), "--size", "128", "--steps", "2", "--batch", "4"]
    assert main(args) == 0
    first = tmp_path / "trained" / training_archive.COMMAND_LINE_DIR / "my-photos-128"
    assert attnviz.load_image_model(str(first), device="cpu").input_size == (128, 128)
    assert f"saving the model to {first}" in capsys.readouterr().out
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    assert main(args) == 0
    second = first.with_name("my-photos-128-2")
    assert f"saving the model to {second}" in capsys.readouterr().out
    assert (second / CARD_FILE).is_file()
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before  # the first model is untouched


def test_the_apps_housekeeping_leaves_the_command_lines_models_alone(tmp_path, monkeypatch):
    from attnviz.ui import image_training

    monkeypatch.setattr(image_training, "TRAINED_ROOT", tmp_path)
    mine = training_archive.new_model_folder(tmp_path / "data", 64, root=tmp_path / training_archive.COMMAND_LINE_DIR)
    for k in range(3):
        (tmp_path / f"app-{k}").mkdir()
        os.utime(tmp_path / f"app-{k}", (1_000_000 + k, 1_000_000 + k))
    os.utime(mine.parent, (900_000, 900_000))  # older than every app folder
    deleted = image_training.prune_trained(1)
    assert sorted(p.name for p in deleted) == ["app-0", "app-1"] and mine.is_dir()
