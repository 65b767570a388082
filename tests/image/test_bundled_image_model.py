"""The bundled image model as shipped in assets/: accuracy, card, and where its attention points.

No figure of the model card is taken on trust: each is recomputed from the shipped weights on the
images the card says it was measured on, regenerated here.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import attnviz
from attnviz.image import generated_shapes
from attnviz.image.attribution import gradcam
from attnviz.image.faithfulness import attention_maps
from attnviz.image.loading import BUNDLED_IMAGE_MODEL
from attnviz.image.model_files import BUNDLED_DIR, CARD_FILE
from attnviz.image.train import TEST_SEED, TRAIN_SEED, VAL_SEED
from attnviz.maths.attention_rollout import rollout
from attnviz.maths.map_scores import mass_inside, point_hits, pointing_hit

pytestmark = pytest.mark.bundled
FRESH_SEED = 777  # none of the training, validation, test or faithfulness seeds


@pytest.fixture(scope="module")
def model():
    return attnviz.load_image_model(device="cpu")


@pytest.fixture(scope="module")
def card() -> dict:
    return json.loads((BUNDLED_DIR / CARD_FILE).read_text())


@pytest.fixture(scope="module")
def fresh():
    return [generated_shapes.shape_sample(FRESH_SEED, i) for i in range(200)]


def test_card_describes_the_model(model, card):
    assert model.name == BUNDLED_IMAGE_MODEL
    assert card["classes"] == list(generated_shapes.CLASSES)
    assert card["input_size"] == [64, 64] and card["grid"] == [8, 8]
    assert {"seed", "train_seconds", "steps"} <= set(card["training"])
    assert FRESH_SEED not in {TRAIN_SEED, VAL_SEED, TEST_SEED}


def test_the_cards_test_accuracy_is_the_models_on_its_regenerated_test_images(model, card):
    """train.py measured the test set of seed TEST_SEED + 100 * (training seed); predict those images again."""
    n_test = int(re.search(r"(\d+) test images", card["data"]).group(1))
    seed = TEST_SEED + 100 * card["training"]["seed"]
    test = [generated_shapes.shape_sample(seed, i) for i in range(n_test)]
    correct = sum(attnviz.image_attention(model, s.image).predictions[0][0] == s.label for s in test)
    # One image either way: another machine's float rounding may flip a near-tie.
    assert card["metrics"]["test_accuracy"] == pytest.approx(correct / n_test, abs=1 / n_test + 5e-5)
    assert correct / n_test >= 0.95, correct


def test_the_cards_faithfulness_figures_are_the_models(model, card):
    """Pointing game, mass inside the shape and accuracy, recomputed image by image with the scores of
    attnviz.maths.map_scores (tests/image/test_faithfulness.py checks them against their definitions)."""
    figures = card["faithfulness"]
    n, seed = figures["n_images"], figures["seed"]
    hits = dict.fromkeys(("last-layer attention", "rollout", "Grad-CAM", "centre baseline"), 0)
    mass = dict.fromkeys(("last-layer attention", "rollout", "Grad-CAM", "uniform baseline"), 0.0)
    correct = 0
    for i in range(n):
        sample = generated_shapes.shape_sample(seed, i)
        ia = attnviz.image_attention(model, sample.image)
        correct += ia.predictions[0][0] == sample.label
        maps = {
            "last-layer attention": ia.weights[-1, :, 0, 1:].mean(axis=0).reshape(8, 8),
            "rollout": rollout(ia.weights)[0, 1:].reshape(8, 8),
            "Grad-CAM": gradcam(model, sample.image, sample.label).grid,
        }
        for method, grid_map in maps.items():
            hits[method] += pointing_hit(grid_map, sample.mask)
            mass[method] += mass_inside(grid_map, sample.mask)
        hits["centre baseline"] += point_hits((32.0, 32.0), sample.mask, tolerance=4.0)
        mass["uniform baseline"] += float(sample.mask.mean())
    step = 2 / n + 5e-5  # two images either way (float rounding elsewhere), plus the card's 4-place rounding
    assert figures["accuracy"] == pytest.approx(correct / n, abs=step)
    assert figures["pointing_game"] == pytest.approx({k: v / n for k, v in hits.items()}, abs=step)
    assert figures["mass_inside_mask"] == pytest.approx({k: v / n for k, v in mass.items()}, abs=1e-3)


def test_at_least_95_percent_on_200_fresh_images(model, fresh):
    correct = sum(attnviz.image_attention(model, s.image).predictions[0][0] == s.label for s in fresh)
    assert correct / len(fresh) >= 0.95, correct


def test_rollout_points_inside_the_shape_far_more_often_than_the_centre(model, fresh):
    hits = sum(pointing_hit(attention_maps(attnviz.image_attention(model, s.image))["rollout"], s.mask) for s in fresh)
    centre = sum(s.mask[28:36, 28:36].any() for s in fresh)
    assert hits / len(fresh) >= 0.85, hits
    assert hits > 2 * centre


def test_attention_rows_sum_to_one_on_a_photo_sized_input(model):
    from PIL import Image

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 400, 3), dtype=np.uint8))
    ia = attnviz.image_attention(model, photo)
    np.testing.assert_allclose(ia.weights.sum(-1), 1.0, atol=1e-5)


def test_integrated_gradients_converge_on_the_demo_images(model):
    """At the default step count, captum's delta stays small against the score it explains."""
    from attnviz.image.attribution import integrated_gradients

    for sample in generated_shapes.demo_samples():
        ig = integrated_gradients(model, sample.image, sample.label)
        assert ig.delta <= 0.1 * abs(ig.change) + 0.05, (sample.label, ig.delta, ig.change)
