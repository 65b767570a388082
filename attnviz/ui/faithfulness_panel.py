"""The "Is this explanation faithful?" panel, shared by the text page (encoders and decoders) and
the image page: deletion and insertion curves of every map on the current input, their areas in
a table, and one sentence saying which maps beat random (``attnviz.score_explanations``).

It runs only on its button, with a progress bar fed by the scoring's ``progress`` callback. The
result is kept per input in :func:`attnviz.ui.cache.score_store` (shared by every session, keyed by
model, device, input, target and settings), so any later rerun (a slider, a head, another view)
draws the kept result and never scores again; a new input, target or model shows the button again.
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from attnviz.errors import InputError
from attnviz.export.faithfulness_files import removal_curves_png, scores_csv
from attnviz.figures.removal_curves import random_method, removal_curves
from attnviz.image.loading import ImageModel
from attnviz.maths.integral_check import more_steps
from attnviz.text.extraction import TextAttention
from attnviz.text.loading import TextModel
from attnviz.ui.cache import (
    ImageRun,
    Picked,
    ScoredInput,
    computed_explanation_scores,
    scores_key,
    stored_explanation_scores,
)
from attnviz.ui.figure_downloads import figure_downloads
from attnviz.ui.notices import device_notice
from attnviz.ui.safe import md_escape, show_input_error, show_unexpected

#: (points on each curve - 1, random orders drawn) per family, by default: what fits about 10 s on
#: 2 CPU cores. Every curve point of every map is a forward pass, so the bundled decoder (0.08 s a
#: pass at 32 tokens) gets fewer than the encoder, and images (milliseconds a pass) the full set.
SETTINGS = {"image": (20, 20), "encoder": (20, 10), "decoder": (10, 5)}
#: The "Thorough" toggle's settings for text: the library's defaults (tests make every setting small).
THOROUGH = (20, 20)
SEED = 0
THOROUGH_KEY = "faith_thorough"
TARGET = "faith_target"
#: Integrated gradients' steps offered per family, the library's default first (16 for text, 64 for
#: images: ``IG_STEPS`` of each wing's ``explanation_scores``); "More steps" takes the next one.
IG_STEP_CHOICES = {"text": (16, 32, 64, 128), "image": (64, 128, 256, 512)}
#: Session key of this visitor's integrated-gradients steps, per family ("text" or "image").
IG_STEPS_KEY = "faith_ig_steps_{}"
#: Session key: the inputs (score-store keys) this visitor asked to score that are not scored yet.
ASKED = "faith_asked"
TITLE = "Is this explanation faithful?"
INTRO = (
    "Each map ranks the {units} by importance. **Deletion** removes them, most important first: for a map that "
    "reflects what the model used, its score falls fast, so a **lower** area under the curve is better. "
    "**Insertion** puts them back into an emptied input, most important first: a **higher** area is better "
    "(RISE, Petsiuk et al. 2018; the perturbation test of Chefer et al. 2021). **ρ** is each map's Spearman "
    "correlation with leave-one-out importance (Abnar & Zuidema 2020). Random orders are the bar to beat."
)


def text_panel(tm: TextModel, ta: TextAttention) -> None:
    """The panel under the text page's views, for the text (and pair) of ``ta``."""
    _heading("tokens")
    if not ta.holds_weights or ta.n_tokens > tm.max_eager_tokens:
        st.info(
            f"This text has {ta.n_tokens:,} tokens. Scoring the explanations runs the model hundreds of times with "
            f"every head's weights and gradients: shorten the text to {tm.max_eager_tokens:,} tokens or fewer.",
            icon=":material/content_cut:",
        )
        return
    target = None
    if tm.causal:
        # Not stripped: byte-level tokens carry their leading space (" mat" and "mat" differ).
        target = st.text_input(
            "Next token to score",
            key=TARGET,
            placeholder="empty: the model's most likely next token",
            help="The score is this token's probability after the text. One token of the model, usually with its "
            "leading space (' mat'). Empty: the token the model finds most likely.",
        )
        target = target or None
    steps, orders = SETTINGS["decoder" if tm.causal else "encoder"]
    if (steps, orders) != THOROUGH:
        thorough = st.toggle(
            f"Thorough: {THOROUGH[0] + 1} points per curve and {THOROUGH[1]} random orders",
            key=THOROUGH_KEY,
            help=f"By default {steps + 1} points per curve and {orders} random orders, which keeps a run to seconds "
            "on a CPU. Thorough gives smoother curves and a tighter random band, and takes two to four times longer.",
        )
        if thorough:
            steps, orders = THOROUGH

    def key_for(n_ig: int) -> tuple:
        return scores_key(tm, "text", ta.text, ta.text_pair, target, steps, orders, SEED, n_ig)

    _panel(tm, key_for, "faith_run_text", ta.text, (steps, orders), "text", target=target, text_pair=ta.text_pair)


def image_panel(model: ImageModel, result: ImageRun, picked: Picked, target: str) -> None:
    """The panel under the image page's comparison, for the class chosen on the page (``target``)."""
    _heading("grid cells")
    st.caption(md_escape(f"Scores the class chosen under “Class to explain” above: {target}."))
    steps, orders = SETTINGS["image"]

    def key_for(n_ig: int) -> tuple:
        return scores_key(model, "image", picked.key, target, steps, orders, SEED, n_ig)

    _panel(model, key_for, "faith_run_image", result.attention.image, (steps, orders), "image", target=target)


def _heading(units: str) -> None:
    st.divider()
    st.subheader(TITLE)
    st.caption(INTRO.format(units=units))


def ig_steps(family: str) -> int:
    """This visitor's integrated-gradients steps for ``family`` ("text" or "image"): the library's default
    until "More steps" is clicked."""
    return int(st.session_state.get(IG_STEPS_KEY.format(family), IG_STEP_CHOICES[family][0]))


def _use_ig_steps(family: str, n_steps: int, key: tuple) -> None:
    """The "More steps" button: the next step count, scored at once (it was asked for)."""
    st.session_state[IG_STEPS_KEY.format(family)] = n_steps
    st.session_state.setdefault(ASKED, set()).add(key)


def _panel(model, key_for, button: str, inp, settings: tuple[int, int], family: str, **options) -> None:
    n_ig = ig_steps(family)
    key = key_for(n_ig)
    scored = stored_explanation_scores(key)
    if scored is None:
        asked = st.session_state.setdefault(ASKED, set())
        asked.intersection_update({key})  # a request left unfinished for another input is dropped
        if key not in asked:
            _button(button, asked, key)
            st.caption(
                f"Runs the model a few hundred times ({settings[0] + 1} points per curve, for every map and "
                f"{settings[1]} random orders; integrated gradients in {n_ig} steps): seconds to a minute on a "
                "CPU. It runs only when asked."
            )
            return
        scored = _score(model, key, inp, settings, ig_steps=n_ig, **options)
        asked.discard(key)  # done, or failed with a message: a failure is not retried on every rerun
        if scored is None:
            _button(button, asked, key)
            return
    show(scored, button, family, key_for)


def ig_check(scores, family: str, key_for, button: str) -> None:
    """The app's warning (:mod:`attnviz.maths.integral_check`) when integrated gradients' row missed the
    change it explains by more than 5 %, and a "More steps" button that scores again with the next count."""
    warning = scores.ig_warning()
    if warning is None:
        return
    st.warning("Integrated gradients' row: " + warning, icon=":material/warning:")
    bigger = more_steps(scores.ig_steps, IG_STEP_CHOICES[family])
    if bigger is None:
        st.caption(f"{scores.ig_steps} steps is the most this panel runs.")
        return
    st.button(
        f"More steps ({bigger})",
        key=f"{button}_more_steps",
        icon=":material/add:",
        on_click=_use_ig_steps,
        args=(family, bigger, key_for(bigger)),
    )


def _button(button: str, asked: set, key: tuple) -> None:
    # A callback, not the button's return value: the request survives a rerun that starts before the
    # scoring is done (a fast rerun from another widget), which then picks it up again.
    st.button("Score the explanations", key=button, icon=":material/fact_check:", on_click=asked.add, args=(key,))


def _score(model, key: tuple, inp, settings: tuple[int, int], **options) -> ScoredInput | None:
    bar = st.progress(0.0, text="Scoring the explanations…")

    def progress(done: int, total: int, what: str) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=md_escape(f"{what} ({done}/{total})"))

    try:
        with device_notice(model, earlier=False):
            return computed_explanation_scores(
                key, model, inp, steps=settings[0], random_orders=settings[1], seed=SEED, progress=progress, **options
            )
    except InputError as exc:
        show_input_error(exc)
    except Exception as exc:  # a bug: a short message here, the traceback in the server log
        show_unexpected(exc, "scoring the explanations")
    finally:
        bar.empty()
    return None


def _area(row: dict, column: str, with_sd: bool) -> str:
    sd = row[column.replace("_auc", "_sd")]
    return f"{row[column]:.3f}" + (f" ± {sd:.3f}" if with_sd and not math.isnan(sd) else "")


def display_table(scores) -> pd.DataFrame:
    """The table as shown, in its order (best deletion area first): areas to 3 decimals as text, the
    random row's with ± their sd over the random orders."""
    rand = random_method(scores)
    rows = [
        {
            "method": row["method"],
            "deletion AUC ↓": _area(row, "deletion_auc", row["method"] == rand),
            "insertion AUC ↑": _area(row, "insertion_auc", row["method"] == rand),
            "ρ with leave-one-out": row["loo_spearman"],
            "seconds": row["seconds"],
        }
        for row in scores.table.to_dict("records")
    ]
    return pd.DataFrame(
        rows, columns=["method", "deletion AUC ↓", "insertion AUC ↑", "ρ with leave-one-out", "seconds"]
    )


def show(scored: ScoredInput, button: str, family: str | None = None, key_for=None) -> None:
    """The curves, the table (best deletion area first), the summary, what was scored, the downloads;
    with ``family`` and ``key_for`` (the store's key for a step count), :func:`ig_check` under the table."""
    scores = scored.scores
    st.markdown("**" + md_escape(scores.summary()) + "**")
    st.caption(
        "**Target:** "
        + md_escape(
            f"{scores.target}. Full input: {scores.full_score:.4g}; everything removed: {scores.removed_score:.4g}."
        )
    )
    st.caption("**Removal:** " + md_escape(scores.removal))
    st.plotly_chart(removal_curves(scores, title=False), key=f"{button}_curves", width="stretch")
    st.dataframe(
        display_table(scores),
        hide_index=True,
        width="stretch",
        key=f"{button}_table",
        column_config={
            "method": st.column_config.TextColumn(width="large"),
            "ρ with leave-one-out": st.column_config.NumberColumn(format="%+.2f"),
            "seconds": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    if family is not None and key_for is not None:
        ig_check(scores, family, key_for, button)
    for note in scores.notes:
        st.markdown("- " + md_escape(note))
    st.caption(
        f"Scored in {scored.seconds:.1f} s on the server; kept for this input (and for other visitors who score it) "
        "while the server runs."
    )
    c1, c2 = st.columns(2)
    c1.download_button(
        "Table (CSV)",
        scores_csv(scores),
        file_name="attnviz-faithfulness.csv",
        mime="text/csv",
        icon=":material/table:",
        on_click="ignore",
        key=f"{button}_csv",
    )
    figure_downloads(
        lambda fmt, paper: removal_curves_png(scores, fmt=fmt, paper=paper),
        stem="attnviz-faithfulness",
        key=f"{button}_curves_file",
        label="Curves",
        container=c2,
        keep=scored.files,  # made once per format, then bytes: a download must survive reruns
    )
