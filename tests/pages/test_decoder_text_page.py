"""The text page with the bundled decoder, SmolLM2-135M-Instruct, picked from the sidebar's bundled models."""

from __future__ import annotations

import numpy as np
import pytest

from attnviz import text_attention
from attnviz.examples import DEFAULT_TEXT
from attnviz.maths.attention_rollout import rollout
from attnviz.text import bundled_decoder as decoder_files
from attnviz.ui.text_views import VIEWS
from tests.pages.apptest_helpers import assert_clean, charts, decode, figure, heatmap_z, start_clean

pytestmark = pytest.mark.bundled

DECODER_BUTTON = "Use bundled SmolLM2-135M-Instruct (decoder)"


def captions(at) -> str:
    """The captions as a person reads them (without Markdown's escapes)."""
    return "\n".join(c.value for c in at.caption).replace("\\", "")


def on_the_decoder():
    at = start_clean("pages/text.py")
    [b for b in at.button if b.label == DECODER_BUTTON][0].click().run()
    assert_clean(at)
    return at


def test_the_decoder_is_one_click_away_and_draws_causal_attention(bundled_decoder):
    at = on_the_decoder()
    assert "30 layers × 9 heads" in captions(at) and "decoder SmolLM2-135M-Instruct" in captions(at)
    assert "Grey cells are keys a token cannot see" in captions(at)
    assert at.toggle(key="pair_mode").disabled  # a decoder reads one text
    at.selectbox(key="layer").set_value(17).run()
    at.selectbox(key="head").set_value(4).run()
    z = heatmap_z(charts(at)[0])
    expected = text_attention(bundled_decoder, DEFAULT_TEXT).weights[17, 4]
    below = np.tril(np.ones_like(expected, dtype=bool))
    np.testing.assert_allclose(z[below], expected[below], atol=1e-6)
    assert np.isnan(z[~below]).all()
    # Back to the encoder: the button for it is there, and pair mode comes back.
    [b for b in at.button if b.label.startswith("Use bundled all-MiniLM")][0].click().run()
    assert_clean(at)
    assert "6 layers × 12 heads" in captions(at)
    assert not at.toggle(key="pair_mode").disabled


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_draws_for_the_decoder(view):
    at = on_the_decoder()
    at.radio(key="view").set_value(view).run()
    assert_clean(at)
    (chart,) = charts(at)
    if view == "Model overview":
        points = [t for t in figure(chart)["data"] if t.get("type") == "scatter"]
        assert len(points[0]["hovertext"]) == 30 * 9


def test_rollout_is_relative_to_position_by_default_and_can_be_raw(bundled_decoder):
    at = on_the_decoder()
    at.radio(key="view").set_value("Rollout").run()
    weights = text_attention(bundled_decoder, DEFAULT_TEXT).weights
    assert at.toggle(key="rollout_causal").value
    np.testing.assert_allclose(np.nan_to_num(heatmap_z(charts(at)[0])), rollout(weights, causal=True), atol=1e-5)
    at.toggle(key="rollout_causal").set_value(False).run()
    assert_clean(at)
    np.testing.assert_allclose(np.nan_to_num(heatmap_z(charts(at)[0])), rollout(weights), atol=1e-5)


def test_first_use_shows_the_conversion_steps(monkeypatch, bundled_decoder):
    """On a machine where the decoder was never converted, the page says what it is doing meanwhile."""
    said = []
    real_folder = decoder_files.converted_folder

    def converting(progress=None):
        progress("Converting (test)…")
        said.append("converted")
        return real_folder()

    monkeypatch.setattr(decoder_files, "looks_converted", lambda: False)
    monkeypatch.setattr(decoder_files, "converted_folder", converting)
    at = on_the_decoder()
    assert said  # the conversion ran inside the page's status box
    assert any("Converting (test)" in m.value for m in at.markdown)
    assert "30 layers × 9 heads" in captions(at)


def test_sinks_and_hiding_the_first_token(bundled_decoder):
    at = on_the_decoder()
    weights = text_attention(bundled_decoder, DEFAULT_TEXT).weights
    at.radio(key="view").set_value("Attention sinks").run()
    assert_clean(at)
    (first,) = [decode(t["z"]) for t in figure(charts(at)[0])["data"]]  # SmolLM2 adds no special token
    np.testing.assert_allclose(first, weights[:, :, 1:, 0].mean(-1), atol=1e-4)
    assert first[20:].mean() > 0.5  # the sink, in the late layers

    at.radio(key="view").set_value("Single head").run()
    at.selectbox(key="layer").set_value(20).run()
    at.checkbox(key="hide_first").check().run()
    assert_clean(at)
    z = np.nan_to_num(heatmap_z(charts(at)[0]))
    # The first token's row and column are gone; every other row is divided by what it kept.
    kept = weights[20, 0, 1:, 1:]
    np.testing.assert_allclose(z, kept / kept.sum(-1, keepdims=True), atol=1e-5)
    assert "first token hidden" in figure(charts(at)[0])["layout"]["title"]["text"]


def test_a_long_prompt_says_how_long_it_takes_while_it_runs(bundled_decoder, bundled_model):
    from attnviz.text import forward_cost
    from attnviz.ui.sentence import estimate_message, run_estimate

    long_text = "The cat sat on the mat, and then it slept for a while. " * 40  # about 600 tokens
    n, seconds = run_estimate(bundled_decoder, long_text, None)
    assert n == len(bundled_decoder.tokenizer(long_text).input_ids) > 512
    assert seconds == forward_cost.estimate_seconds(bundled_decoder, n)
    message = estimate_message(bundled_decoder, n, seconds)
    assert message.startswith(f"{n} tokens through 30 layers: about {seconds:.0f} s on the CPU")
    assert run_estimate(bundled_decoder, long_text * 100, None)[0] == 8192  # cut to the limit first
    assert run_estimate(bundled_model, long_text, None)[0] == 512
    at = on_the_decoder()
    at.text_area(key="text_input").input(long_text).run()
    assert_clean(at)
    assert not any("were cut" in i.value for i in at.info)  # 600 tokens: well under the decoder's 8,192
    assert not any("through 30 layers:" in i.value for i in at.info)  # the run's notice is gone
    # Past 344 tokens the decoder's every-head weights are not kept: the long views draw one head at a time.
    assert any("are not kept" in c.value for c in at.caption)
