"""The head-statistics page with the bundled decoder: decoder columns and labels, the induction probe,
and corpus mode asking for a corpus."""

from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz.maths.head_statistics import DECODER_COLUMNS
from tests.pages.apptest_helpers import assert_clean, chart, figure, heatmap_z, start_clean

pytestmark = pytest.mark.bundled

TEXT = "The cat sat on the mat. The dog sat on the log. The cat sat on the mat."


@pytest.fixture(scope="module")
def probe(bundled_decoder):
    return attnviz.induction_probe(bundled_decoder, seed=0)


def on_the_decoder():
    at = start_clean("pages/head_stats.py")
    [b for b in at.button if b.label == "Use bundled SmolLM2-135M-Instruct (decoder)"][0].click().run()
    assert_clean(at)
    return at


def test_decoder_statistics_labels_and_probe(bundled_decoder, probe):
    at = on_the_decoder()
    at.text_area(key="text_input").input(TEXT).run()
    assert_clean(at)
    expected = attnviz.head_stats(attnviz.text_attention(bundled_decoder, TEXT))
    (table,) = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert list(table.columns) == ["layer", "head", *DECODER_COLUMNS, "label"] and len(table) == 270
    np.testing.assert_allclose(table["induction_mass"], expected["induction_mass"], atol=1e-6)
    at.selectbox(key="stats_column").set_value("first_mass").run()
    grid = expected["first_mass"].to_numpy().reshape(30, 9)
    np.testing.assert_allclose(heatmap_z(chart(at, "stats_heatmap")), grid, atol=1e-6)
    legend = " ".join(t.get("name", "") for t in figure(chart(at, "stats_labels"))["data"])
    assert "first-token sink" in legend and "induction" in legend
    assert any("Label rules for a decoder" in c.value for c in at.caption)
    # The probe: its map holds the library's scores, and the best heads are in layers 17-18.
    scores = probe.table.sort_values(["layer", "head"])["score"].to_numpy().reshape(30, 9)
    np.testing.assert_allclose(heatmap_z(chart(at, "induction_probe_map")), scores, atol=1e-6)
    assert int(probe.table.iloc[0]["layer"]) in (17, 18)


def test_an_encoder_statistic_kept_from_before_gives_way(bundled_decoder):
    at = start_clean("pages/head_stats.py")
    at.selectbox(key="stats_column").set_value("cls_mass").run()
    [b for b in at.button if b.label == "Use bundled SmolLM2-135M-Instruct (decoder)"][0].click().run()
    assert_clean(at)
    assert at.selectbox(key="stats_column").value == "entropy"


def test_corpus_mode_takes_a_decoder_corpus():
    """Corpus mode asks for an upload, as for an encoder (tests/pages/test_decoder_corpus_page.py runs one)."""
    at = on_the_decoder()
    at.radio(key="stats_source").set_value("Corpus file").run()
    assert_clean(at)
    assert not any("for encoders" in i.value for i in at.info)
    assert any("Upload a corpus" in i.value for i in at.info)
