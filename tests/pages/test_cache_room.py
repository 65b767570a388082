"""The cache room (attnviz.ui.cache): a page asks for a sentence's attention once per run.

The view, the rollout and the head statistics are made from the TextAttention the page already
holds (passed as ``_ta``), so a new sentence runs the model once and the attention cache is
asked once; before, the text page asked it twice per run (three times for the rollout view),
unpickling a copy of up to 151 MB each time. Results are now shared objects (never pickled), and
a new sentence is looked up once, to learn whether the run (and its time estimate) is needed.
"""

from __future__ import annotations

import pytest

import attnviz.ui.cache as cache
from tests.pages.apptest_helpers import assert_clean, chart, start_clean

pytestmark = pytest.mark.bundled


@pytest.fixture
def counts(monkeypatch) -> dict[str, int]:
    """``cache``: reads of the shared results (attnviz.ui.cache.SharedResults); ``model``: runs of
    text_attention behind them."""
    counts = {"cache": 0, "model": 0}
    cached, model = cache.SharedResults.get, cache.text_attention

    def count(key, fn):
        def counted(*args, **kwargs):
            counts[key] += 1
            return fn(*args, **kwargs)

        return counted

    monkeypatch.setattr(cache.SharedResults, "get", count("cache", cached))
    monkeypatch.setattr(cache, "text_attention", count("model", model))
    return counts


@pytest.fixture
def sentence(request) -> str:
    """A sentence no other test has cached."""
    return f"Counted once in {request.node.name}."


def type_sentence(at, counts: dict[str, int], text: str) -> dict[str, int]:
    counts.update(cache=0, model=0)
    at.text_area(key="text_input").input(text).run()
    assert_clean(at)
    return dict(counts)


def test_a_new_sentence_runs_once_on_the_text_page(counts, sentence):
    at = start_clean("pages/text.py")
    assert type_sentence(at, counts, sentence) == {"cache": 1, "model": 1}
    assert chart(at, "matrix_chart")
    counts.update(cache=0, model=0)
    at.selectbox(key="layer").set_value(2).run()
    assert counts == {"cache": 1, "model": 0}  # the same sentence: from the cache, once


def test_a_new_sentence_runs_once_in_the_rollout_view(counts, sentence):
    at = start_clean("pages/text.py")
    at.radio(key="view").set_value("Rollout").run()
    assert type_sentence(at, counts, sentence) == {"cache": 1, "model": 1}
    assert chart(at, "rollout_chart")


def test_a_new_sentence_runs_once_on_the_head_statistics_page(counts, sentence):
    at = start_clean("pages/head_stats.py")
    at.checkbox(key="stats_head_map").check().run()
    assert type_sentence(at, counts, sentence) == {"cache": 1, "model": 1}
    assert chart(at, "stats_heatmap") and chart(at, "stats_head_map_chart")
