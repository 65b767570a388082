"""The head-statistics page's "Attention vs attribution" with the bundled decoder: it names the
next token it explains (with its probability), draws the library's scores against the last
token's attention, explains a token the user types, and refuses one that is not one token."""

from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz.text.comparison import LAST_TOKEN
from tests.pages.apptest_helpers import assert_clean, chart, decode, figure, start_clean

pytestmark = pytest.mark.bundled

TEXT = "The cat sat on the mat. The dog sat on the"
STEPS = 16


def on_the_decoders_attribution():
    at = start_clean("pages/head_stats.py")
    [b for b in at.button if b.label == "Use bundled SmolLM2-135M-Instruct (decoder)"][0].click().run()
    at.text_area(key="text_input").input(TEXT).run()
    at.segmented_control(key="stats_section").set_value("Attention vs attribution").run()
    at.select_slider(key="attr_steps").set_value(STEPS).run()
    assert_clean(at)
    return at


def plain(markdown: str) -> str:
    """The text a reader sees: without md_escape's backslashes and zero-width spaces."""
    return markdown.replace("\\", "").replace("\u200b", "")


def explained(at) -> str:
    (line,) = [plain(m.value) for m in at.markdown if "Next token explained" in m.value]
    return line


def test_the_section_names_the_next_token_and_draws_the_librarys_scores(bundled_decoder):
    at = on_the_decoders_attribution()
    expected = attnviz.token_attributions(bundled_decoder, TEXT, n_steps=STEPS)
    ta = attnviz.text_attention(bundled_decoder, TEXT)
    line = explained(at)
    assert expected.next_token.strip() in line and f"{expected.next_token_probability:.1%}" in line
    assert f"token id {expected.next_token_id}" in line
    said = plain(" ".join(m.value for m in at.markdown))
    assert "log-probability of the next token ' mat'" in said and "Convergence delta" in said
    assert expected.next_token == " mat"  # SmolLM2's choice; the page must say it, not another
    fig = figure(chart(at, "attribution_chart"))
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert len(bars) == 3
    np.testing.assert_allclose(decode(bars[0]["y"]), expected.scores[1:], atol=1e-6)  # the first token is kept
    np.testing.assert_allclose(decode(bars[1]["y"]), attnviz.rollout(ta.weights, causal=True)[-1][1:], atol=1e-6)
    np.testing.assert_allclose(decode(bars[2]["y"]), ta.weights[-1, :, -1, :].mean(0)[1:], atol=1e-6)
    titles = " ".join(a["text"] for a in fig["layout"]["annotations"])
    assert "from the last token" in titles and LAST_TOKEN in titles and "[CLS]" not in titles
    agreement = [d.value for d in at.dataframe if "spearman" in d.value.columns][0]
    assert len(agreement) == 3 and agreement["spearman"].between(-1, 1).all()
    assert any("after the first one" in c.value for c in at.caption)


def test_a_typed_next_token_is_explained_and_a_two_token_one_refused(bundled_decoder):
    at = on_the_decoders_attribution()
    at.text_input(key="attr_target").input(" log").run()
    assert_clean(at)
    assert "' log'" in explained(at) and "its top choice is ' mat'" in plain(" ".join(m.value for m in at.markdown))
    at.text_input(key="attr_target").input(" logarithmically").run()
    assert not at.exception
    assert any("not one" in w.value for w in at.warning)
    assert not [c for c in at.get("plotly_chart") if c.key == "attribution_chart"]
