"""The "Train on your own images" page's services: the data, the settings, a background training, its result.

How a training runs
-------------------
Start checks the data in the script itself (a .zip is unpacked by
:func:`attnviz.image.training_archive.unpack_training_zip`, a server folder checked by
:func:`~attnviz.image.training_archive.check_training_folder`), so a refused archive shows its message at
once. The training then runs in a background thread (:func:`~attnviz.image.training_archive.train_folder`,
the same settings ``train_from_zip`` and the command line use) with PyTorch limited to
:data:`TRAIN_THREADS` threads; the visitor's :class:`TrainingJob` lives in ``st.session_state[JOB]``
and a fragment (``st.fragment(run_every=1)``) polls it once a second: steps, loss, held-out accuracy.
Stop sets the job's event, honoured between two steps; a stopped run still saves its model. The thread
keeps going if the visitor opens another page; it ends at the time budget.

At most :func:`max_trainings` trainings run at once in the server process (``ATTNVIZ_MAX_TRAININGS``,
default 1): on a small CPU each training takes a core, and the pages of every visitor need the rest.
A visitor who finds every slot taken is told so, and Start waits.

When a training ends, its folder is registered with :func:`attnviz.model_source.register_app_folder`
(it loads whatever the folder policy says: no visitor chose its path), becomes the image page's model
(:data:`attnviz.ui.widgets.IMAGE_MODEL_PICKER`), and its model card is shown, calibration included.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from attnviz.errors import InputError
from attnviz.image import training_archive
from attnviz.image.domain_check import shortfall_words
from attnviz.image.train import SIZES, STOPPED_BY_STOP, TrainProgress
from attnviz.image.training_archive import (
    MAX_FILES,
    MAX_UNPACKED_BYTES,
    MIN_IMAGES_PER_CLASS,
    check_training_folder,
    train_folder,
    unpack_training_zip,
)
from attnviz.model_source import Policy, register_app_folder
from attnviz.ui.safe import md_escape, show_input_error
from attnviz.ui.widgets import IMAGE_MODEL_PICKER

log = logging.getLogger("attnviz")

UPLOAD, SOURCE, FOLDER, SIZE, BUDGET, ROTATIONS = (
    "train_upload",
    "train_source",
    "train_folder",
    "train_size",
    "train_budget",
    "train_rotations",
)
START, STOP = "train_start", "train_stop"
REQUESTED = "train_start_requested"  # not a widget: Start was clicked
JOB = "train_job"  # not a widget: the visitor's training (see the module docstring)
FROM_ZIP, FROM_FOLDER = "A .zip upload", "A folder on this server"
#: Environment variable: how many trainings the server process runs at once (default 1).
MAX_TRAININGS_ENV = "ATTNVIZ_MAX_TRAININGS"
#: PyTorch threads of a training's worker: one core, the other one for the pages.
TRAIN_THREADS = 1
#: The time budget's slider, in seconds.
BUDGET_MIN, BUDGET_MAX, BUDGET_DEFAULT = 10, 600, 60
#: Where trained models are written (one new folder per training; the command line's go in a subfolder).
TRAINED_ROOT = training_archive.TRAINED_ROOT
#: Trained-model folders kept under TRAINED_ROOT: older ones are deleted when a training starts.
KEEP_TRAINED = 8
#: Points of the held-out curve kept per training.
HISTORY_POINTS = 400


def max_trainings() -> int:
    """The cap on concurrent trainings: ``ATTNVIZ_MAX_TRAININGS``, a whole number >= 1 (a bad value gives 1)."""
    raw = os.environ.get(MAX_TRAININGS_ENV, "").strip()
    try:
        return max(1, int(raw)) if raw else 1
    except ValueError:
        log.warning("%s=%r is not a whole number; one training at a time", MAX_TRAININGS_ENV, raw)
        return 1


class TrainingSlots:
    """The process-wide count of running trainings, under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0

    def acquire(self, cap: int) -> bool:
        with self._lock:
            if self._running >= cap:
                return False
            self._running += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._running = max(0, self._running - 1)

    def in_use(self) -> int:
        with self._lock:
            return self._running


SLOTS = TrainingSlots()


@dataclass(frozen=True)
class Setup:
    """What Start will train on, and how."""

    source: str  # FROM_ZIP or FROM_FOLDER
    name: str  # the upload's file name, or the folder's path
    size: int
    budget: float
    augment: str
    upload: object | None = None  # the UploadedFile
    folder: Path | None = None


@dataclass(eq=False)
class TrainingJob:
    """A visitor's training; the worker thread writes it, the page reads it."""

    name: str
    size: int
    budget: float
    out_dir: Path
    summary: str
    stop: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    progress: TrainProgress | None = None
    history: list[tuple[int, float, float | None]] = field(default_factory=list)
    card: dict | None = None
    model_name: str | None = None
    error: str | None = None  # an InputError's message
    failed: bool = False  # a bug, logged
    opened: bool = False  # made the image page's model

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    def report(self, p: TrainProgress) -> None:
        self.progress = p
        if p.step == 1 or p.step % 25 == 0 or p.fraction >= 1:
            if len(self.history) < HISTORY_POINTS:
                self.history.append((p.step, p.loss, p.held_out_accuracy))


def folders_allowed() -> Policy | None:
    """The deployment's policy when it lets the server read folders (``ATTNVIZ_LOCAL_MODELS``), else None."""
    policy = Policy.from_env()
    return policy if policy.local and not policy.problem else None


def _check_server_folder(text: str, policy: Policy) -> tuple[Path, dict[str, int]]:
    """The folder's resolved path and its images per class; InputError when the policy or the folder refuses."""
    path = Path(text.strip()).expanduser()
    if not text.strip() or not path.is_absolute():
        raise InputError(
            "Type the absolute path of a folder on this server (/data/my-images), with one subfolder of images per "
            "class."
        )
    path = path.resolve()
    if policy.dirs and not any(path.is_relative_to(d) for d in policy.dirs):
        # Said before the folder is looked at, so the answer never tells whether a path exists.
        raise InputError(
            "This server reads folders only inside "
            + " or ".join(str(d) for d in policy.dirs)
            + " (ATTNVIZ_MODEL_DIRS)."
            " Put the class folders there, or upload a .zip."
        )
    return path, check_training_folder(path)


def upload_cap_mb() -> int:
    """The largest .zip, in MB: the server's upload cap, or the most that is unpacked, whichever is smaller."""
    return max(1, min(int(st.get_option("server.maxUploadSize")), MAX_UNPACKED_BYTES // 2**20))


def current_job() -> TrainingJob | None:
    return st.session_state.get(JOB)


def intro() -> None:
    st.caption(
        "Train the app's small CNN-attention model on your own images, then see where it looks on the image "
        f"page. Give one folder per class (at least 2 classes, {MIN_IMAGES_PER_CLASS} images each; 10 % of each "
        "class is held out to measure accuracy). The same training runs from the command line: "
        "`python -m attnviz.train --data FOLDER --out OUT --size 128`."
    )


def choose_data() -> Setup | None:
    """The data (a .zip, or a server folder where the deployment allows folders) and the settings; None
    until there is something to train on."""
    job = current_job()
    busy = job is not None and job.running
    policy = folders_allowed()
    source = FROM_ZIP
    if policy is not None:
        source = st.radio("Images from", (FROM_ZIP, FROM_FOLDER), key=SOURCE, horizontal=True, disabled=busy)
    upload = folder_text = None
    if source == FROM_ZIP:
        upload = st.file_uploader(
            "A .zip of class folders (cats/1.png, dogs/2.jpg, ...)",
            type=["zip"],
            key=UPLOAD,
            max_upload_size=upload_cap_mb(),
            disabled=busy,
            help=f"At most {MAX_FILES:,} files and {MAX_UNPACKED_BYTES // 2**20} MB unpacked; PNG, JPEG, WebP, BMP or "
            "GIF images. Other files, hidden files and __MACOSX are skipped. Archives inside the archive, links, "
            "paths leading out of the folder and encrypted members are refused.",
        )
    else:
        folder_text = st.text_input(
            "Folder on this server",
            key=FOLDER,
            placeholder="/data/my-images",
            disabled=busy,
            help="Its subfolders are the classes. "
            + (f"Only folders inside {', '.join(map(str, policy.dirs))}." if policy.dirs else ""),
        )
    c1, c2 = st.columns(2)
    size = c1.radio(
        "Input size",
        SIZES,
        key=SIZE,
        horizontal=True,
        format_func=lambda s: f"{s} x {s}",
        disabled=busy,
        help="Images are resized to this square. 64 trains fastest; 128 and 224 keep finer detail (medical "
        "images) and take about 4 and 12 times as long per step.",
    )
    budget = c2.slider(
        "Time budget (seconds of training)",
        BUDGET_MIN,
        BUDGET_MAX,
        BUDGET_DEFAULT,
        step=10,
        key=BUDGET,
        disabled=busy,
        help="Training stops when this time is spent (or at Stop); the weights with the best held-out score are kept.",
    )
    rotations = st.checkbox(
        "Rotated or mirrored images keep their class (shapes, cells, textures, microscopy)",
        key=ROTATIONS,
        disabled=busy,
        help="On: training also shows each image rotated by 90° and mirrored both ways. Off: mirrored left to "
        "right only (right for X-rays, faces, text, anything with an up and a down).",
    )
    augment = "dihedral" if rotations else "hflip"
    if source == FROM_ZIP:
        if upload is None:
            return None
        return Setup(FROM_ZIP, upload.name, int(size), float(budget), augment, upload=upload)
    if not folder_text or not folder_text.strip():
        return None
    return Setup(FROM_FOLDER, folder_text.strip(), int(size), float(budget), augment, folder=Path(folder_text))


def prune_trained(keep: int = KEEP_TRAINED) -> list[Path]:
    """Delete all but the ``keep`` newest trained-model folders under :data:`TRAINED_ROOT` (oldest first);
    returns those deleted. Called when a training starts, so that a long-running server's temporary folder
    does not fill up (the command line's models, in their own subfolder, are not the app's and stay); a
    model already loaded stays in memory, and a page that asks for a deleted one again gets the usual "no
    such folder" message."""
    if not TRAINED_ROOT.is_dir():
        return []
    folders = sorted(
        (p for p in TRAINED_ROOT.iterdir() if p.is_dir() and p.name != training_archive.COMMAND_LINE_DIR),
        key=lambda p: p.stat().st_mtime,
    )
    deleted = folders[: max(0, len(folders) - keep)]
    for folder in deleted:
        shutil.rmtree(folder, ignore_errors=True)
        log.info("deleted the trained model %s (the %d newest are kept)", folder.name, keep)
    return deleted


def _model_folder(name: str) -> Path:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(name).stem)[:40].strip("-") or "model"
    return TRAINED_ROOT / f"{stem}-{uuid.uuid4().hex[:8]}"


def _work(job: TrainingJob, setup: Setup, folder: Path, cleanup: Callable[[], None]) -> None:
    """The worker thread: train, register the folder; always release the slot and say it finished."""
    import torch

    # PyTorch's thread count is the default of every thread started later (each page's script run is
    # one): set for the training, it is put back when the training ends, so that an ATTNVIZ_THREADS=4
    # server does not run its pages on one thread for good after a visitor's training.
    threads_before = torch.get_num_threads()
    try:
        torch.set_num_threads(TRAIN_THREADS)
        card = train_folder(
            folder,
            job.out_dir,
            size=setup.size,
            time_budget=setup.budget,
            progress=job.report,
            stop=job.stop,
            name=setup.name,
            model_name=job.out_dir.name,
            augment=setup.augment,
        )
        job.model_name = register_app_folder(job.out_dir)
        job.card = card
    except InputError as exc:
        job.error = str(exc)
    except Exception:  # a bug: the visitor gets a short message, the log the traceback
        log.exception("unexpected error while training on %r", setup.name)
        job.failed = True
    finally:
        torch.set_num_threads(threads_before)
        cleanup()
        SLOTS.release()
        job.finished.set()


def start(setup: Setup | None) -> None:
    """The Start button, and what it says when every training slot is taken."""
    job = current_job()
    busy = job is not None and job.running
    cap = max_trainings()
    full = not busy and SLOTS.in_use() >= cap
    if full:
        st.info(
            f"{_trainings(SLOTS.in_use())} already running on this server, the most it runs at once ({cap}), so "
            "that every visitor's pages stay quick. Start becomes possible when it ends (each stops at its time "
            "budget, at most 10 minutes); the page checks again when you click anything.",
            icon=":material/hourglass_top:",
        )
    st.button(
        "Start training",
        key=START,
        type="primary",
        icon=":material/play_arrow:",
        disabled=busy or full or setup is None,
        on_click=_start_clicked,
    )
    # A callback's request survives a fast rerun that starts before this run reaches here.
    clicked = st.session_state.pop(REQUESTED, False)
    if not clicked or setup is None or busy:
        return
    if not SLOTS.acquire(cap):  # another visitor took the last slot since the page was drawn
        st.warning(
            f"Another visitor's training started just now; this server runs {cap} at a time. Try again when it ends.",
            icon=":material/hourglass_top:",
        )
        return
    try:
        with st.spinner(f"Checking {setup.name}…"):
            if setup.source == FROM_ZIP:
                unpacked = unpack_training_zip(setup.upload.getvalue(), name=setup.name)
                folder, cleanup, summary = unpacked.folder, unpacked.remove, unpacked.summary()
            else:
                folder, counts = _check_server_folder(str(setup.folder), folders_allowed() or Policy(local=False))
                cleanup = _keep
                summary = f"{len(counts)} classes, {sum(counts.values())} images"
    except InputError as exc:
        SLOTS.release()
        show_input_error(exc)
        return
    except BaseException:
        SLOTS.release()
        raise
    prune_trained(KEEP_TRAINED - 1)  # room for this one
    job = TrainingJob(setup.name, setup.size, setup.budget, _model_folder(setup.name), summary)
    st.session_state[JOB] = job
    worker = threading.Thread(target=_work, args=(job, setup, folder, cleanup), name="attnviz-training", daemon=True)
    worker.start()


def _start_clicked() -> None:
    st.session_state[REQUESTED] = True


def _keep() -> None:
    """A server folder is the visitor's data: nothing is removed after training."""


def _trainings(n: int) -> str:
    return f"{n} training{'s' if n != 1 else ''}"


def _stop_clicked() -> None:
    job = current_job()
    if job is not None:
        job.stop.set()


def _progress_text(job: TrainingJob) -> str:
    p = job.progress
    if p is None:
        return f"Reading and resizing the images of {job.name} ({job.summary})…"
    held = "not measured yet" if p.held_out_accuracy is None else f"{p.held_out_accuracy:.0%}"
    text = f"Step {p.step:,} · loss {p.loss:.3f} · held-out accuracy {held} · {p.seconds:.0f} of {job.budget:.0f} s"
    if job.stop.is_set() or p.fraction >= 1:
        text += " · saving the best step's weights and calibrating the domain check…"
    return text


@st.fragment(run_every=1)
def _live() -> None:
    job = current_job()
    if job is None:
        return
    if not job.running:
        st.rerun()  # the whole page: the result replaces the progress
    p = job.progress
    c1, c2 = st.columns([5, 1])
    c1.progress(0.0 if p is None else p.fraction, text=md_escape(_progress_text(job)))
    c2.button(
        "Stop",
        key=STOP,
        on_click=_stop_clicked,
        icon=":material/stop:",
        disabled=job.stop.is_set(),
        help="Ends the training after the current step; the best weights so far are saved and usable.",
    )
    _curve(job)


def _curve(job: TrainingJob) -> None:
    """Held-out accuracy against steps, on a fixed 0-100 % axis (a flat start is not magnified)."""
    points = [(s, 100 * acc) for s, _, acc in list(job.history) if acc is not None]
    if len(points) >= 2:
        import altair as alt
        import pandas as pd

        frame = pd.DataFrame(points, columns=["step", "held-out accuracy (%)"])
        chart = (
            alt.Chart(frame)
            .mark_line(point=True)
            .encode(
                x=alt.X("step:Q", title="step"),
                y=alt.Y("held-out accuracy (%):Q", title="accuracy (%)", scale=alt.Scale(domain=[0, 100])),
            )
            .properties(height=200, title="Held-out accuracy")  # a short axis title: 160 px clipped the long one
        )
        st.altair_chart(chart, width="stretch")


def watch() -> None:
    """While the visitor's training runs: its progress, once a second, with Stop."""
    job = current_job()
    if job is not None and job.running:
        st.caption(
            md_escape(f"Training on {job.name}: {job.summary}, {job.size} x {job.size}, up to {job.budget:.0f} s.")
            + " It runs on the server: it goes on if you open another page, and ends at the time budget."
        )
        _live()


def show_result() -> None:
    """The finished training: its message, or the new model (now the image page's), its card and a link."""
    job = current_job()
    if job is None or job.running:
        return
    if job.error is not None:
        show_input_error(InputError(job.error))
        return
    if job.failed or job.card is None:
        st.error(
            "Something went wrong while training. The details are in the server log; try again, or train from the "
            "command line (`python -m attnviz.train`).",
            icon=":material/bug_report:",
        )
        return
    if not job.opened:
        st.session_state[IMAGE_MODEL_PICKER.current] = job.model_name
        st.session_state.pop(IMAGE_MODEL_PICKER.error, None)
        job.opened = True
    card = job.card
    training = card["training"]
    how = "stopped by you" if training.get("stopped") == STOPPED_BY_STOP else "time budget spent"
    if training.get("stopped") is None:
        how = "all steps done"
    st.success(
        md_escape(
            f"Trained on {job.name} ({how}): held-out accuracy {card['metrics']['validation_accuracy']:.0%}. "
            "It is now the image page's model."
        ),
        icon=":material/check_circle:",
    )
    st.page_link("pages/image.py", label="See where it looks on the image page", icon=":material/image:")
    model_card(card)
    _curve(job)


def model_card(card: dict) -> None:
    """The card's facts a person reads, with the domain check's calibration; the whole card below."""
    training, domain = card.get("training", {}), card.get("domain_check") or {}
    rows = [
        ("Classes", ", ".join(card.get("classes", []))),
        ("Data", card.get("data", "")),
        ("Input size", " x ".join(map(str, card.get("input_size", [])))),
        ("Attention grid", " x ".join(map(str, card.get("grid", [])))),
        ("Parameters", f"{card.get('parameters', 0):,}"),
        (
            "Steps",
            f"{training.get('steps', 0):,} (saved: step {training.get('kept_step', '-')}, the best held-out score)",
        ),
        ("Training time", f"{training.get('train_seconds', 0):.1f} s on {training.get('device', '?')}"),
        ("Augmentation", f"{training.get('augment', '')}, shifts of up to {training.get('shift_pixels', 0)} px"),
        ("Held-out accuracy", f"{card.get('metrics', {}).get('validation_accuracy', 0):.1%}"),
    ]
    if domain:
        rows.append(("Domain check", domain_check_words(domain)))
    st.subheader("Model card")
    st.table({"": [r[0] for r in rows], "value": [str(r[1]) for r in rows]})
    if domain and (note := domain_check_caveat(domain)):
        st.caption(note)
    with st.expander("The whole model card (model_card.json)"):
        st.json(card, expanded=False)


#: What the card's score names mean, for a person.
SCORE_WORDS = {
    "class_token": "class token",
    "stem": "convolution statistics",
    "thumbnail": "colour thumbnail",
    "energy": "energy",
    "too simple": "PNG size (too small)",
    "too complex": "PNG size (too large)",
}


def domain_check_words(domain: dict) -> str:
    """The card's domain-check row: how it was fitted and calibrated, and what that promises."""
    target = domain.get("false_alarm_target", 0)
    head = f"{domain.get('method', '')}: fitted on {domain.get('fit_images', 0)} training images, calibrated on "
    if "false_alarm_bound" not in domain:  # an older check (the bundled model's)
        return (
            f"{head}{domain.get('calibration_images', 0)} held-out ones for a false-alarm rate of at most {target:.0%} "
            f"(measured there: {domain.get('calibration_false_alarm', 0):.0%})"
        )
    # The method's whole sentence is in the card's JSON (the expander below the table); a table cell of
    # twenty lines buried the numbers a reader looks for.
    used = domain.get("calibration", {})
    sets = ", ".join(f"{SCORE_WORDS.get(k, k)} on {v.get('images', 0)} images" for k, v in used.items())
    text = (
        f"scores in use: {sets or 'none'}; at most {domain['false_alarm_bound']:.1%} of new images like these "
        f"flagged (target {target:.0%}); fitted on {domain.get('fit_images', 0)} training images, calibrated on "
        f"{domain.get('calibration_images', 0)} held-out ones and the training images, each score on images "
        "that did not shape it (method: the whole model card, below)"
    )
    if left := domain.get("scores_left_out"):
        text += f"; not used: {', '.join(SCORE_WORDS.get(k, k) for k in left)} (too few held-out images for them)"
    return text


def domain_check_caveat(domain: dict) -> str | None:
    """A plain word under the card when the check's calibration is weaker than its target says."""
    target = domain.get("false_alarm_target", 0)
    if "false_alarm_bound" not in domain:
        if domain.get("calibration_images", 0) < 20:
            return (
                f"The domain check's threshold was set on {domain.get('calibration_images', 0)} held-out images "
                "only: with so few, its false-alarm rate on new images of these classes is a rough figure."
            )
        return None
    bound = domain["false_alarm_bound"]
    fewest = min((v.get("images", 0) for v in domain.get("calibration", {}).values()), default=0)
    if bound > target + 1e-9:
        return (
            f"The domain check was {shortfall_words(fewest, bound, target)}. More images make it sharper: about "
            "100 bring it to its target."
        )
    left = domain.get("scores_left_out")
    if left:
        return (
            f"With {domain.get('calibration_images', 0)} held-out images, the model's own scores "
            f"({', '.join(SCORE_WORDS.get(k, k) for k in left)}) could not be calibrated to {target:.0%} false "
            "alarms, so the domain check looks at each image's colours, layout and PNG size only: it flags images "
            "whose colours, layout or detail differ from these (flat colours, noise, most photographs for a model "
            "of drawn shapes), not a different object on the same kind of background. With 10 % held out, about "
            "500 images bring the first of the model's scores in, about 1,500 all three."
        )
    return None
