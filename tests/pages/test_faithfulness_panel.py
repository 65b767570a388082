"""The "Is this explanation faithful?" panel on the text page (encoder and decoder) and the image page:
it runs only on its button, draws the curves and the table sorted by deletion area, keeps the result
per input (a layer, head or view change never scores again), and says what is wrong with a bad target."""

from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz.text.loading import TextModel
from attnviz.ui import faithfulness_panel as panel
from tests.pages.apptest_helpers import assert_clean, chart, figure, start_clean

BUTTON = "Score the explanations"
COLUMNS = ["method", "deletion AUC ↓", "insertion AUC ↑", "ρ with leave-one-out", "seconds"]


@pytest.fixture(autouse=True)
def small_and_counted(monkeypatch, empty_caches):
    """Short curves and few random orders; every call of the library counted."""
    monkeypatch.setattr(panel, "SETTINGS", dict.fromkeys(("image", "encoder", "decoder"), (4, 3)))
    monkeypatch.setattr(panel, "THOROUGH", (4, 3))
    real = attnviz.score_explanations
    calls = CallList()

    def counted(*args, **kwargs):
        calls.append(kwargs.get("target"))
        settings.append((kwargs["steps"], kwargs["random_orders"]))
        return real(*args, **kwargs)

    settings = []
    calls.settings = settings

    monkeypatch.setattr(attnviz, "score_explanations", counted)
    return calls


class CallList(list):
    """The targets of each call, and ``settings``: the (steps, random orders) of each."""

    settings: list


def score_button(at):
    return [b for b in at.button if b.label == BUTTON]


def scores_table(at):
    tables = [t.value for t in at.dataframe if list(t.value.columns) == COLUMNS]
    assert len(tables) == 1, [list(t.value.columns) for t in at.dataframe]
    return tables[0]


def assert_scored(at, button_key: str):
    """The panel's results: sorted table with the random row's ± sd, the curves, the summary, the downloads."""
    assert_clean(at)
    table = scores_table(at)
    areas = [float(v.split(" ± ")[0]) for v in table["deletion AUC ↓"]]
    assert areas == sorted(areas)
    (rand,) = table[table["method"] == "random"].to_dict("records")
    assert " ± " in rand["deletion AUC ↓"] and " ± " in rand["insertion AUC ↑"]
    fig = figure(chart(at, f"{button_key}_curves"))
    methods = {t["meta"] for t in fig["data"] if t.get("meta") not in ("random band", "random mean")}
    assert methods == set(table["method"]) - {"random"}
    assert any("maps beat random" in m.value or "no map beats random" in m.value for m in at.markdown)
    assert any(c.value.startswith("Scored in") for c in at.caption)
    labels = [d.label for d in at.get("download_button")]
    assert "Table (CSV)" in labels and {"PNG", "SVG", "PDF"} <= set(labels)


def test_encoder_scores_on_the_button_only_and_keeps_the_result(small_and_counted):
    at = start_clean("pages/text.py")
    assert any(h.value == panel.TITLE for h in at.subheader)
    assert score_button(at) and small_and_counted == []  # nothing runs until asked
    score_button(at)[0].click().run()
    assert_scored(at, "faith_run_text")
    assert small_and_counted == [None]
    # Display choices rerun the page, never the scoring: the kept result is drawn again.
    at.selectbox(key="layer").set_value(3).run()
    at.selectbox(key="head").set_value(7).run()
    at.radio(key="view").set_value("Rollout").run()
    at.checkbox(key="hide_special").check().run()
    assert_scored(at, "faith_run_text")
    assert not score_button(at)  # (on the click's own run, AppTest still lists the emptied button)
    assert small_and_counted == [None]
    # A new sentence is a new input: the button comes back.
    at.text_area(key="text_input").input("Dogs bark at night.").run()
    assert score_button(at) and small_and_counted == [None]


def test_decoder_target_and_a_bad_one(tiny_decoder_dirs, small_and_counted):
    at = start_clean("pages/text.py")
    at.text_input(key="model_name_input").input(str(tiny_decoder_dirs["llama"]))
    at.form_submit_button[0].click().run()
    assert_clean(at)
    at.text_input(key=panel.TARGET).input("not one token at all, surely").run()
    score_button(at)[0].click().run()
    assert_clean(at)
    assert at.warning, "a bad target is a message"
    assert score_button(at), "the button stays for another try"
    at.text_input(key=panel.TARGET).input("").run()
    score_button(at)[0].click().run()
    assert_scored(at, "faith_run_text")
    assert small_and_counted[-1] is None


def test_a_text_too_long_for_it_gets_a_message(monkeypatch):
    monkeypatch.setattr(TextModel, "max_eager_tokens", property(lambda self: 4))
    at = start_clean("pages/text.py")
    assert not score_button(at)
    assert any("shorten the text to 4 tokens" in i.value for i in at.info)


def test_image_page_scores_the_chosen_class(small_and_counted):
    at = start_clean("pages/image.py")
    assert any(h.value == panel.TITLE for h in at.subheader)
    n_charts = len(at.get("plotly_chart"))
    target = at.selectbox(key="image_target").value
    score_button(at)[0].click().run()
    assert_scored(at, "faith_run_image")
    assert len(at.get("plotly_chart")) == n_charts + 1
    assert small_and_counted == [target]
    at.slider(key="image_opacity").set_value(0.3).run()  # reruns the map views alone, not the panel
    assert small_and_counted == [target]
    at.run()  # and a full run shows the stored scores again, without scoring
    assert_scored(at, "faith_run_image")
    assert small_and_counted == [target]


def test_the_random_row_shows_its_sd_and_the_others_do_not():
    import pandas as pd

    class Scores:
        table = pd.DataFrame(
            {
                "method": ["a", "random"],
                "deletion_auc": [0.1, 0.5],
                "insertion_auc": [0.9, 0.5],
                "loo_spearman": [0.5, 0.0],
                "seconds": [0.1, 0.2],
                "deletion_sd": [np.nan, 0.05],
                "insertion_sd": [np.nan, 0.04],
            }
        )

    shown = panel.display_table(Scores())
    assert list(shown.columns) == COLUMNS
    assert list(shown["deletion AUC ↓"]) == ["0.100", "0.500 ± 0.050"]
    assert list(shown["insertion AUC ↑"]) == ["0.900", "0.500 ± 0.040"]


def test_thorough_scores_text_with_the_library_defaults(small_and_counted, monkeypatch):
    """Text gets quick settings by default; the toggle asks for the thorough ones, as a new result."""
    monkeypatch.setattr(panel, "SETTINGS", {"image": (4, 3), "encoder": (3, 2), "decoder": (3, 2)})
    monkeypatch.setattr(panel, "THOROUGH", (5, 4))
    at = start_clean("pages/text.py")
    score_button(at)[0].click().run()
    assert_scored(at, "faith_run_text")
    at.toggle(key=panel.THOROUGH_KEY).set_value(True).run()
    assert score_button(at), "the thorough result is another result: the button comes back"
    score_button(at)[0].click().run()
    assert_scored(at, "faith_run_text")
    assert small_and_counted.settings == [(3, 2), (5, 4)]
    assert "6 points per curve" in at.toggle(key=panel.THOROUGH_KEY).label
