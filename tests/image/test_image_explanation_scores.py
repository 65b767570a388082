"""The scoreboard of explanations on an image model: endpoints against independent forward passes,
the random baseline recomputed, threads, and the dispatcher's refusals."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageFilter

import attnviz
from attnviz.image.explanation_scores import IMAGE_METHODS
from attnviz.image.generated_shapes import demo_samples
from attnviz.maths.explanation_table import COLUMNS, RANDOM

FAST = {"steps": 4, "random_orders": 3}


def probability(model, x: torch.Tensor, index: int) -> float:
    with torch.no_grad():
        return float(model.logits(x).float().softmax(-1)[0, index])


def with_cells_removed(model, image, cells) -> torch.Tensor:
    """The image with grid cells (flat, row by row) taken from a blurred copy, as the model sees it."""
    h, w = model.input_size
    small = image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
    array = np.asarray(small, dtype=np.uint8).copy()
    blurred = np.asarray(small.filter(ImageFilter.GaussianBlur(w / model.grid[1])), dtype=np.uint8)
    rows, cols = model.grid
    for c in cells:
        r, k = divmod(int(c), cols)
        cell = np.s_[r * h // rows : (r + 1) * h // rows, k * w // cols : (k + 1) * w // cols]
        array[cell] = blurred[cell]
    return model.pixels(Image.fromarray(array))


@pytest.fixture(scope="module")
def image():
    return demo_samples()[0].image


def test_curves_start_at_the_full_score_and_end_at_the_removed_one(random_model, image):
    scores = attnviz.score_explanations(random_model, image, **FAST)
    x = random_model.pixels(image)
    with torch.no_grad():
        index = int(random_model.logits(x)[0].argmax())
    full = probability(random_model, x, index)
    removed = probability(random_model, with_cells_removed(random_model, image, range(64)), index)
    assert scores.family == "image" and len(scores.units) == 64 and scores.units[9] == "cell (1, 1)"
    assert scores.full_score == pytest.approx(full, rel=1e-5)
    assert scores.removed_score == pytest.approx(removed, rel=1e-5)
    for method in scores.deletion:
        assert scores.deletion[method][0] == 1.0 and scores.insertion[method][-1] == 1.0
        assert scores.deletion[method][-1] == pytest.approx(removed / full, rel=1e-5)
    assert list(scores.table.columns) == list(COLUMNS) and scores.table["deletion_auc"].is_monotonic_increasing
    assert set(scores.table["method"]) == set(IMAGE_METHODS)
    # centre: the four middle cells go first; at 1/4 of the curve round(64 / 4) = 16 cells are black
    order = np.argsort(-scores.importance["centre"], kind="stable")[:16]
    inner = probability(random_model, with_cells_removed(random_model, image, order), index)
    assert scores.deletion["centre"][1] == pytest.approx(inner / full, rel=1e-5)


def test_random_band_matches_an_independent_computation(random_model, image):
    steps, count, seed = 4, 2, 9
    scores = attnviz.score_explanations(
        random_model, image, methods=["random"], steps=steps, random_orders=count, seed=seed
    )
    x = random_model.pixels(image)
    with torch.no_grad():
        index = int(random_model.logits(x)[0].argmax())
    full = probability(random_model, x, index)
    k = [int(np.floor(i * 64 / steps + 0.5)) for i in range(steps + 1)]
    rng = np.random.default_rng(seed)
    curves = []
    for _ in range(count):
        order = rng.permutation(64)
        curves.append(
            [probability(random_model, with_cells_removed(random_model, image, order[:j]), index) / full for j in k]
        )
    np.testing.assert_allclose(scores.random_band["deletion"][0], np.mean(curves, axis=0), rtol=1e-5)


def test_a_class_can_be_chosen(random_model, image):
    scores = attnviz.score_explanations(random_model, image, target="square", methods=["occlusion"], **FAST)
    assert "'square'" in scores.target
    with pytest.raises(attnviz.InputError):
        attnviz.score_explanations(random_model, image, target="giraffe")


def test_two_threads_get_the_serial_results(random_model):
    images = [s.image for s in demo_samples()[:3]]
    serial = [attnviz.score_explanations(random_model, im, **FAST) for im in images]
    results, errors = {}, []

    def run(i):
        try:
            results[i] = attnviz.score_explanations(random_model, images[i], **FAST)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, expected in enumerate(serial):
        pd.testing.assert_frame_equal(results[i].table.drop(columns="seconds"), expected.table.drop(columns="seconds"))


def test_the_dispatcher_refuses_what_it_cannot_score(random_model, tiny_model, image):
    with pytest.raises(attnviz.InputError, match="PIL image"):
        attnviz.score_explanations(random_model, "a cat")
    with pytest.raises(attnviz.InputError, match="text_pair"):
        attnviz.score_explanations(random_model, image, text_pair="x")
    with pytest.raises(attnviz.InputError, match="load_text_model"):
        attnviz.score_explanations(object(), "a cat")
    with pytest.raises(attnviz.InputError, match="empty"):
        attnviz.score_explanations(tiny_model, image)
    assert RANDOM in IMAGE_METHODS
