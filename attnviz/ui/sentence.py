"""The sentence that the text and head-statistics pages share: its inputs and its attention.

The sentence, the second sentence and pair mode live under the shared keys in
:mod:`attnviz.ui.state`, so both pages (and the worked example's "use the sentence from the
text page") see the same text.
"""

from __future__ import annotations

import streamlit as st

from attnviz.errors import InputError
from attnviz.examples import DEFAULT_TEXT, TEXT_EXAMPLES
from attnviz.text import forward_cost
from attnviz.text.extraction import TextAttention, is_blank
from attnviz.text.loading import TextModel
from attnviz.ui.cache import computed_text_attention, stored_text_attention, text_key
from attnviz.ui.notices import device_notice
from attnviz.ui.safe import show_input_error, show_unexpected
from attnviz.ui.state import PAIR, PAIR_ON, TEXT
from attnviz.ui.text_boxes import replacement_notice

#: Widgets whose value must survive runs that do not draw them (another page, pair mode off).
KEPT = (TEXT, PAIR, PAIR_ON)


def _apply_example() -> None:
    label = st.session_state.get("example")
    if label in TEXT_EXAMPLES:
        text, pair = TEXT_EXAMPLES[label]
        st.session_state[TEXT] = text
        st.session_state[PAIR_ON] = pair is not None
        st.session_state[PAIR] = pair or ""


def sentence_inputs(causal: bool = False) -> tuple[str, str | None]:
    """Sentence box, optional second sentence, and example picker; returns (text, pair).

    ``causal``: the model is a decoder, which reads one text: pair mode is greyed out (its
    setting is kept for when an encoder is picked again).
    """
    st.session_state.setdefault(TEXT, DEFAULT_TEXT)
    # One row (the sentence; beside it the examples and pair mode), so that the figure below starts
    # within a projector's 720 pixels.
    box, side = st.columns([2, 1], vertical_alignment="bottom")
    side.selectbox(
        "Examples",
        list(TEXT_EXAMPLES),
        index=None,
        key="example",
        placeholder="Pick an example sentence…",
        on_change=_apply_example,
        label_visibility="collapsed",
    )
    text = box.text_area(
        "Sentence",
        key=TEXT,
        height=80,
        help="Any text up to the model's limit (512 tokens for the bundled models); longer text is cut. "
        "Press Ctrl+Enter to apply.",
    )
    pair_on = side.toggle(
        "Second sentence (pair mode)",
        key=PAIR_ON,
        disabled=causal,
        help="A decoder reads one text, left to right: put both sentences in the box above."
        if causal
        else "Feed two sentences as [CLS] A [SEP] B [SEP], as in question answering or paraphrase detection.",
    )
    pair_on = pair_on and not causal
    pair = st.text_area("Second sentence", key=PAIR, height=68) if pair_on else None
    replacement_notice(text, "sentence")
    replacement_notice(pair, "second sentence")
    # The library's rule: a second sentence with nothing visible is no pair (no pair-block choice either).
    return text, (pair if pair_on and not is_blank(pair) else None)


#: A run expected to take longer than this says its time first, then shows progress per layer
#: and a Stop button; a shorter one shows a spinner.
PROGRESS_SECONDS = 2.0
#: Session key: the inputs whose run this visitor stopped (not run again until asked).
STOPPED = "_attnviz_stopped_run"


def run_estimate(tm: TextModel, text: str, pair: str | None) -> tuple[int, float]:
    """(tokens the model will read, seconds its forward pass should take), the input cut to the limit."""
    n = len(tm.tokenizer(text, pair, verbose=False)["input_ids"])
    n = min(n, tm.max_tokens)
    return n, forward_cost.estimate_seconds(tm, n)


def estimate_message(tm: TextModel, n: int, seconds: float) -> str:
    where = "the GPU" if tm.device.type == "cuda" else f"the {tm.device.type.upper()}"
    flops = forward_cost.forward_flops(tm, n)
    return (
        f"{n:,} tokens through {tm.n_layers} layers: about {_duration(seconds)} on {where} "
        f"({flops / 1e12:.1f} TFLOP). The views then draw from it without running the model again."
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def _stop(key: tuple) -> None:
    st.session_state[STOPPED] = key


def _resume() -> None:
    st.session_state.pop(STOPPED, None)


def run_model(tm: TextModel, text: str, pair: str | None) -> TextAttention | None:
    """The attention of ``tm`` for the inputs, or None after showing why there is none.

    A stored result returns at once. A run that should take more than :data:`PROGRESS_SECONDS`
    first says how long, then shows its progress layer by layer beside a Stop button: a click
    reruns the page, which ends the run at its next layer (Streamlit stops a script at its next
    element), and the page then says it was stopped instead of starting again.
    """
    try:
        with device_notice(tm):  # the GPU fallback's notice, even for a stored result
            ta = stored_text_attention(tm, text, pair)
            if ta is not None or is_blank(text):
                return ta or computed_text_attention(tm, text, pair)  # a blank text: the library's message
            key = text_key(tm, text, pair)
            if st.session_state.get(STOPPED) == key:
                st.info(
                    "You stopped the model's run on this text. Edit the text, or run it again.",
                    icon=":material/stop_circle:",
                )
                st.button("Run the model", on_click=_resume, icon=":material/play_arrow:")
                return None
            n, seconds = run_estimate(tm, text, pair)
            if seconds < PROGRESS_SECONDS:
                with st.spinner("Running the model…"):
                    return computed_text_attention(tm, text, pair)
            slot = st.empty()
            box = slot.container(border=True)
            box.info(estimate_message(tm, n, seconds), icon="⏳")
            bar = box.progress(0.0, text="Starting…")
            stop_help = "Ends the run at its next layer; the page keeps working."
            stop = dict(key="stop_model_run", on_click=_stop, args=(key,), icon=":material/stop:", help=stop_help)
            box.button("Stop", **stop)

            def progress(done: int, total: int) -> None:
                bar.progress(done / total, text=f"Layer {done} of {total}")

            ta = computed_text_attention(tm, text, pair, progress=progress)
            slot.empty()
            return ta
    except InputError as exc:
        show_input_error(exc)
    except Exception as exc:  # a bug: keep the page alive, log the details
        show_unexpected(exc, "running the model")
    return None


def truncation_notice(ta: TextAttention) -> None:
    if ta.truncated:
        if ta.is_pair:
            what = f"{ta.n_cut:,} tokens were cut from the end of the longer sentence"
        else:
            what = f"the last {ta.n_cut:,} tokens were cut; the views show the first {ta.n_tokens:,}"
        st.info(
            f"The input was {ta.n_tokens + ta.n_cut:,} tokens but the model reads at most {ta.n_tokens:,}, so {what}.",
            icon=":material/content_cut:",
        )
