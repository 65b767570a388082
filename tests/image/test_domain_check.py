"""The bundled image model says when an image is unlike its training data (issue 17)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

import attnviz
from attnviz.errors import ModelLoadError
from attnviz.image import generated_shapes
from attnviz.image import unfamiliar_images as unfamiliar
from attnviz.image.domain_check import DOMAIN_FILE, features_of
from attnviz.image.model_files import BUNDLED_DIR, CARD_FILE
from attnviz.image.train import _generated
from attnviz.maths.domain_scores import flagged

pytestmark = pytest.mark.bundled
FRESH_SEED = 9090  # none of the training (1), calibration (2), test (3) or benchmark seeds


@pytest.fixture(scope="module")
def model():
    return attnviz.load_image_model(device="cpu")


def share_flagged(model, images) -> float:
    feats, logits = features_of(model.model, images)
    return float(flagged(model.domain.scores(feats, logits), model.domain.thresholds).mean())


def test_the_card_records_the_calibration(model):
    entry = model.card["domain_check"]
    assert entry["file"] == DOMAIN_FILE and entry["calibration_images"] == 2000
    assert entry["calibration_false_alarm"] <= entry["false_alarm_target"] <= 0.05
    assert set(entry["thresholds"]) == set(model.domain.thresholds)


def test_few_false_alarms_on_fresh_generated_images(model):
    fresh, _ = _generated(400, FRESH_SEED, 64, "fresh")
    # Calibrated at 3 %: 400 fresh images flag about 12 (sd 3.4); more than 7.5 % would mean a broken check.
    assert share_flagged(model, fresh) <= 0.075


def test_photographs_noise_flat_colours_and_scans_are_flagged(model):
    photos = unfamiliar.photographs(64)
    assert len(photos) == 42, "scikit-learn's sample photographs are part of the test requirements"
    assert share_flagged(model, photos) >= 0.75
    # The landscape ("cross 95.4 %"): both whole photographs, squashed to 64 x 64, are flagged.
    assert share_flagged(model, photos[[0, 21]]) == 1.0
    for images in (
        unfamiliar.scan_like(30, seed=5),
        unfamiliar.uniform_noise(30, seed=6),
        unfamiliar.flat_colours(30, seed=8),
    ):
        assert share_flagged(model, images) >= 0.9
    assert share_flagged(model, unfamiliar.gaussian_noise(30, seed=7)) >= 0.5  # 73 % of 100 in the benchmark


def test_the_result_says_so_in_words(model):
    demo = attnviz.image_attention(model, generated_shapes.demo_samples(64)[0].image)
    assert demo.out_of_domain is False and demo.domain_note.startswith("Like the training images")
    single_pixel = Image.new("RGB", (1, 1), (200, 30, 90))  # the "diamond 55 %"
    odd = attnviz.image_attention(model, single_pixel)
    assert odd.out_of_domain is True
    assert "unlike anything the model was trained on" in odd.domain_note and "circle" in odd.domain_note
    assert "simpler" in odd.domain_note  # the score that caught it: a flat image compresses to nothing


def test_a_damaged_check_is_refused_and_a_card_without_one_is_not_checked(tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(BUNDLED_DIR, folder)
    data = bytearray((folder / DOMAIN_FILE).read_bytes())
    data[-1] ^= 0xFF
    (folder / DOMAIN_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="domain check|SHA-256"):
        attnviz.load_image_model(str(folder), device="cpu")
    card = json.loads((folder / CARD_FILE).read_text())
    del card["domain_check"]
    (folder / CARD_FILE).write_text(json.dumps(card))
    plain = attnviz.load_image_model(str(folder), device="cpu")
    assert plain.domain is None
    result = attnviz.image_attention(plain, Image.new("RGB", (8, 8)))
    assert result.out_of_domain is False and result.domain_note.startswith("Not checked")


def test_the_check_is_a_few_numbers_per_image(model):
    feats, logits = features_of(model.model, unfamiliar.flat_colours(2))
    assert set(feats) == {"class_token", "stem", "thumbnail", "png_bits_per_pixel"}
    assert feats["thumbnail"].shape == (2, 48)
    assert feats["class_token"].shape == (2, 64) and feats["stem"].shape == (2, 128) and logits.shape == (2, 8)
    assert np.isfinite(feats["png_bits_per_pixel"]).all()
