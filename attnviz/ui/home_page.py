"""Facts the home page shows: device and models, never waiting for what loads in the background.

Imports nothing heavy at module level: on the first visit after a server start the home page
draws while the warm start (:mod:`attnviz.ui.warm_start`) is still importing PyTorch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from attnviz.errors import ModelLoadError
from attnviz.ui import warm_start
from attnviz.ui.safe import log, log_model_error, md_escape, message_markdown

if TYPE_CHECKING:
    import pandas as pd

#: A bundled model's status while the warm start has not loaded it yet.
LOADING = "loading in the background"
#: Seconds between two looks at the warm start while the home page follows it (the worked example's
#: light run follows the imports at the same pace).
REFRESH_S = warm_start.REFRESH_S


def home_facts() -> None:
    """The sections "Where it runs" and "Models". While the warm start imports the app's modules they are a line
    that says so, redrawn every ``REFRESH_S`` seconds (a fragment); once the imports are done the
    page reruns and draws them."""
    if warm_start.importing():
        st.fragment(_while_importing, run_every=REFRESH_S)()
    else:
        st.subheader("Where it runs")
        st.markdown(runtime_summary())
        st.subheader("Models")
        models_table()


def _while_importing() -> None:
    ws = warm_start.current()
    if ws is None or not warm_start.importing():
        st.rerun()  # a full run draws the facts, without this timer
    st.subheader("Where it runs")
    st.caption(ws.summary() or "")


def runtime_summary() -> str:
    import torch

    from attnviz.device import DEVICE_ENV, device_label
    from attnviz.ui.cache import configured_device

    device = torch.device(configured_device())
    return (
        f"Models run on the **{md_escape(device_label(device))}** (`{device}`), chosen as CUDA, then Apple MPS, "
        f"then CPU; set `{DEVICE_ENV}` to override. PyTorch {md_escape(torch.__version__)}."
    )


def models_table() -> None:
    """The table of :func:`loaded_models`, which never waits for a bundled model that is loading in
    the background: while one is, the table is redrawn every ``REFRESH_S`` seconds on its own (a
    fragment), and once all are loaded the page reruns once, which stops the timer."""
    ws = warm_start.current()
    if ws is not None and not ws.finished():
        st.fragment(_refreshed_table, run_every=REFRESH_S)()
    else:
        _table()


def _refreshed_table() -> None:
    ws = warm_start.current()
    if ws is None or ws.finished():
        st.rerun()  # a full run draws the table without the timer
    _table()


def _table() -> None:
    ws = warm_start.current()
    line = ws.summary() if ws is not None else None
    if line:
        st.caption(line)
    st.dataframe(loaded_models(), hide_index=True, width="stretch")


def loaded_models() -> pd.DataFrame:
    """The text and image models this session uses, so that the table tells the truth.

    A bundled model that the warm start loads is never waited for: its row says it is loading in the
    background until it is ready. Any other model (one the visitor picked, or every model when warm
    starts are off) is loaded now if needed. A model that cannot be loaded never stops the page: its
    row says "unavailable" and why, a warning above the table names it, and the server log gets the
    details.
    """
    import pandas as pd

    from attnviz.text.loading import BUNDLED_TEXT_MODELS
    from attnviz.ui.cache import text_model
    from attnviz.ui.widgets import current_text_model_name

    name = current_text_model_name()
    row = {"kind": "text", "model": name, "bundled": name in BUNDLED_TEXT_MODELS}
    tm, problem = _load("text", name, text_model)
    if tm is None:
        rows = [{**row, "layers": None, "heads": None, "max tokens": None, "status": _why(problem)}]
    else:
        rows = [{**row, "layers": tm.n_layers, "heads": tm.n_heads, "max tokens": tm.max_tokens, "status": _status(tm)}]
    rows.append(_image_row())
    return pd.DataFrame(rows)


def _why(problem: str | None) -> str:
    return LOADING if problem is None else f"unavailable: {problem}"


def _load(kind: str, name: str, loader):
    """(model, None); (None, None) while the warm start is loading it; or (None, why) with a warning
    on the page and a record in the log. A model the warm start could not load is asked for again
    here (a failure is not cached), so that the row says why now."""
    from attnviz.ui.cache import configured_device

    ws = warm_start.current()
    progress = ws.progress(kind, name) if ws is not None and ws.device == configured_device() else None
    if progress is not None and progress.state in ("waiting", "loading"):
        return None, None
    try:
        return loader(name, configured_device()), None
    except ModelLoadError as exc:
        log_model_error(name, exc)
        why = str(exc)
    except Exception as exc:  # a bug: the home page must still render
        log.exception("unexpected error while loading the %s model %r for the home page", kind, name)
        why = f"unexpected {type(exc).__name__}; the details are in the server log"
    st.warning(message_markdown(f"The {kind} model {name!r} is unavailable: {why}"), icon=":material/back_hand:")
    return None, why


def _image_row() -> dict:
    from attnviz.image.loading import BUNDLED_IMAGE_MODEL
    from attnviz.ui.cache import image_model
    from attnviz.ui.widgets import current_image_model_name

    name = current_image_model_name()
    row = {"kind": "image", "model": name, "bundled": name == BUNDLED_IMAGE_MODEL, "max tokens": None}
    im, problem = _load("image", name, image_model)
    if im is None:
        return {**row, "layers": None, "heads": None, "status": _why(problem)}
    return {
        **row,
        "layers": im.n_layers,
        "heads": im.n_heads,
        "max tokens": _image_tokens(im),
        "status": f"{_status(im)} ({_image_grid(im)})",
    }


def _image_grid(im) -> str:
    """What the model's grid is: attention cells with their special tokens, a Swin's patches with its
    windows, or, for a model without attention maps (a CNN), its last convolution's output."""
    rows, cols = im.grid
    if im.has_window_attention:
        return f"{rows}x{cols} patches, attention within {im.window_size}x{im.window_size} windows"
    if not im.has_attention:
        what = "output of the last convolution" if im.has_conv else "cells"
        return f"{rows}x{cols} {what}, no attention maps"
    specials = im.special_tokens
    if not specials:
        return f"{rows}x{cols} grid"
    names = {1: "class token", 2: "class and distillation tokens"}
    return f"{rows}x{cols} grid + {names.get(len(specials), f'{len(specials)} special tokens')}"


def _image_tokens(im) -> int | None:
    """Tokens the attention runs over (a Swin's: one window's), or None for a model without attention maps."""
    if im.has_window_attention:
        return im.window_size**2
    if not im.has_attention:
        return None
    return len(im.special_tokens) + im.grid[0] * im.grid[1]


def _status(model) -> str:
    """Where a loaded model runs now; after a GPU out-of-memory it is the CPU, and its notice shows."""
    from attnviz.ui.notices import show_notice

    show_notice(model)
    return f"loaded, runs on {model.device}"
