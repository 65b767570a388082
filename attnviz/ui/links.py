"""Shareable links, the Streamlit side: a link opens its page on the state it names, and the
address bar follows the page's state as widgets change.

app.py calls :func:`follow` once per run, after it knows the page and before the page runs:

- on a session's first run, the link's values (:mod:`attnviz.ui.share_links` reads them) become
  the page's widget values in ``st.session_state``. A model is loaded first (layers and heads are
  checked against it); a value that is refused leaves the page's default and is named in one
  notice. Only the first run reads the link: later runs' query strings are what this module
  wrote itself, possibly a step behind the widgets when the browser has not caught up yet;
- on every run, ``st.query_params`` is set from the state (values at their defaults left out),
  and the sidebar's "Share this view" shows the address to copy.

The page's path (``/text``, ``/worked_example``, ...) is the link's page. Every page keeps its
widgets under its own session keys; a link uses the same names on every page (``text``,
``pair``, ``model``, ``layer``, ``head``, ``view``), mapped here to each page's keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import streamlit as st

from attnviz.errors import ModelLoadError
from attnviz.examples import DEFAULT_TEXT
from attnviz.figures.overlay import COLORMAPS
from attnviz.maths.attention_rollout import HEAD_FUSIONS
from attnviz.maths.toy_presets import PRESETS, RANDOM
from attnviz.text.views import BLOCKS
from attnviz.ui import image_page, stats_page, text_page, text_views, worked_page, worked_steps
from attnviz.ui.cache import cached_demo_images, configured_device
from attnviz.ui.fragments import after_partial_rerun
from attnviz.ui.image_families import CAM_DEFAULT, CAM_LAYER
from attnviz.ui.image_maps import IMAGE_MAPS
from attnviz.ui.safe import log_model_error
from attnviz.ui.share_links import Field, encode, parse
from attnviz.ui.state import HEAD, LAYER, PAIR, PAIR_ON, SINGLE_HEAD, TEXT, VIEW
from attnviz.ui.widgets import IMAGE_MODEL_PICKER, TEXT_MODEL_PICKER, ModelPicker

#: Session keys: the link was read (first run only); what did not fit in the address.
_READ, _LEFT_OUT = "_attnviz_link_read", "_attnviz_link_left_out"
#: The page the address belongs to, and the share box's code element (see write_address).
_PATH, _SHARE_SLOT = "_attnviz_link_path", "_attnviz_share_slot"
_NONE = object()  # a bind with no default: always written while its key is set
MODEL = Field("model", "text")


@dataclass(frozen=True)
class Bind:
    """One link key bound to a session key.

    ``default``: the value left out of the link. ``bound``: "layers", "heads" or "demos", the
    size the value is checked against, or "conv layers", the model's Grad-CAM layers. ``when``: written
    only while true of the session state.
    ``also``: more session keys set when the value is applied (the pair switches pair mode on).
    """

    field: Field
    key: str
    default: object = _NONE
    bound: str | None = None
    when: Callable[[Mapping], bool] | None = None
    also: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class PageLink:
    binds: tuple[Bind, ...]
    picker: ModelPicker | None = None
    model_when: Callable[[Mapping], bool] | None = None  # the model is written only while true

    @property
    def fields(self) -> list[Field]:
        return ([MODEL] if self.picker else []) + [b.field for b in self.binds]


def _view_is(*names: str) -> Callable[[Mapping], bool]:
    return lambda state: state.get(VIEW, SINGLE_HEAD) in names


_SENTENCE = (
    Bind(Field("text", "text"), TEXT, default=DEFAULT_TEXT),
    Bind(Field("pair", "text"), PAIR, when=lambda s: bool(s.get(PAIR_ON)), also=((PAIR_ON, True),)),
)
_LINES, _TOKEN, _ROLLOUT = "Head lines", "From one token", "Rollout"

TEXT_LINK = PageLink(
    picker=TEXT_MODEL_PICKER,
    binds=(
        *_SENTENCE,
        Bind(Field("layer", "index"), LAYER, default=0, bound="layers"),
        Bind(Field("head", "index"), HEAD, default=0, bound="heads"),
        Bind(Field("view", "choice", choices=tuple(text_views.TEXT_VIEWS)), VIEW, default=SINGLE_HEAD),
        Bind(Field("units", "choice", choices=("subword tokens", "words")), "units", default="subword tokens"),
        Bind(Field("hide", "flag"), "hide_special", default=False),
        Bind(Field("first", "flag"), "hide_first", default=False),
        Bind(Field("block", "choice", choices=tuple(BLOCKS)), "block", default="All", when=lambda s: s.get(PAIR_ON)),
        Bind(Field("scale", "choice", choices=tuple(text_page.SCALES)), "scale", default="fixed"),
        Bind(Field("query", "index"), text_views.QUERY, when=_view_is(SINGLE_HEAD, _LINES, _TOKEN)),
        Bind(Field("heads", "indices"), text_views.LINE_HEADS, bound="heads", when=_view_is(_LINES)),
        Bind(
            Field("threshold", "number", low=0.01, high=0.5, step=0.01),
            text_views.THRESHOLD,
            default=0.05,
            when=_view_is(_LINES),
        ),
        Bind(Field("focus", "flag"), text_views.FOCUS_QUERY, default=False, when=_view_is(_LINES)),
        Bind(
            Field("fusion", "choice", choices=HEAD_FUSIONS), text_views.FUSION, default="mean", when=_view_is(_ROLLOUT)
        ),
        Bind(
            Field("discard", "number", low=0.0, high=0.95, step=0.05),
            text_views.DISCARD,
            default=0.0,
            when=_view_is(_ROLLOUT),
        ),
        Bind(Field("causal", "flag"), text_views.CAUSAL_NORMALISED, when=_view_is(_ROLLOUT)),
    ),
)


def _real(state: Mapping) -> bool:
    return state.get(worked_page.MODE) == worked_page.REAL_MODE


WORKED_LINK = PageLink(
    picker=TEXT_MODEL_PICKER,
    model_when=_real,
    binds=(
        Bind(Field("mode", "choice", choices=(worked_page.TOY_MODE, worked_page.REAL_MODE)), worked_page.MODE),
        Bind(
            Field("preset", "choice", choices=tuple(PRESETS)),
            worked_page.PRESET,
            when=lambda s: not _real(s),
        ),
        Bind(
            Field("seed", "index"),
            worked_page.SEED,
            when=lambda s: not _real(s) and s.get(worked_page.PRESET) == RANDOM,
        ),
        Bind(Field("text", "text"), worked_page.TEXT, when=_real, also=((worked_page.MODE, worked_page.REAL_MODE),)),
        Bind(Field("layer", "index"), worked_page.LAYER, default=0, bound="layers", when=_real),
        Bind(Field("head", "index"), worked_page.HEAD, default=0, bound="heads", when=_real),
        Bind(Field("all", "flag"), worked_page.SHOW_ALL, default=False, when=_real),
        Bind(Field("numbers", "flag"), worked_page.EVERY_NUMBER, default=False, when=_real),
        Bind(Field("query", "index"), worked_steps.QUERY, also=((worked_steps.LINKED_CELL, True),)),
        Bind(Field("key", "index"), worked_steps.KEY, also=((worked_steps.LINKED_CELL, True),)),
    ),
)

STATS_LINK = PageLink(
    picker=TEXT_MODEL_PICKER,
    binds=(
        *_SENTENCE,
        Bind(Field("view", "choice", choices=tuple(stats_page.SECTIONS)), stats_page.SECTION, default=stats_page.HEADS),
        Bind(
            Field("source", "choice", choices=tuple(stats_page.SOURCES)), stats_page.SOURCE, default=stats_page.SENTENCE
        ),
        Bind(Field("stat", "word"), stats_page.STAT),
    ),
)

NEXT_TOKENS_LINK = PageLink(picker=TEXT_MODEL_PICKER, binds=(_SENTENCE[0],))


def _demo(state: Mapping) -> bool:
    return state.get(image_page.SOURCE, image_page.SOURCES[0]) == image_page.SOURCES[0]


def _cam_chosen(state: Mapping) -> bool:
    """A Grad-CAM layer other than the model's default is chosen (the default stays out of the link)."""
    return state.get(CAM_LAYER) != state.get(CAM_DEFAULT)


IMAGE_LINK = PageLink(
    picker=IMAGE_MODEL_PICKER,
    binds=(
        Bind(Field("source", "choice", choices=image_page.SOURCES), image_page.SOURCE, default=image_page.SOURCES[0]),
        Bind(Field("image", "index"), image_page.DEMO, default=0, bound="demos", when=_demo),
        Bind(Field("view", "choice", choices=tuple(IMAGE_MAPS)), image_page.MAP, default=next(iter(IMAGE_MAPS))),
        Bind(Field("layer", "index"), image_page.LAYER, bound="layers"),
        Bind(Field("head", "index", words=(image_page.MEAN_OF_HEADS,)), image_page.HEAD, bound="heads"),
        Bind(Field("fusion", "choice", choices=HEAD_FUSIONS), image_page.FUSION, default="mean"),
        Bind(Field("discard", "number", low=0.0, high=0.95, step=0.05), image_page.DISCARD, default=0.0),
        Bind(Field("opacity", "number", low=0.0, high=1.0, step=0.05), image_page.OPACITY, default=0.55),
        Bind(Field("colours", "choice", choices=tuple(COLORMAPS)), image_page.COLORMAP, default=next(iter(COLORMAPS))),
        Bind(Field("from_min", "flag"), image_page.FROM_MIN, default=False),
        Bind(Field("cam", "word"), CAM_LAYER, bound="conv layers", when=_cam_chosen),
    ),
)

#: Each page's link, by the page's URL path.
PAGES: dict[str, PageLink] = {
    "text": TEXT_LINK,
    "worked_example": WORKED_LINK,
    "head_stats": STATS_LINK,
    "next_tokens": NEXT_TOKENS_LINK,
    "image": IMAGE_LINK,
}


# ---------------------------------------------------------------- reading a link


def _use_model(picker: ModelPicker, name: str | None, problems: list[str]):
    """Make ``name`` the picker's model if it loads (else say why and keep the current one);
    returns the model in use, or None when even that does not load."""
    if name is not None and name != picker.name():
        try:
            picker.check(name)
            if picker.prepare is not None:
                picker.prepare(name)
            picker.load(name, configured_device())
            st.session_state[picker.current] = name
            st.session_state.pop(picker.error, None)
        except ModelLoadError as exc:
            log_model_error(name, exc)
            problems.append(f"`model`: that model cannot be opened here, so the page shows {picker.name()}")
    try:
        current = picker.name()
        picker.check(current)
        if picker.prepare is not None:
            picker.prepare(current)
        return picker.load(current, configured_device())
    except ModelLoadError:
        return None  # the page's own picker says why


def _size(bound: str, model) -> int | None:
    if bound == "demos":
        return len(cached_demo_images())
    if model is None:
        return None
    return model.n_layers if bound == "layers" else model.n_heads


def _checked(bind: Bind, value, model, problems: list[str]):
    """``value`` if it fits the model (or the demo images); else None, and the reason in ``problems``."""
    if bind.bound is None:
        return value
    if bind.bound == "conv layers":
        layers = model.family.conv_layers if model is not None and model.has_conv else ()
        if value not in layers:
            problems.append(f"`{bind.field.name}`: this model has no convolution layer {value} for Grad-CAM")
            return None
        return value
    size = _size(bind.bound, model)
    what = {"layers": "layer", "heads": "head", "demos": "demo image"}[bind.bound]
    name = bind.field.name
    if size is None:
        problems.append(f"`{name}`: no model to check it against")
        return None
    if isinstance(value, list):
        kept = [v for v in value if v < size]
        if len(kept) < len(value):
            problems.append(f"`{name}`: only heads 0 to {size - 1} exist")
        return kept or None
    if isinstance(value, int) and value >= size:
        problems.append(f"`{name}`: {what} {value} does not exist (0 to {size - 1})")
        return None
    return value


def open_link(link: PageLink, params: Mapping) -> list[str]:
    """Set the page's session state from ``params``; returns the sentences saying what was refused."""
    values, problems = parse(params, link.fields)
    model = None
    if link.picker is not None:
        name = values.pop("model", None)
        if name is not None and not name.strip():
            name = None
        needs_model = name is not None or any(
            b.bound in ("layers", "heads", "conv layers") and b.field.name in values for b in link.binds
        )
        if needs_model:
            model = _use_model(link.picker, name, problems)
    for bind in link.binds:
        if bind.field.name not in values:
            continue
        value = _checked(bind, values[bind.field.name], model, problems)
        if value is None:
            continue
        st.session_state[bind.key] = value
        for key, extra in bind.also:
            st.session_state[key] = extra
    return problems


def notice(problems: list[str]) -> None:
    if problems:
        st.warning(
            "Parts of this link could not be used, so the page shows its defaults for them: "
            + "; ".join(problems)
            + ".",
            icon=":material/link_off:",
        )


# ---------------------------------------------------------------- writing the address


def link_values(link: PageLink, state: Mapping) -> dict:
    """What the page shows now, as link values (defaults left out)."""
    values = {}
    if link.picker is not None and (link.model_when is None or link.model_when(state)):
        name = state.get(link.picker.current, link.picker.bundled)
        if name != link.picker.bundled:
            values["model"] = name
    for bind in link.binds:
        if bind.key not in state or (bind.when is not None and not bind.when(state)):
            continue
        value = state[bind.key]
        if value is None or (bind.default is not _NONE and value == bind.default):
            continue
        values[bind.field.name] = value
    return values


def page_params(link: PageLink | None, state: Mapping) -> tuple[dict[str, str], list[str]]:
    """The query parameters for the page's state, and the keys that did not fit."""
    if link is None:
        return {}, []
    return encode(link_values(link, state), link.fields)


def follow(url_path: str) -> None:
    """Read the link on a session's first run; on every run, put the page's state in the address."""
    st.session_state[_PATH] = url_path  # for a view's partial rerun (write_address)
    link = PAGES.get(url_path)
    if not st.session_state.get(_READ):
        st.session_state[_READ] = True
        if link is not None and len(st.query_params):
            notice(open_link(link, st.query_params.to_dict()))
    params, left_out = page_params(link, st.session_state)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    if link is not None:
        share_box(params, left_out)


def share_box(params: dict[str, str], left_out: list[str]) -> None:
    """The sidebar's "Share this view": the address to copy (the code box has a copy button)."""
    base = st.context.url or ""
    url = base + ("?" + urlencode(params, quote_via=quote) if params else "")
    with st.sidebar.expander("Share this view", icon=":material/link:"):
        st.session_state[_SHARE_SLOT] = slot = st.empty()  # rewritten by a view's partial rerun
        slot.code(url or "?" + urlencode(params, quote_via=quote), language=None, wrap_lines=True)
        st.caption(
            "This address reopens this page with the same text, model, layer, head, view and options "
            "(copy it with the button in the box's corner). An uploaded image or corpus is not in it."
            + (f" Left out, too long for an address: {', '.join(left_out)}." if left_out else "")
        )


def write_address() -> None:
    """After a view's partial rerun (attnviz.ui.fragments): the address and the share box follow its widgets.

    The page's script did not run, so :func:`follow` did not; the page is the one it last saw.
    """
    link = PAGES.get(st.session_state.get(_PATH, ""))
    if link is None:
        return
    params, _ = page_params(link, st.session_state)
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    slot = st.session_state.get(_SHARE_SLOT)
    if slot is not None:
        url = (st.context.url or "") + ("?" + urlencode(params, quote_via=quote) if params else "")
        slot.code(url or "?" + urlencode(params, quote_via=quote), language=None, wrap_lines=True)


after_partial_rerun("address", write_address)
