"""The image page's model-family parts: which maps the "Map" choice offers, the Grad-CAM layer
picker, the note saying which maps a model supports and why the others are absent, and the
Grad-CAM map of the main overlay. The family itself is the library's
(:mod:`attnviz.image.model_families`, ``ImageModel.family`` and ``ImageAttention.family``).
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from attnviz.errors import InputError
from attnviz.image.extraction import ImageAttention
from attnviz.image.loading import ImageModel
from attnviz.image.model_families import ModelFamily
from attnviz.ui.cache import ImageRun, Picked, cached_gradcam
from attnviz.ui.image_maps import GRADCAM, IMAGE_MAPS, MapChoice
from attnviz.ui.safe import md_escape, show_input_error, show_unexpected

#: Session key of the Grad-CAM layer picker.
CAM_LAYER = "image_cam_layer"
#: Not a widget: the model's default Grad-CAM layer, so that a link writes the layer only when another is chosen.
CAM_DEFAULT = "image_cam_default"


def offered_maps(ia: ImageAttention) -> list[str]:
    """The names of :data:`IMAGE_MAPS` this result's model supports, in the table's order: every map that
    reads attention when the model's attention can be drawn (a new entry of the table too) and its family
    does not say it is absent (a Swin has a clicked patch's map only), and the others (Grad-CAM) when its
    family supports them."""
    family = ia.family
    attention = family.has_attention or family.has_window_attention if family is not None else ia.has_attention
    supported = family.supported_maps if family is not None else ()
    absent = dict(family.absent_maps) if family is not None else {}
    return [
        name
        for name, entry in IMAGE_MAPS.items()
        if (entry.needs_attention and attention and name not in absent)
        or (not entry.needs_attention and name in supported)
    ]


def layer_picker(family: ModelFamily | None, container=st, **callback) -> str | None:
    """The Grad-CAM layer selectbox (the model's convolution layers in forward order; by default the last
    one of the main path, not a residual shortcut's projection); None, drawing nothing, when the model
    offers no Grad-CAM. ``callback``: the selectbox's ``on_change`` and ``args``."""
    if family is None or not family.has_gradcam:
        return None
    layers = list(family.conv_layers)
    st.session_state[CAM_DEFAULT] = family.default_layer
    if st.session_state.get(CAM_LAYER) not in layers:
        st.session_state[CAM_LAYER] = family.default_layer
    grids = dict(zip(family.conv_layers, family.conv_grids, strict=True))
    return container.selectbox(
        "Grad-CAM layer",
        layers,
        key=CAM_LAYER,
        format_func=lambda name: f"{name} ({grids[name][0]} x {grids[name][1]})",
        help="The convolution layer Grad-CAM explains, in the order the model runs them, with its output grid. "
        "The last one of the main path (the default; a residual shortcut's projection is not it) is the usual "
        "choice; earlier layers are finer and less specific to the class.",
        **callback,
    )


def chosen_layer(model: ImageModel) -> str | None:
    """The Grad-CAM layer this visitor chose for ``model`` (the last one until chosen); None without Grad-CAM."""
    if not model.has_conv:
        return None
    layer = st.session_state.get(CAM_LAYER)
    return layer if layer in model.family.conv_layers else model.family.default_layer


def family_note(model: ImageModel) -> None:
    """The note: "This … model supports …; … is absent because …" (nothing for a model without a family)."""
    if model.family is not None and model.family.absent_maps:
        st.caption(md_escape(model.family.note()))


def with_gradcam(model: ImageModel, result: ImageRun, picked: Picked, target: str, choice: MapChoice) -> MapChoice:
    """``choice`` with its Grad-CAM map filled in when the "Grad-CAM" map is chosen (else unchanged)."""
    if choice.kind != GRADCAM.name or not model.has_conv:
        return choice
    try:
        cam = cached_gradcam(model, picked, target, result, chosen_layer(model))
    except InputError as exc:
        show_input_error(exc)
        st.stop()
    except Exception as exc:  # a bug: a short message here, the traceback in the server log
        show_unexpected(exc, "computing Grad-CAM")
        st.stop()
    return dataclasses.replace(choice, cam=cam.layer_map, cam_layer=cam.layer)
