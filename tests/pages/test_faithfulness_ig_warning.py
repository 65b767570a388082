"""The faithfulness panel warns when integrated gradients' integral misses the change it explains by
more than 5 % (the app's one rule, attnviz.maths.integral_check), says by how much in numbers, and
its "More steps" button scores again with the next step count, at once; below 5 % nothing is said."""

from __future__ import annotations

import dataclasses

import pytest

import attnviz
from attnviz.ui import faithfulness_panel as panel
from tests.pages.apptest_helpers import assert_clean, start_clean

BUTTON = "Score the explanations"


@pytest.fixture
def missed_by(monkeypatch, empty_caches):
    """Short curves; each call's ig_steps recorded; the result's delta set to ``share[steps]`` of the change."""
    monkeypatch.setattr(panel, "SETTINGS", dict.fromkeys(("image", "encoder", "decoder"), (3, 2)))
    real = attnviz.score_explanations
    calls: list[int | None] = []
    share: dict[int, float] = {}

    def scored(*args, **kwargs):
        calls.append(kwargs.get("ig_steps"))
        scores = real(*args, **kwargs)
        change = scores.full_score - scores.removed_score
        return dataclasses.replace(scores, ig_delta=share[scores.ig_steps] * change)

    monkeypatch.setattr(attnviz, "score_explanations", scored)
    return calls, share


def warnings(at) -> list[str]:
    return [w.value for w in at.warning if "Integrated gradients' row" in w.value]


def more_buttons(at) -> list:
    return [b for b in at.button if b.label.startswith("More steps")]


def test_text_panel_warns_past_five_percent_and_more_steps_scores_again(missed_by):
    calls, share = missed_by
    share.update({16: 0.13, 32: 0.02})  # the 13 %, then within the threshold
    at = start_clean("pages/text.py")
    assert any("integrated gradients in 16 steps" in c.value for c in at.caption)
    next(b for b in at.button if b.label == BUTTON).click().run()
    assert_clean(at)
    assert calls == [16]
    (warning,) = warnings(at)
    assert "13% of the change" in warning and "16 steps" in warning and "5%" in warning
    (more,) = more_buttons(at)
    assert more.label == "More steps (32)"
    more.click().run()  # scored at once: no second click on "Score the explanations"
    assert_clean(at)
    assert calls == [16, 32]
    assert warnings(at) == [] and more_buttons(at) == []
    assert any("Integrated gradients\\: 32 steps" in m.value for m in at.markdown)  # the run's note


def test_no_warning_within_five_percent(missed_by):
    calls, share = missed_by
    share.update({16: 0.049})
    at = start_clean("pages/text.py")
    next(b for b in at.button if b.label == BUTTON).click().run()
    assert_clean(at)
    assert calls == [16] and warnings(at) == [] and more_buttons(at) == []


def test_image_panel_starts_at_64_steps_and_stops_at_its_largest(missed_by):
    calls, share = missed_by
    share.update(dict.fromkeys(panel.IG_STEP_CHOICES["image"], 0.5))
    at = start_clean("pages/image.py")
    next(b for b in at.button if b.label == BUTTON).click().run()
    assert_clean(at)
    assert calls == [64]
    assert "50% of the change" in warnings(at)[0]
    for bigger in (128, 256, 512):
        (more,) = more_buttons(at)
        assert more.label == f"More steps ({bigger})"
        more.click().run()
        assert_clean(at)
    assert calls == [64, 128, 256, 512]
    assert warnings(at) and more_buttons(at) == []
    assert any(c.value == "512 steps is the most this panel runs." for c in at.caption)


def test_the_panels_choices_start_at_the_libraries_defaults():
    from attnviz.image.explanation_scores import IG_STEPS as IMAGE_STEPS
    from attnviz.text.explanation_scores import IG_STEPS as TEXT_STEPS

    assert panel.IG_STEP_CHOICES["text"][0] == TEXT_STEPS == 16
    assert panel.IG_STEP_CHOICES["image"][0] == IMAGE_STEPS == 64
