"""The head-statistics page: per-head statistics of a sentence or an uploaded corpus, and
attention against integrated-gradients attribution for a sentence.

Corpus runs (upload, progress, Stop and Continue) are in :mod:`attnviz.ui.corpus_runs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from attnviz.errors import InputError
from attnviz.export.matrix_files import head_statistic_png
from attnviz.figures.compare import attention_vs_attribution
from attnviz.figures.stats import MASSES, UNITS, clickable_cells, head_map_figure, label_map, stat_heatmap
from attnviz.maths.agreement import WORDING_RULE
from attnviz.maths.attention_rollout import HEAD_FUSIONS
from attnviz.maths.divergence import head_map
from attnviz.maths.head_statistics import (
    BROAD_FRACTION,
    DUPLICATE_THRESHOLD,
    INDUCTION_THRESHOLD,
    LOCAL_THRESHOLD,
    OFFSET_THRESHOLD,
    SELF_THRESHOLD,
    SINK_THRESHOLD,
    SPECIAL_THRESHOLD,
    columns_of,
    is_decoder_table,
)
from attnviz.maths.integral_check import integral_warning, more_steps
from attnviz.text.attribution import model_kind
from attnviz.text.comparison import compare_attention_attribution
from attnviz.text.corpus import human_duration
from attnviz.text.extraction import TextAttention
from attnviz.text.loading import BUNDLED_TEXT_MODEL, TextModel
from attnviz.ui.cache import cached_attributions, cached_divergence, cached_head_stats, cached_induction_probe
from attnviz.ui.corpus_runs import CorpusJob, run_corpus
from attnviz.ui.figure_downloads import figure_downloads
from attnviz.ui.long_text import sweep_result
from attnviz.ui.notices import device_notice
from attnviz.ui.safe import md_escape, show_input_error, show_unexpected
from attnviz.ui.state import keep_default, open_head_on_text_page

HEADS, ATTRIBUTION = "Head statistics", "Attention vs attribution"
SECTIONS = [HEADS, ATTRIBUTION]
SENTENCE, CORPUS = "Current sentence", "Corpus file"
SOURCES = [SENTENCE, CORPUS]
SECTION, SOURCE, STAT, SHOW_MAP = "stats_section", "stats_source", "stats_column", "stats_head_map"
PROBE_SEED = "induction_probe_seed"
STEPS, ATTR_FUSION, ATTR_DISCARD = "attr_steps", "attr_fusion", "attr_discard"
ASKED_ATTRIBUTIONS = "attributions_asked"  # long inputs whose attributions the user asked for
#: Widgets whose value survives visits to other pages (app.py keeps them). The uploaded file
#: cannot be kept (Streamlit refuses to set an uploader's value); the corpus run is kept instead.
KEPT = (
    SECTION, SOURCE, STAT, SHOW_MAP, STEPS, ATTR_FUSION, ATTR_DISCARD, PROBE_SEED, "attr_target", "attr_encoder_target"
)

#: Inputs up to this many tokens are attributed as soon as they are shown; longer ones on request.
AUTO_ATTRIBUTION_TOKENS = 64
STEP_CHOICES = [16, 32, 50, 100, 200]


# ---------------------------------------------------------------- pickers


def section_picker() -> str:
    st.session_state.setdefault(SECTION, SECTIONS[0])
    return st.segmented_control("Show", SECTIONS, key=SECTION, required=True) or SECTIONS[0]


def source_picker() -> str:
    st.session_state.setdefault(SOURCE, SOURCES[0])
    return st.radio(
        "Statistics of",
        SOURCES,
        key=SOURCE,
        horizontal=True,
        help="A corpus is a UTF-8 .txt file with one sentence per line; the statistics are averaged over "
        "every token of every sentence.",
    )


# ---------------------------------------------------------------- statistics


@dataclass(frozen=True)
class StatsResult:
    table: pd.DataFrame
    caption: str  # already escaped for Markdown
    divergence: np.ndarray | None = None  # [m, m], m = layers * heads
    csv_name: str = "attnviz-head-stats.csv"
    no_map: str = "The map needs the attention of at least one sentence."  # said when divergence is None
    model_name: str = ""


def sentence_section(tm: TextModel, ta: TextAttention) -> None:
    """Statistics of the current sentence (the one typed here or on the text page)."""
    try:
        if ta.holds_weights:
            table = cached_head_stats(tm, ta)
        else:  # a long input: every head once, a block of rows at a time, when asked
            result = sweep_result(tm, ta)
            if result is None:
                return
            table = result.statistics
    except Exception as exc:  # a bug: a short message here, the traceback in the server log
        show_unexpected(exc, "computing the head statistics")
        return
    rows = "query tokens after the first (the first sees only itself)" if ta.causal else "query tokens"
    caption = md_escape(
        f"{ta.n_tokens} tokens · {ta.n_layers} layers × {ta.n_heads} heads · model {ta.model_name}. "
        f"Each statistic is a mean over the sentence's {rows}."
    )
    # The divergence is computed only when the map is shown (up to ~1 s at 512 tokens).
    # A long input's map would need every head's full matrix at once: not offered.
    divergence = cached_divergence(tm, ta) if st.session_state.get(SHOW_MAP) and ta.holds_weights else None
    no_map = (
        StatsResult.no_map
        if ta.holds_weights
        else "The map compares every two heads' full matrices, which a long input's result does not keep: "
        "shorten the text to see it."
    )
    render_stats(
        StatsResult(table=table, caption=caption, divergence=divergence, no_map=no_map, model_name=ta.model_name)
    )
    if tm.causal:
        induction_probe_section(tm)


def induction_probe_section(tm: TextModel) -> None:
    """The standard induction probe on this decoder: random tokens repeated twice (Olsson et al. 2022)."""
    st.subheader("Induction heads: the built-in probe")
    st.caption(
        "50 random tokens, then the same 50 again. At the second copy an induction head looks back at the token "
        "that followed the current token's first occurrence, and so predicts what comes next. Score: the mean "
        "attention on that token over the second copy (the stripe TransformerLens averages); 1 is perfect."
    )
    seed = st.number_input("Random seed", 0, 10_000, key=PROBE_SEED, help="Another seed, other random tokens.")
    try:
        with device_notice(tm):
            probe = cached_induction_probe(tm, int(seed))
    except InputError as exc:
        show_input_error(exc)
        return
    except Exception as exc:
        show_unexpected(exc, "running the induction probe")
        return
    table = probe.table
    c1, c2 = st.columns([3, 2])
    grid = table.rename(columns={"score": "induction_mass"}).assign(label="")
    probe_map = stat_heatmap(grid, "induction_mass").update_layout(title="Induction score on the probe, per head")
    c1.plotly_chart(probe_map, key="induction_probe_map", width="stretch")
    best = table.head(8).assign(head=lambda t: [f"L{l} H{h}" for l, h in zip(t["layer"], t["head"], strict=True)])
    c2.dataframe(best[["head", "score"]], hide_index=True, width="stretch")
    c2.caption(
        md_escape(
            f"Loss on the repeated copy: {probe.repeated_loss:.2f} nats, against {probe.first_loss:.2f} on the first "
            "copy, which no model can predict: the drop is what the induction heads buy."
        )
    )
    st.download_button(
        "Probe scores (CSV)",
        table.to_csv(index=False, float_format="%.6g").encode("utf-8"),
        file_name=f"attnviz-induction-seed{int(seed)}.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )


def corpus_section(tm: TextModel) -> None:
    """Upload, run (with progress and Stop), then the statistics of the sentences done (an encoder's
    or a decoder's columns, as the model is)."""
    with device_notice(tm):
        job = run_corpus(tm)
    if job is not None:
        render_stats(corpus_result(job))


#: Clark et al. found their patterns in BERT-base; the bundled model is not BERT-base. Measured with
#: ``python -m attnviz.text.corpus_cli benchmarks/data/faithfulness-sentences.txt`` (the same rules).
BUNDLED_PATTERNS = (
    "Clark et al. found these patterns in BERT-base (12 layers × 12 heads), where most of the middle layers' "
    "attention goes to [SEP]. "
    f"The bundled {BUNDLED_TEXT_MODEL} (6 × 12, distilled) is different: over the 200 sentences of "
    "benchmarks/data/faithfulness-sentences.txt these rules label 12 of its 72 heads [CLS] and none [SEP] "
    "(49 mixed, 9 broad, 1 previous token, 1 next token). Do not look for [SEP] heads in it."
)


def _rules_help(table: pd.DataFrame | None = None) -> str:
    if table is not None and is_decoder_table(table):
        return (
            f"Label rules for a decoder, first match wins: previous token: more than {OFFSET_THRESHOLD:.0%} of "
            f"attention on key i−1; induction: more than {INDUCTION_THRESHOLD:.0%} on the token after an earlier "
            f"copy of the current token; duplicate token: more than {DUPLICATE_THRESHOLD:.0%} on earlier copies; "
            f"first-token sink: more than {SINK_THRESHOLD:.0%} on the first token; special tokens: more than "
            f"{SPECIAL_THRESHOLD:.0%} on them; self: more than {SELF_THRESHOLD:.0%} on itself; local: more than "
            f"{LOCAL_THRESHOLD:.0%} on the token and the 3 before it; broad: entropy above {BROAD_FRACTION:.0%} of "
            "the uniform entropy over the keys each row sees, ln(i+1); otherwise mixed."
        )
    return (
        f"Label rules, first match wins: previous / next token: more than {OFFSET_THRESHOLD:.0%} of attention on "
        f"key i−1 / i+1; [CLS], [SEP], punctuation: more than {SPECIAL_THRESHOLD:.0%} on them; self: more than "
        f"{SELF_THRESHOLD:.0%} on itself; broad: entropy above {BROAD_FRACTION:.0%} of the uniform entropy; "
        "otherwise mixed. Thresholds from Clark et al. 2019, “What Does BERT Look At?”."
    )


STAT_CHART, LABEL_CHART = "stats_heatmap", "stats_labels"


def _open_clicked_head(chart: str) -> None:
    """A click on a cell of the statistic's or the labels' map: that head on the text page."""
    points = st.session_state[chart]["selection"]["points"]
    if points:
        open_head_on_text_page(layer=int(round(points[0]["y"])), head=int(round(points[0]["x"])))


def render_stats(result: StatsResult) -> None:
    """Heatmap of a chosen statistic, the label map, the sortable table and its CSV, the head map."""
    table = result.table
    columns = columns_of(table)
    st.caption(result.caption)
    if st.session_state.get(STAT) not in columns:  # an encoder's statistic kept while a decoder is shown
        st.session_state.pop(STAT, None)
    column = st.selectbox(
        "Statistic",
        list(columns),
        key=STAT,
        format_func=lambda c: f"{c}: {columns[c]}",
    )
    c1, c2 = st.columns(2)
    for col, fig, chart in ((c1, stat_heatmap(table, column), STAT_CHART), (c2, label_map(table), LABEL_CHART)):
        on_click = partial(_open_clicked_head, chart)
        col.plotly_chart(clickable_cells(fig), key=chart, on_select=on_click, selection_mode="points", width="stretch")
    figure_downloads(
        # A callable, made on the click: a corpus run's rerun can drop it, and the next draw offers it again.
        lambda fmt, paper: head_statistic_png(
            table,
            column,
            description=columns[column],
            unit=UNITS.get(column, "of attention"),
            vmax=1.0 if column in MASSES else None,
            fmt=fmt,
            paper=paper,
        ),
        stem=f"attnviz-{column}",
        key="stats_figure",
        label="Map",
        container=c1,
    )
    st.caption("Click a cell to open that head on the text page, for the current sentence.")
    st.caption(_rules_help(table))
    if result.model_name == BUNDLED_TEXT_MODEL:
        st.caption(BUNDLED_PATTERNS)
    st.subheader("Table")
    config = {name: st.column_config.NumberColumn(name, help=text, format="%.3f") for name, text in columns.items()}
    config["label"] = st.column_config.TextColumn("label", help=_rules_help(table))
    st.dataframe(table, hide_index=True, width="stretch", column_config=config, key="stats_table")
    st.download_button(
        "Table (CSV)",
        # Bytes, not a callable: Streamlit drops a deferred download at the next rerun, and a corpus
        # run reruns often. One row per head, a few kB. "ignore": a download does not stop a run.
        table.to_csv(index=False, float_format="%.6g").encode("utf-8"),
        file_name=result.csv_name,
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
    )
    if st.checkbox(
        "Map the heads by how alike they attend",
        key=SHOW_MAP,
        help="Jensen–Shannon divergence between every two heads' attention, averaged over query tokens, "
        "placed in 2-D by multidimensional scaling (as in Clark et al. 2019, section 6).",
    ):
        divergence = result.divergence
        if divergence is None:
            st.info(result.no_map)
            return
        st.plotly_chart(head_map_figure(head_map(divergence), table), key="stats_head_map_chart", width="stretch")


# ---------------------------------------------------------------- corpus runs


def corpus_result(job: CorpusJob) -> StatsResult:
    stats = job.result()
    estimated = f"; estimated {human_duration(job.estimate.seconds)}" if job.estimate is not None else ""
    for note in stats.notes():
        st.info(note, icon=":material/content_cut:" if "cut" in note else ":material/info:")
    caption = md_escape(
        f"{job.file_name}: {stats.sentences:,} sentences, {stats.tokens:,} tokens · model {stats.model_name} · "
        f"{stats.seconds:.1f} s ({stats.sentences_per_second:,.0f} sentences/s{estimated}). Each statistic is a "
        + (
            "mean over every token of every sentence after its first (which sees only itself)."
            if is_decoder_table(stats.table)
            else "mean over every token of every sentence."
        )
    )
    base = job.file_name.rsplit(".", 1)[0] or "corpus"
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in base)[:60]
    return StatsResult(
        table=stats.table,
        caption=caption,
        divergence=stats.divergence,
        csv_name=f"attnviz-head-stats-{safe}.csv",
        model_name=stats.model_name,
    )


# ---------------------------------------------------------------- attention vs attribution


def attribution_options(causal: bool = False) -> tuple[int, str, float, str | None]:
    """Steps, rollout fusion and discard ratio; for a decoder also the next token to explain
    (None: the model's top choice)."""
    c1, c2, c3 = st.columns([2, 2, 3])
    keep_default(STEPS, 50)
    steps = c1.select_slider(
        "Integration steps",
        STEP_CHOICES,
        key=STEPS,
        help="More steps: a smaller convergence delta (the integral's error), a longer run.",
    )
    fusion = c2.radio("Rollout: heads fused by", HEAD_FUSIONS, key=ATTR_FUSION, horizontal=True)
    keep_default(ATTR_DISCARD, 0.0)
    discard = c3.slider("Rollout: discard the lowest weights", 0.0, 0.95, step=0.05, key=ATTR_DISCARD, format="%.2f")
    target = None
    if causal:
        # Not stripped: byte-level tokens carry their leading space (" mat" and "mat" differ).
        target = st.text_input(
            "Next token to explain",
            key="attr_target",
            placeholder="empty: the model's most likely next token",
            help="One token of the model, usually with its leading space (' mat'). Empty: the token the model "
            "finds most likely after the text.",
        )
    return int(steps), fusion, float(discard), (target or None)


#: A plain encoder (the bundled all-MiniLM-L6-v2) has no classes or [MASK]: what its attributions explain.
ENCODER_TARGETS = {
    "similarity": "Similarity of the two sentences (cosine of their mean-pooled embeddings)",
    "norm": "Size of the text's embedding (norm of the mean-pooled last layer)",
    "whole text": "Likeness to the whole text (cosine of the pooled embedding with the full input's)",
}
ENCODER_TARGET = "attr_encoder_target"


def encoder_target(is_pair: bool) -> str:
    """The output a plain encoder's attributions explain (:data:`ENCODER_TARGETS`; similarity needs two sentences)."""
    options = list(ENCODER_TARGETS) if is_pair else ["norm", "whole text"]
    if st.session_state.get(ENCODER_TARGET) not in options:  # e.g. "similarity" kept after pair mode went off
        st.session_state[ENCODER_TARGET] = options[0]
    return st.radio(
        "Explain",
        options,
        format_func=ENCODER_TARGETS.get,
        key=ENCODER_TARGET,
        horizontal=True,
        help="The encoder has no classes to explain. Similarity: how much each token makes its sentence like the "
        "other one (each sentence blanked in turn). Size: how much each token adds to the pooled embedding's "
        "length. Likeness to the whole text: how much each token makes the embedding point where the full "
        "input's points, whatever its length (1 at the input).",
    )


def _attributions(tm: TextModel, ta: TextAttention, text: str, pair: str | None, steps: int, target: str | None = None):
    """The cached attributions; long inputs wait for a click. None while waiting."""
    key = (tm.name, text, pair, steps, target)  # not the device: a GPU fallback does not ask again
    asked = st.session_state.setdefault(ASKED_ATTRIBUTIONS, set())
    # A decoder step costs more (SmolLM2: 135M parameters, 49,152 logits per token): 3.7 s for 16 tokens
    # and 50 steps on one idle CPU thread (benchmarks/decoder_attribution.py), so it runs unasked only
    # up to a quarter of the length.
    auto = AUTO_ATTRIBUTION_TOKENS // 4 if tm.causal else AUTO_ATTRIBUTION_TOKENS
    if ta.n_tokens > auto and key not in asked:
        st.info(
            f"This input has {ta.n_tokens} tokens: integrated gradients runs the model {steps} times forward and "
            "backward, which takes a while on a CPU.",
            icon=":material/timer:",
        )
        # A callback, not the button's return value: it survives a rerun that happens before this line.
        st.button(
            "Compute the attributions", key="attr_run", icon=":material/play_arrow:", on_click=asked.add, args=(key,)
        )
        return None
    # From the cache this takes no time, and the status then just says what was computed.
    with (
        device_notice(tm, earlier=False),
        st.status(f"Integrated gradients: {steps} steps through the model…", expanded=False) as status,
    ):
        result = cached_attributions(tm, text, pair, steps, target)
        status.update(label=f"Integrated gradients over {steps} steps: done.", state="complete")
    return result


def _more_steps(steps: int, key: tuple) -> None:
    """The "More steps" button: the next step count, run at once even on a long input (it was asked for)."""
    st.session_state[STEPS] = steps
    st.session_state.setdefault(ASKED_ATTRIBUTIONS, set()).add(key)


def attention_vs_attribution_section(tm: TextModel, ta: TextAttention, text: str, pair: str | None) -> None:
    if not ta.holds_weights or ta.n_tokens > tm.max_eager_tokens:
        # Integrated gradients runs the model forward and backward with every head's weights kept.
        st.info(
            f"This text has {ta.n_tokens:,} tokens. Attention against attribution needs every head's weights at "
            f"once and integrated gradients through the model: shorten the text to {tm.max_eager_tokens} tokens or "
            "fewer. The head statistics work at any length.",
            icon=":material/content_cut:",
        )
        return
    steps, fusion, discard, target = attribution_options(causal=tm.causal)
    if not tm.causal and model_kind(tm.model) == "encoder":
        target = encoder_target(is_pair=pair is not None)
    try:
        attributions = _attributions(tm, ta, text, pair, steps, target)
        if attributions is None:
            return
        cmp = compare_attention_attribution(ta, attributions, head_fusion=fusion, discard_ratio=discard)
    except InputError as exc:
        show_input_error(exc)
        return
    except Exception as exc:
        show_unexpected(exc, "computing the attributions")
        return
    baselines = " and ".join(f"{b:.4g}" for b in attributions.baseline_values)
    if cmp.causal:
        # The token is the model's text: escaped, and shown with its quotes so a leading space is seen.
        st.markdown(
            "**Next token explained:** "
            + md_escape(
                f"{attributions.next_token!r}, probability {attributions.next_token_probability:.1%} "
                f"(token id {attributions.next_token_id})."
            )
        )
        blank = f"every token after the first replaced by {attributions.blank_token!r}"
    elif len(attributions.baseline_values) > 1:
        blank = "each sentence in turn replaced by [PAD]"
    else:
        blank = "words replaced by [PAD]"
    st.markdown(
        md_escape(
            f"Integrated gradients explain the {attributions.target}: {attributions.value:.4g} for this input, "
            f"{baselines} at the baseline ({blank}). Convergence delta {attributions.delta:+.2e} "
            f"({attributions.relative_delta:.2%} of the change)."
        )
    )
    if cmp.causal:
        st.caption(
            "A decoder has no [CLS]: its last token's state predicts the next token, so the attention compared is "
            "the last token's, in every layer (causal rollout) and in the last layer. The first token is left out: "
            "the baseline keeps it (the integral is jagged when the attention sink moves), and most heads park on it."
        )
    warning = integral_warning(attributions.relative_delta, attributions.n_steps)
    if warning:
        st.warning(warning, icon=":material/warning:")
        bigger = more_steps(steps, STEP_CHOICES)
        if bigger is None:
            st.caption(f"{steps} steps is the most this page runs.")
        else:
            st.button(
                f"More steps ({bigger})",
                key="attr_more_steps",
                icon=":material/add:",
                on_click=_more_steps,
                args=(bigger, (tm.name, text, pair, bigger, target)),
            )
    st.plotly_chart(attention_vs_attribution(cmp), key="attribution_chart", width="stretch")
    st.subheader("Do they agree?")
    which = "after the first one" if cmp.causal else "besides [CLS] and [SEP]"
    st.caption(
        f"Spearman's rank correlation over the tokens {which} (attribution by its size): 1 = same "
        "order, 0 = unrelated, −1 = reversed. The p-value is the share of 2,000 random orders that agree as well. "
        f"The words follow one rule across the app: {WORDING_RULE}."
    )
    shown = cmp.correlations[["first", "second", "spearman", "p_value", "strength"]]
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "spearman": st.column_config.NumberColumn("Spearman ρ", format="%+.2f"),
            "p_value": st.column_config.NumberColumn("p (permutation)", format="%.3f"),
            "strength": st.column_config.TextColumn("in words"),
        },
        key="agreement_table",
    )
    for sentence in cmp.correlations["meaning"]:
        st.markdown("- " + md_escape(sentence))
