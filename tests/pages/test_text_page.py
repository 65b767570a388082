"""The text-attention page driven through AppTest: inputs, every view and option, errors, the model picker."""

from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz import text_attention
from attnviz.examples import DEFAULT_TEXT, TEXT_EXAMPLES
from attnviz.text.views import BLOCKS
from attnviz.ui.text_views import VIEWS
from tests.pages.apptest_helpers import (
    assert_clean,
    charts,
    decode,
    figure,
    heatmap_z,
    start,
    start_clean,
    trace_types,
)

pytestmark = pytest.mark.bundled  # the page opens on the bundled model

PAGE = "pages/text.py"
SENTENCE = "The cat sat on the mat because it was tired."
PAIR = "Where did the cat sit?"


@pytest.fixture
def at():
    return start_clean(PAGE)


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


def only_chart(at):
    found = charts(at)
    assert len(found) == 1, f"expected one chart, found {len(found)}"
    return found[0]


def test_opens_on_the_default_sentence_and_bundled_model(at, bundled_model):
    assert at.text_area(key="text_input").value == DEFAULT_TEXT
    chart = only_chart(at)
    assert chart.key == "matrix_chart"
    expected = text_attention(bundled_model, DEFAULT_TEXT).weights[0, 0]
    np.testing.assert_allclose(heatmap_z(chart), expected, atol=1e-6)
    text = captions(at)
    assert "6 layers × 12 heads" in text
    assert f"{expected.shape[0]} tokens" in text


def test_new_sentence_layer_and_head(at, bundled_model):
    at.text_area(key="text_input").input(SENTENCE).run()
    assert_clean(at)
    ta = text_attention(bundled_model, SENTENCE)
    np.testing.assert_allclose(heatmap_z(only_chart(at)), ta.weights[0, 0], atol=1e-6)
    at.selectbox(key="layer").set_value(3).run()
    at.selectbox(key="head").set_value(7).run()
    assert_clean(at)
    chart = only_chart(at)
    np.testing.assert_allclose(heatmap_z(chart), ta.weights[3, 7], atol=1e-6)
    assert "Layer 3 · head 7" in figure(chart)["layout"]["title"]["text"]
    assert f"{ta.n_tokens} tokens" in captions(at)


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders(at, bundled_model, view):
    at.text_area(key="text_input").input(SENTENCE).run()
    at.selectbox(key="layer").set_value(2).run()
    at.radio(key="view").set_value(view).run()
    assert_clean(at)
    chart = only_chart(at)
    data = figure(chart)["data"]
    ta = text_attention(bundled_model, SENTENCE)
    if view == "Single head":
        np.testing.assert_allclose(heatmap_z(chart), ta.weights[2, 0], atol=1e-6)
    elif view in ("All heads of a layer", "Model overview"):
        assert trace_types(chart).count("image") == 1
        points = [t for t in data if t.get("type") == "scatter"]
        assert len(points) == 1
        n_tiles = 12 if view == "All heads of a layer" else 72
        assert len(points[0]["hovertext"]) == n_tiles
    elif view == "Head lines":
        assert {t.get("mode") for t in data} >= {"lines", "text"}
    elif view == "Rollout":  # every layer and head, mean fusion, nothing discarded
        np.testing.assert_allclose(heatmap_z(chart), attnviz.rollout(ta.weights), atol=1e-6)
        assert "Attention rollout" in figure(chart)["layout"]["title"]["text"]
        assert at.selectbox(key="layer").disabled and at.selectbox(key="head").disabled
    elif view == "Attention sinks":  # [CLS]'s share of every later row, and [SEP]'s, per head
        first, sep = [decode(t["z"]) for t in data]
        np.testing.assert_allclose(first, ta.weights[:, :, 1:, 0].mean(-1), atol=1e-4)
        np.testing.assert_allclose(sep, ta.weights[:, :, 1:, -1].mean(-1), atol=1e-4)
        assert at.selectbox(key="layer").disabled
    else:  # From one token: every layer and head, for the query token picked below the view
        assert view == "From one token"
        query = at.selectbox(key="query_token").value
        z = heatmap_z(chart)
        assert z.shape == (72, ta.n_tokens)
        np.testing.assert_allclose(z, ta.weights[:, :, query, :].reshape(72, -1), atol=1e-6)
    # A picker the view does not read is greyed, so that changing it cannot re-send the same chart.
    reads = {"Single head": (True, True), "All heads of a layer": (True, False), "Head lines": (True, False)}
    reads_layer, reads_head = reads.get(view, (False, False))
    assert at.selectbox(key="layer").disabled is not reads_layer
    assert at.selectbox(key="head").disabled is not reads_head
    # PNG, SVG, PDF of the figure; all attention; the CSV
    assert [b.label for b in at.get("download_button")][:3] == ["PNG", "SVG", "PDF"]
    assert len(at.get("download_button")) == 5


def test_from_one_token_starts_on_the_first_word_and_follows_the_picker(at, bundled_model):
    """The query picker is clamped with default 1 (the first token after [CLS])."""
    at.text_area(key="text_input").input(SENTENCE).run()
    at.radio(key="view").set_value("From one token").run()
    assert_clean(at)
    ta = text_attention(bundled_model, SENTENCE)
    picker = at.selectbox(key="query_token")
    assert picker.options[:3] == [f"{i}: {ta.tokens[i]}" for i in range(3)]
    at.selectbox(key="query_token").set_value(4).run()
    assert_clean(at)
    np.testing.assert_allclose(heatmap_z(only_chart(at)), ta.weights[:, :, 4, :].reshape(72, -1), atol=1e-6)
    assert ta.tokens[4] in figure(only_chart(at))["layout"]["title"]["text"]
    fresh = start(PAGE)
    fresh.text_area(key="text_input").input(SENTENCE).run()
    fresh.radio(key="view").set_value("From one token").run()
    assert fresh.selectbox(key="query_token").value == 1, "the picker opens on [CLS] instead of the first word"


def test_words_hide_special_and_scale(at, bundled_model):
    at.text_area(key="text_input").input("Tokenization splits unbelievably long words.").run()
    ta = text_attention(bundled_model, "Tokenization splits unbelievably long words.")
    at.radio(key="units").set_value("words").run()
    assert_clean(at)
    words = attnviz.make_view(ta, words=True)
    assert len(words.query_tokens) < ta.n_tokens
    np.testing.assert_allclose(heatmap_z(only_chart(at)), words.weights[0, 0], atol=1e-6)

    at.checkbox(key="hide_special").check().run()
    assert_clean(at)
    hidden = attnviz.make_view(ta, words=True, hide_special=True)
    z = heatmap_z(only_chart(at))
    np.testing.assert_allclose(z, hidden.weights[0, 0], atol=1e-6)
    assert np.all(z.sum(axis=1) <= 1 + 1e-5)

    at.radio(key="scale").set_value("head max").run()
    assert_clean(at)
    heatmap = [t for t in figure(only_chart(at))["data"] if t["type"] == "heatmap"][0]
    assert heatmap["zmax"] == pytest.approx(float(hidden.weights[0, 0].max()), rel=1e-5)


def test_pair_mode_and_every_block(at, bundled_model):
    at.text_area(key="text_input").input(PAIR).run()
    at.toggle(key="pair_mode").set_value(True).run()
    at.text_area(key="text_pair_input").input(SENTENCE).run()
    assert_clean(at)
    ta = text_attention(bundled_model, PAIR, SENTENCE)
    assert ta.is_pair
    assert at.radio(key="block").options == list(BLOCKS)
    for block in BLOCKS:
        at.radio(key="block").set_value(block).run()
        assert_clean(at)
        expected = attnviz.make_view(ta, block=block)
        np.testing.assert_allclose(heatmap_z(only_chart(at)), expected.weights[0, 0], atol=1e-6)
    for view in VIEWS:
        at.radio(key="view").set_value(view).run()
        assert_clean(at)
        assert len(charts(at)) == 1


def test_example_picker_fills_a_pair(at):
    label = "Question and answer (pair)"
    at.selectbox(key="example").set_value(label).run()
    assert_clean(at)
    text, pair = TEXT_EXAMPLES[label]
    assert at.text_area(key="text_input").value == text
    assert at.toggle(key="pair_mode").value is True
    assert at.text_area(key="text_pair_input").value == pair
    assert len(at.radio(key="block").options) == len(BLOCKS)
    assert len(charts(at)) == 1


def test_nothing_left_to_show_is_a_notice(at):
    # A second sentence of only a combining accent (visible, but the tokenizer drops it) leaves B
    # with just its closing [SEP]. (A zero-width space is no second sentence at all.)
    at.toggle(key="pair_mode").set_value(True).run()
    at.text_area(key="text_pair_input").input("\u0301").run()
    at.radio(key="block").set_value("B→B").run()
    at.checkbox(key="hide_special").check().run()
    assert_clean(at)
    assert not charts(at)
    assert any("Nothing to show" in i.value for i in at.info)


@pytest.mark.parametrize("text", ["", "   \n  ", "\u200b\u200b"])
def test_empty_input_shows_a_warning_and_no_chart(at, text):
    at.text_area(key="text_input").input(text).run()
    assert_clean(at)
    assert not charts(at)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1
    assert "type a sentence" in warnings[0]


def test_text_the_tokenizer_drops_shows_a_warning(at):
    at.text_area(key="text_input").input("\u0301\u0302").run()
    assert_clean(at)
    assert not charts(at)
    assert any("type some words" in w.value for w in at.warning)


def test_a_zero_width_second_sentence_is_no_pair(at):
    at.toggle(key="pair_mode").set_value(True).run()
    at.text_area(key="text_pair_input").input("\u200b").run()
    assert_clean(at)
    assert all(r.key != "block" for r in at.radio), "no pair, so no pair-block choice"
    tokens = figure(charts(at)[0])["layout"]["yaxis"]["ticktext"]
    assert [t for t in tokens if "SEP" in t] == ["[SEP]"], tokens


def test_a_lost_character_is_pointed_out_and_the_attention_still_shown(at):
    """U+FFFD is what the page's text-box guard puts for half a surrogate pair."""
    at.text_area(key="text_input").input("The dog ran\ufffd home.").run()
    assert_clean(at)
    notices = [i.value for i in at.info if "U+FFFD" in i.value]
    assert len(notices) == 1 and notices[0].startswith("The sentence holds “\ufffd”"), notices
    assert len(charts(at)) == 1
    at.toggle(key="pair_mode").set_value(True).run()
    at.text_area(key="text_pair_input").input("\ufffd").run()
    assert [i.value.split(" holds")[0] for i in at.info if "U+FFFD" in i.value] == [
        "The sentence",
        "The second sentence",
    ]


def test_every_text_page_installs_the_text_box_guard():
    """The guard (attnviz.ui.widgets) comes with the model picker: in the page, with JavaScript allowed."""
    for page in ("pages/text.py", "pages/head_stats.py", "pages/image.py", "pages/worked_example.py"):
        at = start(page)  # the worked example opens in toy mode, whose tables have text cells too
        guards = [h for h in at.get("html") if "__attnvizWellFormed" in h.proto.body]
        assert len(guards) >= 1 and all(h.proto.unsafe_allow_javascript for h in guards), page


def test_over_long_input_says_what_was_cut(at, bundled_model):
    text = " ".join(["word"] * 300 + ["sentence"] * 300)
    full = len(bundled_model.tokenizer(text)["input_ids"])
    at.text_area(key="text_input").input(text).run()
    assert_clean(at)
    notices = [i.value for i in at.info]
    assert len(notices) == 1
    assert "cut" in notices[0]
    assert f"{full} tokens" in notices[0]
    assert f"last {full - 512} tokens" in notices[0]
    assert "512 tokens" in captions(at)
    chart = only_chart(at)  # 512 x 512: no click layer, still one chart
    assert heatmap_z(chart).shape == (512, 512)


def test_bad_model_name_keeps_the_bundled_model(at):
    at.text_input(key="model_name_input").input("no-such-org/no-such-model-xyz")
    at.form_submit_button[0].click().run()
    assert_clean(at)
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1
    assert "no\\-such\\-model\\-xyz" in warnings[0]  # shown escaped, as typed
    assert "always available" in warnings[0]
    assert len(charts(at)) == 1
    assert "6 layers × 12 heads" in captions(at)


def test_empty_model_name_asks_for_one(at):
    at.form_submit_button[0].click().run()
    assert_clean(at)
    assert any("Type a hub id" in w.value for w in at.warning)
    assert len(charts(at)) == 1


def test_local_tiny_model_then_back_to_bundled(at, tiny_bert_dir, tiny_model):
    # Start on a view whose widgets remember 12 heads, then switch to a 4-head model.
    at.selectbox(key="layer").set_value(5).run()
    at.selectbox(key="head").set_value(11).run()
    at.radio(key="view").set_value("Head lines").run()
    at.text_area(key="text_input").input(SENTENCE).run()
    at.text_input(key="model_name_input").input(str(tiny_bert_dir))
    at.form_submit_button[0].click().run()
    assert_clean(at)
    assert not at.warning
    assert "2 layers × 4 heads" in captions(at)
    assert at.selectbox(key="layer").options == ["0", "1"]
    assert at.selectbox(key="head").options == ["0", "1", "2", "3"]
    assert len(charts(at)) == 1
    legend = {t["name"] for t in figure(only_chart(at))["data"] if t.get("name")}
    assert legend <= {f"head {h}" for h in range(4)}

    at.radio(key="view").set_value("Single head").run()
    at.selectbox(key="layer").set_value(1).run()
    at.selectbox(key="head").set_value(3).run()
    assert_clean(at)
    expected = text_attention(tiny_model, SENTENCE).weights[1, 3]
    np.testing.assert_allclose(heatmap_z(only_chart(at)), expected, atol=1e-6)

    bundled_button = [b for b in at.button if b.label.startswith("Use bundled")][0]
    bundled_button.click().run()
    assert_clean(at)
    assert "6 layers × 12 heads" in captions(at)
    assert len(charts(at)) == 1


def test_home_page_lists_the_model_loaded_on_the_text_page(at, tiny_bert_dir):
    at.text_input(key="model_name_input").input(str(tiny_bert_dir))
    at.form_submit_button[0].click().run()
    assert "2 layers × 4 heads" in captions(at)
    at.switch_page("pages/home.py").run()
    assert_clean(at)
    row = at.dataframe[0].value.iloc[0]
    assert row["model"] == str(tiny_bert_dir)
    assert (row["layers"], row["heads"], row["max tokens"]) == (2, 4, 64)
    assert not bool(row["bundled"])


def test_head_lines_stay_light_at_every_threshold_the_slider_allows(at):
    """figures/lines.py promises at most 1/threshold lines per token; a threshold of 0 draws all n² of them."""
    at.text_area(key="text_input").input(" ".join(["word"] * 300 + ["sentence"] * 300)).run()
    at.radio(key="view").set_value("Head lines").run()
    assert_clean(at)
    slider = at.slider(key="threshold")
    at.slider(key="threshold").set_value(slider.min).run()
    assert_clean(at)
    size = len(only_chart(at).proto.spec)
    assert size < 5_000_000, f"Head lines of one head at threshold {slider.min} sends {size / 1e6:.1f} MB"


def test_choices_survive_an_empty_sentence_and_pair_mode_off(at, bundled_model):
    """Streamlit forgets undrawn widgets; the page must not reset the user's choices."""
    at.text_area(key="text_input").input(PAIR).run()
    at.toggle(key="pair_mode").set_value(True).run()
    at.text_area(key="text_pair_input").input(SENTENCE).run()
    at.radio(key="block").set_value("A→B").run()
    at.radio(key="units").set_value("words").run()
    at.selectbox(key="layer").set_value(4).run()
    at.selectbox(key="head").set_value(9).run()
    at.radio(key="view").set_value("From one token").run()

    at.text_area(key="text_input").input("   ").run()  # no figure, the view widgets are not drawn
    assert not charts(at)
    at.toggle(key="pair_mode").set_value(False).run()  # the block radio is not drawn
    at.text_area(key="text_input").input(PAIR).run()
    at.toggle(key="pair_mode").set_value(True).run()
    assert_clean(at)

    assert at.radio(key="units").value == "words"
    assert at.radio(key="block").value == "A→B"
    assert (at.selectbox(key="layer").value, at.selectbox(key="head").value) == (4, 9)
    assert at.radio(key="view").value == "From one token"


def test_sentence_and_choices_survive_a_visit_to_the_home_page(at):
    at.text_area(key="text_input").input(SENTENCE).run()
    at.selectbox(key="layer").set_value(2).run()
    at.switch_page("pages/home.py").run()
    assert_clean(at)
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.text_area(key="text_input").value == SENTENCE
    assert at.selectbox(key="layer").value == 2


def test_rollout_fusion_discard_and_display_options(at, bundled_model):
    at.text_area(key="text_input").input("Tokenization splits unbelievably long words.").run()
    at.radio(key="view").set_value("Rollout").run()
    assert_clean(at)
    ta = text_attention(bundled_model, "Tokenization splits unbelievably long words.")
    assert at.radio(key="rollout_fusion").options == ["mean", "max", "min"]
    at.radio(key="rollout_fusion").set_value("max").run()
    at.slider(key="rollout_discard").set_value(0.5).run()
    assert_clean(at)
    chart = only_chart(at)
    np.testing.assert_allclose(heatmap_z(chart), attnviz.rollout(ta.weights, "max", 0.5), atol=1e-6)
    assert "max over heads, lowest 50% discarded" in figure(chart)["layout"]["title"]["text"]

    # Display options apply to the rollout after it is computed on every token.
    at.radio(key="units").set_value("words").run()
    at.checkbox(key="hide_special").check().run()
    assert_clean(at)
    from attnviz.text.views import rollout_view

    expected = rollout_view(ta, head_fusion="max", discard_ratio=0.5, words=True, hide_special=True)
    z = heatmap_z(only_chart(at))
    np.testing.assert_allclose(z, expected.weights[0, 0], atol=1e-6)
    assert z.shape == (len(ta.words) - 2, len(ta.words) - 2)
    labels = [b.label for b in at.get("download_button")]
    assert labels[-1] == "Rollout (CSV)"

    # The options survive a visit to another view and back.
    at.radio(key="view").set_value("Single head").run()
    at.radio(key="view").set_value("Rollout").run()
    assert (at.radio(key="rollout_fusion").value, at.slider(key="rollout_discard").value) == ("max", 0.5)
