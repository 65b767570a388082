"""The head-statistics page's corpus runs: the upload, its checks, and a run that survives reruns.

How Stop works
--------------
A corpus run lives in ``st.session_state[JOB]`` (a :class:`CorpusJob`): the sentences, how
many are done, and the running totals. Each script run processes the remaining batches in a
loop, committing the totals and the position after every batch, and moves a progress bar.
Streamlit stops a running script at its next ``st.*`` call when the user clicks anything
(a rerun request); the Stop button's callback marks the job stopped before the new run
starts, so the new run shows the statistics of the sentences done so far, with a Continue
button. A click on any other widget interrupts the loop the same way, and the next run
simply resumes it: no work is lost or done twice. Streamlit's fast reruns start the new script
thread while the old one may still be inside a batch, so two threads can step the same run;
:class:`~attnviz.text.corpus.CorpusRun` holds a lock over each step and each read of the totals, so
every batch counts exactly once and nothing is read half added.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import streamlit as st

from attnviz.errors import InputError
from attnviz.text.corpus import (
    Corpus,
    CorpusAccumulator,
    CorpusPlan,
    CorpusRun,
    CorpusStats,
    budget_minutes,
    check_corpus_budget,
    decode_corpus,
    estimate_corpus,
    human_duration,
)
from attnviz.text.loading import TextModel
from attnviz.ui.cache import configured_device
from attnviz.ui.safe import md_escape, show_input_error, show_unexpected

UPLOAD, STOP, CONTINUE = "corpus_upload", "corpus_stop", "corpus_continue"
JOB = "corpus_job"  # not a widget: the corpus run (see the module docstring)
#: Corpus limits on the page (the command line has none): ~10 min of the bundled model on 2 CPU cores.
MAX_CORPUS_MB = 5
MAX_CORPUS_SENTENCES = 20_000


@dataclass(eq=False)
class CorpusJob:
    """A visitor's corpus run kept across reruns; ``key`` says which file and model it belongs to.

    The run itself (:class:`~attnviz.text.corpus.CorpusRun`) is safe to step from overlapping reruns.
    """

    key: tuple[str, str, str]  # (SHA-1 of the file, model name, device)
    file_name: str
    run: CorpusRun
    estimate: CorpusPlan | None = None
    stopped: bool = False

    @property
    def total(self) -> int:
        return self.run.total

    @property
    def position(self) -> int:
        return self.run.position

    @property
    def finished(self) -> bool:
        return self.run.finished

    def result(self) -> CorpusStats:
        return self.run.result()


def _stop() -> None:
    job = st.session_state.get(JOB)
    if job is not None:
        job.stopped = True


def _continue() -> None:
    job = st.session_state.get(JOB)
    if job is not None:
        job.stopped = False


def _read_upload(tm: TextModel, uploaded) -> tuple[Corpus, CorpusPlan]:
    """Decode, count and estimate an uploaded corpus; InputError when it cannot run on this page."""
    if uploaded.size > MAX_CORPUS_MB * 1_000_000:  # refused before reading it into memory
        raise InputError(
            f"{uploaded.name} is {uploaded.size / 1e6:.1f} MB; this page takes files up to {MAX_CORPUS_MB} MB. "
            "Split it, or run the command line `python -m attnviz.text.corpus_cli FILE --out stats.csv`, which has no "
            "limit."
        )
    corpus = decode_corpus(
        uploaded.getvalue(), name=uploaded.name, max_bytes=MAX_CORPUS_MB * 1_000_000, max_sentences=MAX_CORPUS_SENTENCES
    )
    plan = estimate_corpus(tm, corpus.sentences, name=uploaded.name)
    check_corpus_budget(plan, budget_minutes(), name=uploaded.name)
    return corpus, plan


def _new_job(tm: TextModel, uploaded) -> CorpusJob | None:
    """A job for the uploaded file, or None after saying what is wrong with it (the old job stays)."""
    # The configured device, not tm.device: a GPU fallback in the middle of a run keeps the job.
    key = (hashlib.sha1(uploaded.getvalue()).hexdigest(), tm.name, configured_device())
    job = st.session_state.get(JOB)
    if job is not None and job.key == key:
        return job
    try:
        with st.spinner(f"Reading {uploaded.name} and counting its tokens…"):
            corpus, plan = _read_upload(tm, uploaded)
    except InputError as exc:
        show_input_error(exc)
        return None
    acc = CorpusAccumulator.for_model(tm)
    acc.empty_lines = corpus.empty_lines + plan.invisible_lines
    job = CorpusJob(key=key, file_name=uploaded.name, run=CorpusRun(sentences=plan.sentences, acc=acc), estimate=plan)
    st.session_state[JOB] = job
    return job


def _progress_text(job: CorpusJob) -> str:
    seconds = job.run.seconds()
    rate = job.position / seconds if seconds > 0 else float("nan")
    text = f"{job.position:,} of {job.total:,} sentences"
    if math.isfinite(rate) and rate > 0:
        left = (job.total - job.position) / rate
        text += f" · {rate:,.0f} sentences/s · about {human_duration(left)} left"
    return text


def _running_note(job: CorpusJob) -> str:
    plan = job.estimate
    ahead = (
        f"{plan.tokens:,} tokens in {len(plan.sentences):,} sentences: about {human_duration(plan.seconds)} on 2 "
        "CPU cores. "
        if plan is not None
        else ""
    )
    return md_escape(
        f"{ahead}The statistics appear here when the run ends; Stop shows (and lets you download) those of the "
        "sentences done so far."
    )


def run_corpus(tm: TextModel) -> CorpusJob | None:
    """Uploader, then the run (progress, Stop/Continue); returns the job whose results to show.

    While a run goes on, the results slot holds a note instead of the previous statistics: the
    browser keeps showing a rerun's old elements until the run ends, and a download button among
    them would point at a file that the rerun has already let go.
    """
    uploaded = st.file_uploader(
        "Corpus: a .txt file, one sentence per line (UTF-8)",
        type=["txt"],
        key=UPLOAD,
        # The uploader itself refuses larger files, with its own message, before they are sent.
        max_upload_size=MAX_CORPUS_MB,
        help=f"Up to {MAX_CORPUS_MB} MB, {MAX_CORPUS_SENTENCES:,} sentences and about "
        f"{human_duration(budget_minutes() * 60)} of work here; lines longer than the model's limit are cut (and "
        "counted). For larger files use `python -m attnviz.text.corpus_cli`.",
    )
    job = _new_job(tm, uploaded) if uploaded is not None else None
    kept = st.session_state.get(JOB)
    if job is None and kept is not None:
        job = kept
        if uploaded is None:
            st.caption(md_escape(f"Showing the last corpus, {job.file_name} (model {job.run.acc.model_name})."))
        else:
            st.caption(md_escape(f"Still showing the previous corpus, {job.file_name}."))
    if job is None:
        st.info("Upload a corpus to see the statistics averaged over many sentences.", icon=":material/description:")
        return None
    if job.key[1:] != (tm.name, configured_device()):
        st.info(md_escape(f"These results are of model {job.run.acc.model_name}; upload the file again for {tm.name}."))
        return job if job.position else None
    if job.finished:
        return job
    if job.stopped:
        c1, c2 = st.columns([4, 1])
        c1.progress(job.position / job.total, text=f"Stopped at {_progress_text(job)}")
        c2.button("Continue", key=CONTINUE, on_click=_continue, icon=":material/play_arrow:")
        return job if job.position else None
    c1, c2 = st.columns([4, 1])
    bar = c1.progress(job.position / job.total, text=_progress_text(job))
    stop = c2.empty()
    stop.button("Stop", key=STOP, on_click=_stop, icon=":material/stop:", help="Keeps the sentences done so far.")
    results = st.empty()
    results.info(_running_note(job), icon="⏳")
    try:
        while not job.stopped and job.run.step(tm):
            bar.progress(job.position / job.total, text=_progress_text(job))  # a click stops the script here
    except InputError as exc:
        job.stopped = True
        show_input_error(exc)
    except Exception as exc:  # a bug: keep what was done, say so, log the details
        job.stopped = True
        show_unexpected(exc, "running the corpus")
    stop.empty()
    results.empty()
    if job.finished:  # a full bar says nothing the caption below does not
        bar.empty()
    return job if job.position else None
