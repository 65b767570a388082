"""Integrated gradients' steps on the scoreboard (``score_explanations(..., ig_steps=)``): the steps and
captum's convergence delta are carried on the result, more steps shrink the delta on the bundled
models, the result warns past 5 % of the change explained, and bad step counts are refused."""

from __future__ import annotations

import math

import pytest

import attnviz
from attnviz.errors import InputError
from attnviz.maths.integral_check import integral_error

IG_ONLY = {"methods": ["integrated gradients"], "steps": 2, "random_orders": 0}


def test_more_steps_shrink_the_delta_on_the_bundled_encoder(bundled_model):
    few = attnviz.score_explanations(bundled_model, "The cat sat on the mat.", ig_steps=4, **IG_ONLY)
    more = attnviz.score_explanations(bundled_model, "The cat sat on the mat.", ig_steps=16, **IG_ONLY)
    assert (few.ig_steps, more.ig_steps) == (4, 16)
    change = few.full_score - few.removed_score
    assert few.ig_error == pytest.approx(abs(few.ig_delta) / abs(change))
    # Completeness, independently: the row's scores add up to the change, less the delta.
    assert sum(few.importance["integrated gradients"]) == pytest.approx(change + few.ig_delta, abs=1e-4)
    assert abs(more.ig_delta) < abs(few.ig_delta)
    assert few.ig_error > 0.05 and "4 steps" in few.ig_warning()  # measured: 44 % at 4 steps
    assert more.ig_error <= 0.05 and more.ig_warning() is None  # 0.8 % at 16 (the default)
    assert any(n.startswith("Integrated gradients: 16 steps") for n in more.notes)


def test_more_steps_shrink_the_delta_on_the_bundled_image_model():
    from attnviz.image.generated_shapes import demo_samples

    model = attnviz.load_image_model()
    image = demo_samples()[1].image
    default = attnviz.score_explanations(model, image, **IG_ONLY)
    more = attnviz.score_explanations(model, image, ig_steps=256, **IG_ONLY)
    assert (default.ig_steps, more.ig_steps) == (64, 256)
    assert abs(more.ig_delta) < abs(default.ig_delta)
    assert more.ig_error == pytest.approx(integral_error(more.ig_delta, more.full_score - more.removed_score))


def test_without_integrated_gradients_there_is_no_delta(tiny_model):
    scores = attnviz.score_explanations(tiny_model, "the cat sat", methods=["rollout"], steps=2, random_orders=0)
    assert scores.ig_steps is None and math.isnan(scores.ig_delta) and scores.ig_warning() is None


def test_the_steps_reach_captum_and_progress_ends(tiny_decoder):
    calls = []
    scores = attnviz.score_explanations(
        tiny_decoder, "the cat sat on the mat", ig_steps=40, progress=lambda d, t, w: calls.append((d, t)), **IG_ONLY
    )
    assert scores.ig_steps == 40
    assert calls[-1][0] == calls[-1][1] and all(d <= t for d, t in calls)


@pytest.mark.parametrize("bad", [0, -3, 5000, 2.5, True, "16"])
def test_bad_step_counts_are_refused(tiny_model, bad):
    with pytest.raises(InputError, match="ig_steps must be a whole number from 1 to 4096"):
        attnviz.score_explanations(tiny_model, "the cat sat", ig_steps=bad, **IG_ONLY)
