"""The head-statistics page's corpus mode with the bundled decoder: an upload runs, and the table is
the library's (the decoder's columns and labels)."""

from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz.maths.head_statistics import DECODER_COLUMNS
from tests.pages.apptest_helpers import assert_clean, chart, heatmap_z, start_clean

pytestmark = pytest.mark.bundled

CORPUS = [
    "The cat sat on the mat.",
    "A man is playing a guitar.",
    "The cat sat on the mat, and the dog sat on the cat.",
    "Where did the cat sit?",
]
NUMBERS = list(DECODER_COLUMNS)


def test_decoder_corpus_upload_matches_the_library(bundled_decoder):
    at = start_clean("pages/head_stats.py")
    [b for b in at.button if b.label == "Use bundled SmolLM2-135M-Instruct (decoder)"][0].click().run()
    at.radio(key="stats_source").set_value("Corpus file").run()
    assert_clean(at)
    assert not any("for encoders" in i.value for i in at.info)
    at.file_uploader(key="corpus_upload").upload("lines.txt", ("\n".join(CORPUS) + "\n").encode(), "text/plain").run()
    assert_clean(at)
    expected = attnviz.corpus_head_stats(bundled_decoder, CORPUS).table
    (table,) = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert list(table.columns) == ["layer", "head", *NUMBERS, "label"] and len(table) == 270
    np.testing.assert_allclose(table[NUMBERS].to_numpy(), expected[NUMBERS].to_numpy(), atol=1e-5)
    assert table["label"].tolist() == expected["label"].tolist()
    grid = expected["entropy"].to_numpy().reshape(30, 9)
    np.testing.assert_allclose(heatmap_z(chart(at, "stats_heatmap")), grid, atol=1e-5)
    assert "lines\\.txt\\: 4 sentences" in " ".join(c.value for c in at.caption)
