"""The head-statistics page through AppTest: a sentence, a corpus upload (good and bad files,
stopped and resumed runs), and attention against attribution."""

from __future__ import annotations

import numpy as np
import pytest

import attnviz
from attnviz.examples import DEFAULT_TEXT
from attnviz.maths.head_statistics import COLUMNS
from attnviz.ui.corpus_runs import JOB, CorpusJob
from tests.pages.apptest_helpers import assert_clean, chart, charts, decode, figure, heatmap_z, start_clean

pytestmark = pytest.mark.bundled

PAGE = "pages/head_stats.py"
CORPUS = [
    "The cat sat on the mat.",
    "A man is playing a guitar.",
    "The animal didn't cross the street because it was too tired.",
    "Where did the cat sit?",
    "Tokenization splits unbelievably long words into pieces.",
]
NUMBERS = list(COLUMNS)


@pytest.fixture
def at():
    return start_clean(PAGE)


def grid(table, column: str) -> np.ndarray:
    return table[column].to_numpy().reshape(int(table["layer"].max()) + 1, -1)


def table_of(at):
    frames = [d.value for d in at.dataframe if "label" in d.value.columns]
    assert len(frames) == 1
    return frames[0]


def upload(at, name: str, data: bytes):
    at.radio(key="stats_source").set_value("Corpus file").run()
    at.file_uploader(key="corpus_upload").upload(name, data, "text/plain").run()
    return at


def warnings(at) -> list[str]:
    return [w.value for w in at.warning]


# ---------------------------------------------------------------- a sentence


def test_opens_on_the_current_sentence(at, bundled_model):
    expected = attnviz.head_stats(attnviz.text_attention(bundled_model, DEFAULT_TEXT))
    assert at.text_area(key="text_input").value == DEFAULT_TEXT
    np.testing.assert_allclose(heatmap_z(chart(at, "stats_heatmap")), grid(expected, "entropy"), atol=1e-6)
    labels = figure(chart(at, "stats_labels"))
    assert "previous token" in " ".join(t.get("name", "") for t in labels["data"])
    table = table_of(at)
    assert len(table) == 72 and list(table.columns) == ["layer", "head", *NUMBERS, "label"]
    row = table[(table["layer"] == 0) & (table["head"] == 2)].iloc[0]
    assert row["label"] == "previous token"
    assert [b.label for b in at.get("download_button")] == ["PNG", "SVG", "PDF", "Table (CSV)"]


def test_statistic_picker_and_head_map(at, bundled_model):
    text = "Where did the cat sit, and why?"
    at.text_area(key="text_input").input(text).run()
    at.selectbox(key="stats_column").set_value("prev_mass").run()
    assert_clean(at)
    expected = attnviz.head_stats(attnviz.text_attention(bundled_model, text))
    np.testing.assert_allclose(heatmap_z(chart(at, "stats_heatmap")), grid(expected, "prev_mass"), atol=1e-6)
    at.checkbox(key="stats_head_map").check().run()
    assert_clean(at)
    points = [t for t in figure(chart(at, "stats_head_map_chart"))["data"] if t.get("type") == "scatter"]
    assert sum(len(decode(t["x"])) for t in points) == 72


def test_empty_sentence_is_a_warning(at):
    at.text_area(key="text_input").input("  ").run()
    assert_clean(at)
    assert not charts(at)
    assert any("type a sentence" in w for w in warnings(at))


def test_tiny_model_gives_its_own_table(at, tiny_bert_dir):
    at.text_input(key="model_name_input").input(str(tiny_bert_dir))
    at.form_submit_button[0].click().run()
    at.text_area(key="text_input").input("the cat sat on the mat .").run()
    assert_clean(at)
    assert len(table_of(at)) == 8
    assert heatmap_z(chart(at, "stats_heatmap")).shape == (2, 4)


# ---------------------------------------------------------------- a corpus


def test_corpus_upload_runs_and_matches_the_library(at, bundled_model):
    at.radio(key="stats_source").set_value("Corpus file").run()
    assert_clean(at)
    assert any("Upload a corpus" in i.value for i in at.info)
    data = ("\n".join(CORPUS) + "\n\n").encode()
    upload(at, "my *corpus*.txt", data)
    assert_clean(at)
    expected = attnviz.corpus_head_stats(bundled_model, CORPUS).table
    table = table_of(at)
    np.testing.assert_allclose(table[NUMBERS].to_numpy(), expected[NUMBERS].to_numpy(), atol=1e-5)
    assert table["label"].tolist() == expected["label"].tolist()
    np.testing.assert_allclose(heatmap_z(chart(at, "stats_heatmap")), grid(expected, "entropy"), atol=1e-5)
    captions = " ".join(c.value for c in at.caption)
    assert "my \\*corpus\\*\\.txt\\: 5 sentences" in captions  # the file name shown as typed, not as Markdown
    assert any("1 blank line was skipped" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "corpus_stop"]
    # The head map of a corpus is averaged over its first sentences.
    at.checkbox(key="stats_head_map").check().run()
    assert_clean(at)
    chart(at, "stats_head_map_chart")


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("empty.txt", b"", "is empty"),
        ("blank.txt", b"\n \n", "only blank lines"),
        ("latin.txt", "ok\ncaf\u00e9\n".encode("latin-1"), "line 2 has the byte 0xE9"),
        ("big.txt", b"a cat sat .\n" * 600_000, "takes files up to 5 MB"),
        ("many.txt", b"a\n" * 20_001, "20,001 sentences; the limit here is 20,000"),
    ],
)
def test_bad_corpus_files_are_a_message_and_keep_the_last_results(at, name, data, message):
    upload(at, "good.txt", b"The cat sat on the mat.\nA dog ran.\n")
    assert len(table_of(at)) == 72
    at.file_uploader(key="corpus_upload").upload(name, data, "text/plain").run()
    assert_clean(at)
    found = warnings(at)
    assert len(found) == 1 and message in found[0], found
    assert "previous corpus, good\\.txt" in " ".join(c.value for c in at.caption)
    assert len(table_of(at)) == 72  # nothing lost


def test_lines_over_the_limit_are_cut_and_reported(at):
    long_line = " ".join(["word"] * 600)
    upload(at, "long.txt", f"A short one.\n{long_line}\n".encode())
    assert_clean(at)
    notes = [i.value for i in at.info]
    assert any(
        "1 line was longer than the model's limit of 512 tokens and cut to it (90 tokens dropped)" in n for n in notes
    )


def _job(tm, sentences, position: int, stopped: bool) -> CorpusJob:
    from attnviz.text.corpus import CorpusAccumulator, CorpusRun

    run = CorpusRun(sentences=sentences, acc=CorpusAccumulator.for_model(tm), batch_size=2)
    job = CorpusJob(key=("x" * 40, tm.name, str(tm.device)), file_name="k.txt", run=run)
    while job.position < position:
        run.step(tm)
    job.stopped = stopped
    return job


def test_a_stopped_run_shows_its_part_and_continues(at, bundled_model):
    at.radio(key="stats_source").set_value("Corpus file").run()
    at.session_state[JOB] = _job(bundled_model, CORPUS, position=2, stopped=True)
    at.run()
    assert_clean(at)
    assert any("Stopped after 2 of 5 sentences" in i.value for i in at.info)
    assert at.get("progress")[0].proto.text.startswith("Stopped at 2 of 5 sentences")
    partial = attnviz.corpus_head_stats(bundled_model, CORPUS[:2]).table
    np.testing.assert_allclose(table_of(at)[NUMBERS].to_numpy(), partial[NUMBERS].to_numpy(), atol=1e-5)
    at.button(key="corpus_continue").click().run()
    assert_clean(at)
    full = attnviz.corpus_head_stats(bundled_model, CORPUS).table
    np.testing.assert_allclose(table_of(at)[NUMBERS].to_numpy(), full[NUMBERS].to_numpy(), atol=1e-5)
    assert not any("Stopped" in i.value for i in at.info)


def test_an_interrupted_run_resumes_where_it_was(at, bundled_model):
    """A click on another widget interrupts the loop; the next run carries on, counting nothing twice."""
    at.radio(key="stats_source").set_value("Corpus file").run()
    at.session_state[JOB] = _job(bundled_model, CORPUS, position=4, stopped=False)
    at.run()
    assert_clean(at)
    job = at.session_state[JOB]
    assert job.finished and job.result().sentences == 5
    full = attnviz.corpus_head_stats(bundled_model, CORPUS).table
    np.testing.assert_allclose(table_of(at)[NUMBERS].to_numpy(), full[NUMBERS].to_numpy(), atol=1e-5)


def test_corpus_results_survive_a_visit_to_another_page(at):
    upload(at, "good.txt", b"The cat sat on the mat.\nA dog ran.\n")
    at.selectbox(key="stats_column").set_value("cls_mass").run()
    at.switch_page("pages/home.py").run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.radio(key="stats_source").value == "Corpus file"
    assert at.selectbox(key="stats_column").value == "cls_mass"
    assert "Showing the last corpus, good\\.txt" in " ".join(c.value for c in at.caption)
    assert len(table_of(at)) == 72


def test_the_uploader_states_the_true_cap():
    """The uploader refuses files over the page's limit itself (the server's cap is larger), so a
    too-large file gets Streamlit's own message instead of a raw "AxiosError 413"."""
    import tomllib
    from pathlib import Path

    from attnviz.ui.corpus_runs import MAX_CORPUS_MB

    at = start_clean(PAGE)
    at.radio(key="stats_source").set_value("Corpus file").run()
    server_cap = tomllib.loads(Path(".streamlit/config.toml").read_text())["server"]["maxUploadSize"]
    uploader = at.file_uploader(key="corpus_upload")
    assert uploader.proto.max_upload_size_mb == MAX_CORPUS_MB <= server_cap
    assert f"Up to {MAX_CORPUS_MB} MB" in uploader.help


def test_a_corpus_over_the_time_budget_is_refused_with_the_estimate(at):
    """Under both size limits, a file of long lines would still run for hours: refused before it runs."""
    long_line = " ".join(["word"] * 508)  # 510 tokens with [CLS] and [SEP]
    upload(at, "long.txt", (long_line + "\n").encode() * 700)  # 1.8 MB, 700 lines
    assert_clean(at)
    found = warnings(at)
    assert len(found) == 1, found
    assert "long\\.txt would take about" in found[0] and "357,000 tokens in 700 lines" in found[0]
    assert "python \\-m attnviz\\.stats" in found[0] or "python -m attnviz.text.corpus_cli" in found[0]
    assert JOB not in at.session_state


def test_the_budget_is_a_deployment_setting(at, monkeypatch):
    monkeypatch.setenv("ATTNVIZ_CORPUS_MINUTES", "0.0001")
    upload(at, "good.txt", b"The cat sat on the mat.\nA dog ran.\n")
    assert_clean(at)
    assert any("would take about" in w for w in warnings(at))
    monkeypatch.setenv("ATTNVIZ_CORPUS_MINUTES", "10")
    upload(at, "good.txt", b"The cat sat on the mat.\nA dog ran.\n")
    assert len(table_of(at)) == 72
    assert "estimated 1 s" in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize(
    "data, message",
    [
        ("\u200b\n\u200b\u200c\n\u2060\n".encode(), "no line the model can read"),
        (b"\n\n \n", "only blank lines"),
    ],
)
def test_a_corpus_with_nothing_to_read_says_so(at, data, message):
    upload(at, "nothing.txt", data)
    assert_clean(at)
    found = warnings(at)
    assert len(found) == 1 and message in found[0], found


def test_lines_of_typed_special_tokens_are_text(at, bundled_model):
    """A file of only "[PAD]"/"[SEP]"/"[MASK]" lines has statistics, the same as each line alone."""
    lines = ["[PAD]", "[SEP] [SEP]", "[MASK]"]
    upload(at, "specials.txt", "\n".join(lines).encode())
    assert_clean(at)
    totals = attnviz.corpus_head_stats(bundled_model, lines).table
    np.testing.assert_allclose(table_of(at)[NUMBERS].to_numpy(), totals[NUMBERS].to_numpy(), atol=1e-5)
    one = attnviz.head_stats(attnviz.text_attention(bundled_model, "[SEP] [SEP]"))
    alone = attnviz.corpus_head_stats(bundled_model, ["[SEP] [SEP]"]).table
    np.testing.assert_allclose(alone[NUMBERS].to_numpy(), one[NUMBERS].to_numpy(), atol=1e-5)


def test_the_table_download_is_bytes_that_do_not_rerun(at):
    """A deferred (callable) download is dropped at the next rerun; a corpus run reruns often."""
    upload(at, "good.txt", b"The cat sat on the mat.\nA dog ran.\n")
    buttons = [b for b in at.get("download_button") if "CSV" in b.proto.label]
    assert len(buttons) == 1
    proto = buttons[0].proto
    assert not proto.deferred_file_id  # a stored file, not a callable run on click
    assert proto.ignore_rerun


# ---------------------------------------------------------------- attention vs attribution


def test_attention_vs_attribution(at, bundled_model):
    text = "The cat sat on the mat because it was tired."
    at.text_area(key="text_input").input(text).run()
    at.segmented_control(key="stats_section").set_value("Attention vs attribution").run()
    at.select_slider(key="attr_steps").set_value(16).run()
    assert_clean(at)
    fig = figure(chart(at, "attribution_chart"))
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert len(bars) == 3
    ta = attnviz.text_attention(bundled_model, text)
    expected = attnviz.token_attributions(bundled_model, text, n_steps=16)
    words = ~ta.special
    np.testing.assert_allclose(decode(bars[0]["y"]), expected.scores[words], atol=1e-6)
    np.testing.assert_allclose(decode(bars[1]["y"]), attnviz.rollout(ta.weights)[0][words], atol=1e-6)
    np.testing.assert_allclose(decode(bars[2]["y"]), ta.weights[-1, :, 0, :].mean(0)[words], atol=1e-6)
    agreement = [d.value for d in at.dataframe if "spearman" in d.value.columns][0]
    assert len(agreement) == 3 and agreement["spearman"].between(-1, 1).all()
    sentences = [m.value for m in at.markdown if "ρ" in m.value]
    assert len(sentences) == 3
    assert any("norm of the sentence" in m.value and "Convergence delta" in m.value for m in at.markdown)


def test_the_encoders_target_is_chosen_with_two_sentences(at):
    at.text_area(key="text_input").input("A man is playing a guitar.").run()
    at.segmented_control(key="stats_section").set_value("Attention vs attribution").run()
    at.select_slider(key="attr_steps").set_value(16).run()
    assert len(at.radio(key="attr_encoder_target").options) == 2  # similarity needs two sentences
    assert at.radio(key="attr_encoder_target").value == "norm"
    at.radio(key="attr_encoder_target").set_value("whole text").run()
    assert_clean(at)
    assert any("embedding to the full input" in m.value for m in at.markdown)
    at.toggle(key="pair_mode").set_value(True).run()
    at.text_area(key="text_pair_input").input("Someone plays an instrument.").run()
    assert_clean(at)
    at.radio(key="attr_encoder_target").set_value("similarity").run()
    assert any("cosine similarity of the two sentences" in m.value for m in at.markdown)
    at.radio(key="attr_encoder_target").set_value("norm").run()
    assert_clean(at)
    assert any("norm of the sentence" in m.value for m in at.markdown)
    assert not any("cosine similarity" in m.value for m in at.markdown)


def test_an_imprecise_integral_warns_and_offers_more_steps(at, monkeypatch):
    import attnviz.maths.integral_check as check

    monkeypatch.setattr(check, "MAX_SHARE", -1.0)  # every integral is "imprecise"
    at.text_area(key="text_input").input("The cat sat on the mat.").run()
    at.segmented_control(key="stats_section").set_value("Attention vs attribution").run()
    at.select_slider(key="attr_steps").set_value(16).run()
    assert any("The integral is imprecise: with 16 steps" in w for w in warnings(at))
    at.button(key="attr_more_steps").click().run()
    assert_clean(at)
    assert at.select_slider(key="attr_steps").value == 32
    assert any("with 32 steps" in w for w in warnings(at))


def test_long_inputs_are_attributed_on_request(at):
    at.text_area(key="text_input").input(" ".join(["cat"] * 70)).run()
    at.segmented_control(key="stats_section").set_value("Attention vs attribution").run()
    at.select_slider(key="attr_steps").set_value(16).run()
    assert_clean(at)
    assert not [c for c in charts(at) if c.key == "attribution_chart"]
    assert any("72 tokens" in i.value for i in at.info)
    at.button(key="attr_run").click().run()
    assert_clean(at)
    chart(at, "attribution_chart")
    at.radio(key="attr_fusion").set_value("max").run()
    assert_clean(at)
    chart(at, "attribution_chart")  # already computed: no second click needed


def test_section_survives_a_visit_to_another_page(at):
    at.segmented_control(key="stats_section").set_value("Attention vs attribution").run()
    at.switch_page("pages/home.py").run()
    at.switch_page(PAGE).run()
    assert_clean(at)
    assert at.segmented_control(key="stats_section").value == "Attention vs attribution"


def test_the_bundled_model_is_not_bert_base_and_the_page_says_so(at, bundled_model):
    """The note's counts are the labels of the corpus it names (benchmarks/data/faithfulness-sentences.txt)."""
    from pathlib import Path

    from attnviz.text.corpus import corpus_head_stats
    from attnviz.ui.stats_page import BUNDLED_PATTERNS

    assert any(c.value == BUNDLED_PATTERNS for c in at.caption)
    corpus = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "faithfulness-sentences.txt"
    counts = corpus_head_stats(bundled_model, corpus).table["label"].value_counts().to_dict()
    assert counts.get("[SEP]", 0) == 0
    said = {"[CLS]": 12, "mixed": 49, "broad": 9, "previous token": 1, "next token": 1}
    assert counts == said
    assert "12 of its 72 heads [CLS] and none [SEP]" in BUNDLED_PATTERNS
