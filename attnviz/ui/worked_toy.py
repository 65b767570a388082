"""The worked example's toy mode, and its mode picker: what the page draws without PyTorch.

Nothing here imports torch or transformers (a test holds it to that): after a server start the warm
start imports this module right after Plotly (:data:`attnviz.ui.warm_start.LIGHT_MODULES`), so that a
first visit to the worked example in toy mode, its default, draws its charts while PyTorch is still
being imported for the rest of the app (:func:`attnviz.ui.warm_start.light_run`). Real mode and the
page's other parts are in :mod:`attnviz.ui.worked_page`.

Toy tables are ``st.data_editor`` widgets. An edit reruns the view once, with the editors unchanged
(same key, same data: the browser keeps its grids); the edited tables are also kept in a plain
session-state entry (:data:`TOY`), and folded into the editors' data under new keys when the page is
opened again, so the edited numbers survive visits to other pages (an editor's own state goes with
the visit and cannot be written back, so it cannot be kept like other widgets).
"""

from __future__ import annotations

import streamlit as st

from attnviz.errors import InputError
from attnviz.maths.toy_presets import (
    MAX_DIM,
    MAX_TOKENS,
    MIN_DIM,
    MIN_TOKENS,
    PRESETS,
    RANDOM,
    from_tables,
    preset,
    to_tables,
    toy_steps,
)
from attnviz.ui import fragments
from attnviz.ui.safe import md_escape, show_input_error, show_unexpected
from attnviz.ui.text_boxes import guard_text_boxes
from attnviz.ui.worked_steps import Shown, clamp, render

TOY_MODE, REAL_MODE = "Toy numbers", "Real model"
MODE, PRESET, SEED, N_TOKENS, DIM, HEADS, TOY_HEAD = (
    "worked_mode",
    "worked_preset",
    "worked_seed",
    "worked_n_tokens",
    "worked_dim",
    "worked_heads",
    "worked_toy_head",
)
#: Not a widget: the toy tables, the version that keys their editors, and the tables as edited since.
TOY = "worked_toy"
#: The toy mode's widgets: their values survive visits to other pages (app.py keeps them, with
#: real mode's, through :data:`attnviz.ui.worked_page.KEPT`).
TOY_KEPT = (MODE, PRESET, SEED, N_TOKENS, DIM, HEADS, TOY_HEAD)


def in_toy_mode() -> bool:
    """This visitor's page is in toy mode (its default) as far as the session knows before the picker runs."""
    return st.session_state.get(MODE, TOY_MODE) == TOY_MODE


def mode_picker() -> str:
    """Toy or real numbers. Toy mode has no model picker, so the text-box guard is installed here."""
    with st.sidebar:  # the toy tables' token cells are text boxes too; the sidebar has room for its element
        guard_text_boxes()
    return st.radio(
        "Numbers",
        [TOY_MODE, REAL_MODE],
        key=MODE,
        horizontal=True,
        help="Toy: a few tokens with small vectors you can edit. Real model: the loaded model's own weights "
        "for your sentence.",
    )


# ---------------------------------------------------------------- toy inputs


def _preset_options() -> dict:
    return {
        "seed": int(st.session_state.get(SEED, 0)),
        "n_tokens": int(st.session_state.get(N_TOKENS, 4)),
        "d_model": int(st.session_state.get(DIM, 4)),
    }


def _load_preset() -> None:
    """Preset (or its seed/size) changed: new tables, and new editor keys so old edits do not apply."""
    try:
        inputs = preset(st.session_state.get(PRESET, next(iter(PRESETS))), **_preset_options())
    except InputError as exc:
        st.session_state["worked_preset_error"] = str(exc)
        return
    version = st.session_state.get(TOY, {}).get("version", 0) + 1
    st.session_state[TOY] = {"version": version, "tables": to_tables(inputs)}


def _editor_key(name: str, version: int) -> str:
    return f"worked_edit_{name}_{version}"


def _editor(name: str, version: int, tables: dict, **options):
    """One editable table; also says whether the user has edited it since it was keyed."""
    key = _editor_key(name, version)
    edited = st.data_editor(tables[name], key=key, **options)
    state = st.session_state.get(key) or {}
    changed = any(state.get(part) for part in ("edited_rows", "added_rows", "deleted_rows"))
    return edited, changed


def toy_inputs() -> Shown | None:
    """Preset, heads and the editable tables; returns the toy steps, or None after saying what to fix."""
    st.session_state.setdefault(PRESET, next(iter(PRESETS)))
    if TOY not in st.session_state:
        _load_preset()
    c1, c2, c3, c4, c5 = st.columns([3, 1, 1, 1, 2])
    name = c1.selectbox("Preset", list(PRESETS), key=PRESET, on_change=_load_preset)
    if name == RANDOM:
        for key, default in ((SEED, 0), (N_TOKENS, 4), (DIM, 4)):
            st.session_state.setdefault(key, default)
        c2.number_input("Seed N", 0, 9999, key=SEED, on_change=_load_preset)
        c3.number_input("Tokens", MIN_TOKENS, MAX_TOKENS, key=N_TOKENS, on_change=_load_preset)
        c4.number_input("Vector size", MIN_DIM, MAX_DIM, key=DIM, on_change=_load_preset)
    n_heads = c5.radio(
        "Heads", [1, 2], key=HEADS, horizontal=True, help="Two heads split the columns of W_Q, W_K, W_V in half."
    )
    if error := st.session_state.pop("worked_preset_error", None):
        st.warning(md_escape(error), icon=":material/back_hand:")

    state = st.session_state[TOY]
    version, tables = state["version"], state["tables"]
    if state.get("edited") is not None and _editor_key("X", version) not in st.session_state:
        # Back from another page: the editors' own state went with the visit, their edits did not.
        version, tables = version + 1, state["edited"]
        state = st.session_state[TOY] = {"version": version, "tables": tables}
    st.markdown(
        "**Inputs** — edit any cell (numbers only). Each row of X is a token; tick *padding* to mask it. "
        "Add or delete rows to change the number of tokens (2 to 6)."
    )
    x, changed = _editor("X", version, tables, num_rows="dynamic", hide_index=True, width="stretch")
    edited = {"X": x}
    for col, name in zip(st.columns(3), ("W_Q", "W_K", "W_V"), strict=True):
        with col:
            st.caption(f"{name} (rows: input dimensions; columns: outputs)")
            edited[name], c = _editor(name, version, tables, num_rows="fixed")
            changed |= c
    with st.expander("Biases b_Q, b_K, b_V and the output projection W_O"):
        b1, b2 = st.columns(2)
        with b1:
            edited["biases"], c = _editor("biases", version, tables, num_rows="fixed")
            changed |= c
        with b2:
            edited["W_O"], c = _editor("W_O", version, tables, num_rows="fixed")
            changed |= c
    # The editors keep their keys and their data while the user edits (no rerun, no editor drawn
    # anew); the edited tables are kept beside them, to be folded in after a visit elsewhere.
    state["edited"] = edited if changed else None

    try:
        inputs = from_tables(edited if changed else tables)
        steps = toy_steps(inputs, n_heads)
    except InputError as exc:
        show_input_error(exc)
        return None
    except Exception as exc:  # a bug: a short message here, the traceback in the server log
        show_unexpected(exc, "computing the toy example")
        return None
    h = 0
    if n_heads > 1:
        clamp(TOY_HEAD, n_heads)
        h = st.radio("Follow the steps of head", range(n_heads), key=TOY_HEAD, horizontal=True)
    return Shown(head=steps.head(h), tokens=inputs.tokens, head_index=h, toy=steps)


@fragments.view("worked_toy")
def toy_view() -> None:
    """Toy mode below the mode picker: its inputs and steps rerun together, without the page."""
    shown = toy_inputs()
    if shown is not None:
        render(shown)  # a toy head is drawn as an encoder's: seven steps
