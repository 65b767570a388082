"""Shareable links through AppTest: a link reopens its view; a hostile one gets defaults and a notice."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from attnviz import explain_head, text_attention
from attnviz.examples import DEFAULT_TEXT
from attnviz.ui.share_links import PREFIX
from tests.pages.apptest_helpers import APP, TIMEOUT, assert_clean, charts, figure, heatmap_z, start_clean

pytestmark = pytest.mark.bundled

SENTENCE = "The cat sat on the mat because it was tired."


def open_link(page: str, params: dict) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.switch_page(page)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    return at


def shared_params(at: AppTest) -> dict:
    """The query parameters of the sidebar's "Share this view" address."""
    codes = [c.value for c in at.get("code") if "?" in c.value or c.value == ""]
    assert len(codes) == 1, codes
    return dict(parse_qsl(urlsplit(codes[0]).query))


def warnings(at: AppTest) -> str:
    return "\n".join(w.value for w in at.warning)


def test_text_page_link_reopens_layer_head_and_view(bundled_model):
    at = open_link("pages/text.py", {"text": SENTENCE, "layer": "3", "head": "7", "view": "single-head"})
    assert_clean(at)
    assert not at.warning
    assert at.text_area(key="text_input").value == SENTENCE
    assert (at.selectbox(key="layer").value, at.selectbox(key="head").value) == (3, 7)
    chart = charts(at)[0]
    np.testing.assert_allclose(heatmap_z(chart), text_attention(bundled_model, SENTENCE).weights[3, 7], atol=1e-6)
    assert "Layer 3 · head 7" in figure(chart)["layout"]["title"]["text"]


def test_widgets_write_the_link_and_the_link_round_trips(bundled_model):
    at = start_clean("pages/text.py")
    assert shared_params(at) == {}  # the defaults need no parameters
    at.text_area(key="text_input").input(SENTENCE).run()
    at.selectbox(key="layer").set_value(4).run()
    at.selectbox(key="head").set_value(2).run()
    at.radio(key="view").set_value("From one token").run()
    at.checkbox(key="hide_special").check().run()
    assert_clean(at)
    params = shared_params(at)
    assert params == {
        "text": SENTENCE,
        "layer": "4",
        "head": "2",
        "view": "from-one-token",
        "hide": "1",
        "query": str(at.selectbox(key="query_token").value),
    }
    again = open_link("pages/text.py", params)
    assert_clean(again)
    assert not again.warning
    for key in ("layer", "head", "view", "query_token"):
        assert again.session_state[key] == at.session_state[key], key
    assert again.checkbox(key="hide_special").value


def test_long_text_goes_in_compressed_and_comes_back(bundled_model):
    long_text = " ".join([SENTENCE] * 20)
    at = start_clean("pages/text.py")
    at.text_area(key="text_input").input(long_text).run()
    params = shared_params(at)
    assert params["text"].startswith(PREFIX) and len(params["text"]) < len(long_text) / 3
    again = open_link("pages/text.py", params)
    assert_clean(again)
    assert again.text_area(key="text_input").value == long_text


def test_pair_and_options(bundled_model):
    at = open_link("pages/text.py", {"text": SENTENCE, "pair": "Where did it sit?", "block": "a-b", "units": "words"})
    assert_clean(at)
    assert at.toggle(key="pair_mode").value
    assert at.text_area(key="text_pair_input").value == "Where did it sit?"
    assert at.radio(key="block").value == "A→B"
    assert at.radio(key="units").value == "words"


HOSTILE = {
    "text": PREFIX + "!!not-base64!!",
    "layer": "99",
    "head": "-3",
    "view": "<img src=x onerror=alert(1)>",
    "model": "../../../etc/passwd",
    "threshold": "1e999",
    "heads": "9" * 500,
    "units": "x" * 5000,
}


def test_hostile_link_gets_defaults_and_a_notice(bundled_model):
    at = open_link("pages/text.py", HOSTILE)
    assert_clean(at)
    notice = warnings(at)
    assert "could not be used" in notice
    for key in ("text", "layer", "head", "view", "model", "units"):
        assert f"`{key}`" in notice, key
    assert "<" not in notice  # a refused value is quoted back only in plain characters
    assert at.text_area(key="text_input").value == DEFAULT_TEXT
    assert (at.selectbox(key="layer").value, at.selectbox(key="head").value) == (0, 0)
    assert at.radio(key="view").value == "Single head"
    assert len(charts(at)) == 1
    # The address is rewritten from the defaults: the hostile values are gone from it.
    assert shared_params(at) == {}


@pytest.mark.parametrize("page", ["pages/worked_example.py", "pages/head_stats.py", "pages/image.py"])
def test_hostile_link_on_other_pages(page):
    at = open_link(page, {**HOSTILE, "mode": "real-model", "image": "12345", "query": "77777", "key": "x"})
    assert not at.exception, [e.value for e in at.exception]
    assert "could not be used" in warnings(at)


def test_worked_example_link_reopens_head_and_cell(bundled_model):
    text = "The cat sat on the mat."
    at = open_link(
        "pages/worked_example.py",
        {"mode": "real-model", "text": text, "layer": "2", "head": "5", "query": "3", "key": "1", "numbers": "1"},
    )
    assert_clean(at)
    assert not at.warning
    state = at.session_state
    assert (state["worked_layer"], state["worked_head"]) == (2, 5)
    assert state["worked_every_number"] is True
    assert (state["worked_query"], state["worked_key"]) == (3, 1)  # the link's cell, not the default
    assert at.text_area(key="worked_text").value == text
    params = shared_params(at)
    assert {k: params.get(k) for k in ("mode", "layer", "head", "query", "key", "numbers")} == {
        "mode": "real-model",
        "layer": "2",
        "head": "5",
        "query": "3",
        "key": "1",
        "numbers": "1",
    }


def test_worked_example_starts_on_the_strongest_off_diagonal_weight(bundled_model):
    at = open_link("pages/worked_example.py", {"mode": "real-model"})
    assert_clean(at)
    text = at.text_area(key="worked_text").value
    w = explain_head(bundled_model, text, layer=0, head=0).weights.astype(float)
    np.fill_diagonal(w, -np.inf)
    i, j = np.unravel_index(np.argmax(w), w.shape)
    assert (at.session_state["worked_query"], at.session_state["worked_key"]) == (i, j)
    assert i != j
    # the weight followed is far from the faint "the" -> [SEP] = 0.0029 the page used to start on
    assert w[i, j] > 0.1


def test_image_page_link_reopens_demo_map_layer_and_head():
    at = open_link("pages/image.py", {"image": "2", "view": "rollout", "layer": "0", "head": "1"})
    assert_clean(at)
    assert not at.warning
    state = at.session_state
    assert (state["image_demo"], state["image_map"], state["image_layer"], state["image_head"]) == (2, "Rollout", 0, 1)
    assert shared_params(at)["image"] == "2"


def test_image_page_link_holds_a_chosen_grad_cam_layer():
    from attnviz.ui.image_families import CAM_LAYER

    plain = open_link("pages/image.py", {})
    assert_clean(plain)
    default = plain.session_state[CAM_LAYER]
    assert "cam" not in shared_params(plain)  # the model's default layer stays out of the link
    other = next(name for name in ("stem.0", "stem.1") if name != default)
    at = open_link("pages/image.py", {"cam": other})
    assert_clean(at)
    assert not at.warning
    assert at.session_state[CAM_LAYER] == other
    assert shared_params(at)["cam"] == other
    for hostile in ("stem.99", "../../etc/passwd"):
        at = open_link("pages/image.py", {"cam": hostile})
        assert_clean(at)
        assert "`cam`" in warnings(at)
        assert at.session_state[CAM_LAYER] == default


def test_stats_page_link(bundled_model):
    at = open_link("pages/head_stats.py", {"text": SENTENCE, "stat": "entropy"})
    assert_clean(at)
    assert at.selectbox(key="stats_column").value == "entropy"
    assert at.text_area(key="text_input").value == SENTENCE
