"""The next-tokens page: next-token probabilities at any position, generation, and stepping through it."""

from __future__ import annotations

import numpy as np
import pytest

import attnviz
from tests.pages.apptest_helpers import assert_clean, chart, decode, figure, heatmap_z, start_clean

pytestmark = pytest.mark.bundled

PAGE = "pages/next_tokens.py"
PROMPT = "The cat sat on the mat. The dog sat on the"


def on_the_decoder():
    at = start_clean(PAGE)
    assert any("need a decoder language model" in i.value for i in at.info)  # the encoder is the default
    [b for b in at.button if b.label == "Use bundled SmolLM2-135M-Instruct (decoder)"][0].click().run()
    assert_clean(at)
    at.text_area(key="text_input").input(PROMPT).run()
    assert_clean(at)
    return at


def test_next_token_probabilities_at_the_last_and_an_earlier_position(bundled_decoder):
    at = on_the_decoder()
    bars = figure(chart(at, "next_token_bars"))["data"][0]
    expected = attnviz.next_tokens(bundled_decoder, PROMPT, k=5)
    np.testing.assert_allclose(decode(bars["x"])[::-1], [p for _, p in expected], atol=1e-6)  # best on top
    ta = attnviz.text_attention(bundled_decoder, PROMPT)
    assert at.selectbox(key="next_position").value == ta.n_tokens - 1
    at.selectbox(key="next_position").set_value(2).run()
    at.number_input(key="next_top_k").set_value(3).run()
    assert_clean(at)
    bars = figure(chart(at, "next_token_bars"))["data"][0]
    expected = attnviz.next_tokens(bundled_decoder, PROMPT, k=3, position=2)
    np.testing.assert_allclose(decode(bars["x"])[::-1], [p for _, p in expected], atol=1e-6)


def test_generate_then_step_through(bundled_decoder):
    at = on_the_decoder()
    at.number_input(key="gen_n").set_value(5).run()
    at.button(key="generate").click().run()
    assert_clean(at)
    gen = attnviz.generate(bundled_decoder, PROMPT, max_new_tokens=5)
    assert at.text_area(key="gen_text_shown").value == gen.text
    slider = at.select_slider(key="gen_step")
    assert len(slider.options) == gen.n_generated
    at.select_slider(key="gen_step").set_value(3).run()
    at.checkbox(key="gen_hide_first").uncheck().run()
    assert_clean(at)
    # Every layer and head, from the token that chose generated token 3, over the tokens before it.
    z = heatmap_z(chart(at, "gen_step_heads"))
    query = gen.step_query(3)
    np.testing.assert_allclose(np.nan_to_num(z)[:, : query + 1], gen.step_attention(3).reshape(270, -1), atol=1e-5)
    assert np.isnan(z[:, query + 1 :]).all()  # later tokens: not visible
    assert any("Step 4 chose" in m.value for m in at.markdown)


def test_sampling_settings_reach_the_model(bundled_decoder):
    at = on_the_decoder()
    at.number_input(key="gen_n").set_value(4).run()
    at.radio(key="gen_mode").set_value("Sample").run()
    at.number_input(key="gen_seed").set_value(7).run()
    at.button(key="generate").click().run()
    assert_clean(at)
    gen = attnviz.generate(bundled_decoder, PROMPT, max_new_tokens=4, temperature=0.8, top_k=50, seed=7)
    assert at.text_area(key="gen_text_shown").value == gen.text
    # A new prompt: the old generation is not shown for it.
    at.text_area(key="text_input").input("Once upon a time").run()
    assert_clean(at)
    assert not [t for t in at.text_area if t.key == "gen_text_shown"]
