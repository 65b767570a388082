"""The bundled image model as shipped in assets/: accuracy, card, and where its attention points."""

from __future__ import annotations

import json

import numpy as np
import pytest

import attnviz
from attnviz.image import generated_shapes
from attnviz.image.faithfulness import attention_maps
from attnviz.image.loading import BUNDLED_IMAGE_MODEL
from attnviz.image.model_files import BUNDLED_DIR, CARD_FILE
from attnviz.image.train import TEST_SEED, TRAIN_SEED, VAL_SEED
from attnviz.maths.map_scores import pointing_hit

pytestmark = pytest.mark.bundled
FRESH_SEED = 777  # none of the training, validation, test or faithfulness seeds


@pytest.fixture(scope="module")
def model():
    return attnviz.load_image_model(device="cpu")


@pytest.fixture(scope="module")
def fresh():
    return [generated_shapes.shape_sample(FRESH_SEED, i) for i in range(200)]


def test_card_describes_the_model(model):
    card = json.loads((BUNDLED_DIR / CARD_FILE).read_text())
    assert model.name == BUNDLED_IMAGE_MODEL
    assert card["classes"] == list(generated_shapes.CLASSES)
    assert card["input_size"] == [64, 64] and card["grid"] == [8, 8]
    assert card["metrics"]["test_accuracy"] >= 0.95
    assert {"seed", "train_seconds", "steps"} <= set(card["training"])
    assert FRESH_SEED not in {TRAIN_SEED, VAL_SEED, TEST_SEED}


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
