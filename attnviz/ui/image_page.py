"""The image-attention page's widgets and model runs; attnviz.ui.image_drawing draws the results
(the page file only calls these in order).

Nothing here reruns the model when a display choice changes: the forward pass is cached per
image, gradient maps per (image, class); opacity, colour map, layer, head and the clicked
patch only pick among cached arrays.

Partial reruns: the maps are three views, each an ``st.fragment`` (attnviz.ui.image_drawing): the
overlay with the map controls, the row of every head, and attention beside the gradient maps. A
map control's callback reruns only the views its value changes (:data:`RERUNS`): a head change
redraws the overlay alone, a clicked patch the overlay and the heads, the colour map all three.
The image, its window, the class to explain and the model rerun the page.
"""

from __future__ import annotations

import streamlit as st

from attnviz.errors import InputError
from attnviz.figures.overlay import COLORMAPS
from attnviz.image.attribution import PixelMap
from attnviz.image.decoding import EXTENSIONS, FORMAT_HINT, MAX_BYTES
from attnviz.image.extraction import ImageAttention
from attnviz.image.loading import ImageModel
from attnviz.maths.attention_rollout import HEAD_FUSIONS
from attnviz.ui import image_window
from attnviz.ui.cache import (
    ImageRun,
    Picked,
    cached_demo_images,
    cached_gradient_maps,
    cached_image_run,
    digest,
)
from attnviz.ui.image_families import CAM_LAYER, chosen_layer, layer_picker, offered_maps
from attnviz.ui.image_maps import IMAGE_MAPS, MapChoice
from attnviz.ui.notices import device_notice
from attnviz.ui.safe import show_input_error, show_unexpected
from attnviz.ui.state import keep_default
from attnviz.ui.widgets import IMAGE_MODEL_PICKER

SOURCE, DEMO, UPLOAD, UPLOAD_DIGEST = "image_source", "image_demo", "image_upload", "image_upload_digest"
TARGET, TARGET_FOR = "image_target", "image_target_for"
MAP, LAYER, HEAD, FUSION, DISCARD = "image_map", "image_layer", "image_head", "image_fusion", "image_discard"
OPACITY, COLORMAP, PATCH, OVERLAY_CHART = "image_opacity", "image_colormap", "image_patch", "image_overlay"
FROM_MIN = "image_scale_from_min"
#: Integrated Gradients' steps: the library's 128 first, more on the "More steps" button (part of the cache key).
IG_STEPS, IG_STEP_CHOICES = "image_ig_steps", (128, 256, 512, 1024)
MODEL, MODEL_INPUT = IMAGE_MODEL_PICKER.current, IMAGE_MODEL_PICKER.typed
KEPT = (
    SOURCE,
    DEMO,
    TARGET,
    TARGET_FOR,
    MAP,
    LAYER,
    HEAD,
    FUSION,
    DISCARD,
    OPACITY,
    COLORMAP,
    FROM_MIN,
    PATCH,
    MODEL_INPUT,
)

SOURCES = ("Demo image", "Upload")
MEAN_OF_HEADS = "mean"

#: The page's three views (fragment keys, attnviz.ui.image_drawing): the overlay with the map
#: controls, "All heads of layer", and attention beside the gradient maps.
OVERLAY_VIEW, HEADS_VIEW, COMPARE_VIEW = "image_overlay_view", "image_heads_view", "image_compare_view"
#: The views each map control (and a click on a patch) changes; only those rerun and are sent again.
#: The heads row draws the class token's (or the clicked patch's) maps of every head of the layer, so
#: the head, the rollout's options and the Grad-CAM layer leave it as it is; the comparison reads
#: the rollout, the gradient maps and the colours, not the map, layer, head or patch.
RERUNS = {
    MAP: (OVERLAY_VIEW, HEADS_VIEW),
    LAYER: (OVERLAY_VIEW, HEADS_VIEW),
    HEAD: (OVERLAY_VIEW,),
    PATCH: (OVERLAY_VIEW, HEADS_VIEW),
    FROM_MIN: (OVERLAY_VIEW,),
    OPACITY: (OVERLAY_VIEW, HEADS_VIEW, COMPARE_VIEW),
    COLORMAP: (OVERLAY_VIEW, HEADS_VIEW, COMPARE_VIEW),
    FUSION: (OVERLAY_VIEW, COMPARE_VIEW),
    DISCARD: (OVERLAY_VIEW, COMPARE_VIEW),
    CAM_LAYER: (OVERLAY_VIEW, COMPARE_VIEW),
}


def rerun_views(key: str) -> None:
    """A map control's callback: rerun the views that its value (``key``) changes, and nothing else."""
    st.rerun(list(RERUNS[key]))


def _upload_key(upload) -> str:
    """The upload's SHA-256, computed once per uploaded file rather than on every rerun
    (a 20 MB file takes ~30 ms to hash, and every slider move reruns the page)."""
    file_id, key = st.session_state.get(UPLOAD_DIGEST, (None, None))
    if file_id != upload.file_id:
        file_id, key = upload.file_id, digest(upload.getvalue())
        st.session_state[UPLOAD_DIGEST] = (file_id, key)
    return key


def load_model() -> ImageModel | None:
    """Sidebar model picker; returns the loaded image model, or None with a message."""
    model = IMAGE_MODEL_PICKER.draw()
    if model is None:
        st.info("The text and worked-example pages do not need the image model and keep working.")
    return model


def upload_cap_mb() -> int:
    """The largest image upload, in MB: the server's own cap (``server.maxUploadSize``) or open_image's
    ``MAX_BYTES``, whichever is smaller. Stated on the uploader, it lets Streamlit refuse a larger file
    in the browser with a clear message, where the server would answer a bare "AxiosError 413"."""
    return max(1, min(int(st.get_option("server.maxUploadSize")), MAX_BYTES // 2**20))


def pick_image() -> Picked | None:
    """Demo picker or uploader; None (with a message) when there is nothing usable."""
    source = st.radio("Image", SOURCES, key=SOURCE, horizontal=True, label_visibility="collapsed")
    if source == "Demo image":
        demos = cached_demo_images()
        labels = [f"{d.name.removeprefix('demo-')} (generated)" for d in demos]
        i = st.selectbox(
            "Demo image",
            range(len(demos)),
            format_func=labels.__getitem__,
            key=DEMO,
            help="Images from the same generator the model was trained on (a seed it never saw). "
            "The shape's mask is known, so the page can score each map.",
        )
        return demos[i]
    cap = upload_cap_mb()
    upload = st.file_uploader(
        f"Upload an image ({FORMAT_HINT})",
        type=list(EXTENSIONS),
        key=UPLOAD,
        max_upload_size=cap,
        help=f"Up to {cap} MB. Large photos are fine: they are shrunk before the model sees them (the model's "
        "input is 64 x 64). A DICOM or a 16-bit grey PNG/TIFF gets a window slider.",
    )
    if upload is None:
        st.info("Upload an image, or switch to a demo image.")
        return None
    windowed = image_window.windowed_upload(upload.getvalue(), _upload_key(upload))  # a scan: its window
    return None if windowed is None else Picked(*windowed, upload.name, None)


def run(model: ImageModel, picked: Picked) -> ImageRun | None:
    """The cached forward pass of the picked image, or None after showing why (and the model's GPU notice)."""
    try:
        with device_notice(model):
            return cached_image_run(model, picked)
    except InputError as exc:
        show_input_error(exc)
        st.caption(f"Formats that work: {FORMAT_HINT}. Your earlier choices are kept.")
        return None
    except Exception as exc:  # a bug: a short message here, the traceback in the server log
        show_unexpected(exc, "running the image model")
        return None


def choose_target(ia: ImageAttention, picked: Picked) -> str:
    """The class to explain: the best prediction unless the user picks another (reset per image)."""
    classes = [label for label, _ in ia.predictions]
    image_id = picked.key
    if st.session_state.get(TARGET_FOR) != image_id or st.session_state.get(TARGET) not in classes:
        st.session_state[TARGET] = classes[0]
        st.session_state[TARGET_FOR] = image_id
    probs = dict(ia.predictions)
    return st.selectbox(
        "Class to explain",
        classes,
        key=TARGET,
        format_func=lambda c: f"{c} ({probs[c]:.1%})",
        help="Grad-CAM and Integrated Gradients explain this class. Attention does not depend on it.",
    )


def _clamp(key: str, options: list) -> None:
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]


def _changes(key: str) -> dict:
    """A widget's ``key`` and the callback that reruns the views its value changes."""
    return {"key": key, "on_change": rerun_views, "args": (key,)}


def map_controls(ia: ImageAttention) -> MapChoice:
    """The map controls (drawn in the overlay's view); returns what they chose (:func:`current_choice`)."""
    c1, c2, c3, c4 = st.columns([5, 2, 3, 3])
    offered = offered_maps(ia)  # only the maps this model supports (attnviz.image.model_families)
    kind = ""  # no map to draw over the image (a Swin whose window attention was not returned): the note says why
    if offered:
        _clamp(MAP, offered)
        kind = c1.radio(
            "Map",
            offered,
            horizontal=True,
            help="Class token: where the class token (the model's summary, read by the classifier) looks in one "
            "layer. Rollout: attention composed through every layer (Abnar & Zuidema). From a clicked patch: "
            "click a cell of the image. Grad-CAM: the chosen convolution layer's channels, weighted by the "
            "class's gradient (Selvaraju et al.).",
            **_changes(MAP),
        )
    every_head = kind in IMAGE_MAPS and IMAGE_MAPS[kind].every_head
    if ia.map_layers:  # a CNN's result has no attention layers and heads to pick
        layers = list(range(ia.map_layers))  # a Swin's blocks, over all its stages
        _clamp(LAYER, layers[::-1])  # default: the last layer, the one the classifier reads
        layer = c2.selectbox(
            "Layer",
            layers,
            disabled=every_head,
            help=SWIN_LAYER_HELP if ia.windows else None,
            **_changes(LAYER),
        )
        heads = [MEAN_OF_HEADS, *range(ia.heads_in(layer))]  # a Swin's stages have more heads as they go
        _clamp(HEAD, heads)
        c3.selectbox("Head", heads, disabled=every_head, **_changes(HEAD))
    # Below the row: a layer's name is long (resnet.encoder.stages.2...)
    cam_layer = layer_picker(ia.family, on_change=rerun_views, args=(CAM_LAYER,))
    keep_default(OPACITY, 0.55)
    c4.slider("Opacity", 0.0, 1.0, step=0.05, **_changes(OPACITY))
    c1.toggle(  # in view, not in the options panel: a nearly uniform map's note points here
        "Colours from min",
        help="Off: colours run from 0 to the largest value. On: from the smallest, which shows small "
        "differences in nearly uniform maps (e.g. where a patch attends in a late layer).",
        **_changes(FROM_MIN),
    )
    rollout_options = ia.has_attention  # a CNN or Swin has no rollout to tune (the family note says why)
    with st.expander("Rollout and colour options" if rollout_options else "Colour options", expanded=every_head):
        d1, d2, d3 = st.columns(3)
        if rollout_options:
            d1.selectbox(
                "Head fusion", HEAD_FUSIONS, help="How each layer's heads become one matrix.", **_changes(FUSION)
            )
            keep_default(DISCARD, 0.0)
            d2.slider(
                "Discard lowest",
                0.0,
                0.95,
                step=0.05,
                help="Share of each layer's weakest weights dropped.",
                **_changes(DISCARD),
            )
        d3.selectbox("Colour map", list(COLORMAPS), **_changes(COLORMAP))
    return current_choice(ia, cam_layer)


#: The layer picker's help for a Swin, whose "layers" are its blocks over every stage.
SWIN_LAYER_HELP = (
    "A Swin's layers are its blocks, stage by stage. Each stage has its own grid of cells (the first: one per "
    "patch; patch merging halves it between stages), and each block attends only within square windows of cells; "
    "every other block shifts the windows by half a window. The map's title names the block's stage and block."
)


def current_choice(ia: ImageAttention, cam_layer: str | None = None) -> MapChoice:
    """What the map controls chose, read from session state: the heads and comparison views use it
    without drawing the controls (the overlay's view draws them first in a full run)."""
    state = st.session_state
    offered = offered_maps(ia)
    kind = state.get(MAP) if state.get(MAP) in offered else (offered[0] if offered else "")
    layer, head, fusion, discard = 0, MEAN_OF_HEADS, "mean", 0.0
    if ia.map_layers:
        layer = state.get(LAYER, ia.map_layers - 1)
        layer = layer if layer in range(ia.map_layers) else ia.map_layers - 1
        head = state.get(HEAD, MEAN_OF_HEADS)
        head = head if head in range(ia.heads_in(layer)) else MEAN_OF_HEADS  # a Swin's stages differ in heads
    if ia.has_attention:
        fusion, discard = state.get(FUSION, HEAD_FUSIONS[0]), float(state.get(DISCARD, 0.0))
    return MapChoice(
        kind,
        int(layer),
        None if head == MEAN_OF_HEADS else int(head),
        fusion,
        discard,
        float(state.get(OPACITY, 0.55)),
        state.get(COLORMAP, next(iter(COLORMAPS))),
        bool(state.get(FROM_MIN, False)),
        state.get(PATCH),
        cam_layer,
    )


def gradient_maps(
    model: ImageModel, result: ImageRun, picked: Picked, target: str
) -> tuple[PixelMap | None, PixelMap] | None:
    try:
        with device_notice(model, earlier=False):
            return cached_gradient_maps(model, picked, target, result, n_steps=ig_steps(), layer=chosen_layer(model))
    except InputError as exc:
        show_input_error(exc)
        return None
    except Exception as exc:  # a bug: a short message here, the traceback in the server log
        show_unexpected(exc, "computing the gradient maps")
        return None


def ig_steps() -> int:
    """Integrated Gradients' steps for this visitor (:data:`IG_STEP_CHOICES`)."""
    return int(st.session_state.get(IG_STEPS, IG_STEP_CHOICES[0]))


def use_ig_steps(n_steps: int) -> None:
    """The "More steps" button's callback: run Integrated Gradients again with ``n_steps``."""
    st.session_state[IG_STEPS] = n_steps
