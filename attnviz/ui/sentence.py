"""The sentence that the text and head-statistics pages share: its inputs and its attention.

The sentence, the second sentence and pair mode live under the shared keys in
:mod:`attnviz.ui.state`, so both pages (and the worked example's "use the sentence from the
text page") see the same text.
"""

from __future__ import annotations

import streamlit as st

from attnviz.errors import InputError
from attnviz.examples import DEFAULT_TEXT, TEXT_EXAMPLES
from attnviz.text.extraction import TextAttention, is_blank
from attnviz.text.loading import TextModel
from attnviz.ui.cache import cached_text_attention
from attnviz.ui.notices import device_notice
from attnviz.ui.safe import show_input_error, show_unexpected
from attnviz.ui.state import PAIR, PAIR_ON, TEXT
from attnviz.ui.widgets import replacement_notice

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
    st.selectbox(
        "Examples",
        list(TEXT_EXAMPLES),
        index=None,
        key="example",
        placeholder="Pick an example sentence…",
        on_change=_apply_example,
    )
    text = st.text_area(
        "Sentence",
        key=TEXT,
        height=80,
        help="Any text up to the model's limit (512 tokens for the bundled models); longer text is cut. "
        "Press Ctrl+Enter to apply.",
    )
    pair_on = st.toggle(
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


#: A decoder's forward pass with every layer's attention kept, seconds per token on one CPU thread
#: (the bundled SmolLM2: 0.3 s at 128 tokens, 0.6 s at 256, 1.5 s at 512, on a busy 2-core machine).
DECODER_CPU_SECONDS_PER_TOKEN = 3e-3


def long_prompt_message(tm: TextModel, text: str) -> str | None:
    """What to say while a decoder's forward pass runs on the CPU for more than a second, or None."""
    if not tm.causal or tm.device.type != "cpu" or not text or is_blank(text):
        return None
    n = min(len(tm.tokenizer(text, verbose=False)["input_ids"]), tm.max_tokens)
    seconds = n * DECODER_CPU_SECONDS_PER_TOKEN * tm.n_layers / 30
    if seconds <= 1.0:
        return None
    return (
        f"{n} tokens through {tm.n_layers} layers on the CPU: about {seconds:.0f} s for the attention of every "
        "layer and head. The views draw from it without running the model again."
    )


def run_model(tm: TextModel, text: str, pair: str | None) -> TextAttention | None:
    """The cached attention, or None after showing why there is none (and the model's GPU notice)."""
    # Shown while the model runs, so a long prompt never looks like a frozen page; gone after.
    notice = st.empty()
    if (message := long_prompt_message(tm, text)) is not None:
        notice.info(message, icon="⏳")
    try:
        with device_notice(tm):
            return cached_text_attention(tm, text, pair)
    except InputError as exc:
        show_input_error(exc)
    except Exception as exc:  # a bug: keep the page alive, log the details
        show_unexpected(exc, "running the model")
    finally:
        notice.empty()
    return None


def truncation_notice(ta: TextAttention) -> None:
    if ta.truncated:
        if ta.is_pair:
            what = f"{ta.n_cut} tokens were cut from the end of the longer sentence"
        else:
            what = f"the last {ta.n_cut} tokens were cut; the views show the first {ta.n_tokens}"
        st.info(
            f"The input was {ta.n_tokens + ta.n_cut} tokens but the model reads at most {ta.n_tokens}, so {what}.",
            icon="✂️",
        )
