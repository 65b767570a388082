"""The image-attention page's widgets and views (the page file only calls these in order).

Nothing here reruns the model when a display choice changes: the forward pass is cached per
image, gradient maps per (image, class); opacity, colour map, layer, head and the clicked
patch only pick among cached arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import streamlit as st

from attnviz.errors import InputError
from attnviz.export.image_files import maps_npz, overlay_png
from attnviz.figures.overlay import COLORMAPS, overlay, predictions_bar, small_multiples
from attnviz.image.attribution import PixelMap
from attnviz.image.decoding import EXTENSIONS, FORMAT_HINT, MAX_BYTES
from attnviz.image.extraction import ImageAttention
from attnviz.image.loading import BUNDLED_IMAGE_MODEL, ImageModel
from attnviz.maths.agreement import spearman
from attnviz.maths.attention_rollout import HEAD_FUSIONS, rollout
from attnviz.maths.map_scores import mass_inside, pointing_hit
from attnviz.ui.cache import (
    ImageRun,
    Picked,
    cached_demo_images,
    cached_gradient_maps,
    cached_image_run,
    digest,
    image_model,
)
from attnviz.ui.notices import device_notice
from attnviz.ui.safe import md_escape, show_input_error
from attnviz.ui.state import keep_default
from attnviz.ui.widgets import ModelPicker

SOURCE, DEMO, UPLOAD, UPLOAD_DIGEST = "image_source", "image_demo", "image_upload", "image_upload_digest"
TARGET, TARGET_FOR = "image_target", "image_target_for"
MAP, LAYER, HEAD, FUSION, DISCARD = "image_map", "image_layer", "image_head", "image_fusion", "image_discard"
OPACITY, COLORMAP, PATCH, OVERLAY_CHART = "image_opacity", "image_colormap", "image_patch", "image_overlay"
FROM_MIN = "image_scale_from_min"
MODEL, MODEL_INPUT, MODEL_ERROR = "image_model_name", "image_model_input", "image_model_error"
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
MAPS = ("Class token", "Rollout", "From a clicked patch")
MEAN_OF_HEADS = "mean"


def _upload_key(upload) -> str:
    """The upload's SHA-256, computed once per uploaded file rather than on every rerun
    (a 20 MB file takes ~30 ms to hash, and every slider move reruns the page)."""
    file_id, key = st.session_state.get(UPLOAD_DIGEST, (None, None))
    if file_id != upload.file_id:
        file_id, key = upload.file_id, digest(upload.getvalue())
        st.session_state[UPLOAD_DIGEST] = (file_id, key)
    return key


PICKER = ModelPicker(
    title="Image model",
    bundled=BUNDLED_IMAGE_MODEL,
    load=image_model,
    current=MODEL,
    typed=MODEL_INPUT,
    error=MODEL_ERROR,
    placeholder="my-model/ or google/vit-base-patch16-224",
    help="A folder written by `python -m attnviz.image.train --data ... --out ...`, or a Hugging Face "
    "ViT/DeiT classifier (hub id or folder). The bundled model needs neither.",
    empty_message="Type the path of a folder written by `python -m attnviz.image.train`, or a ViT hub id "
    "(needs internet).",
)
model_name = PICKER.name


def load_model() -> ImageModel | None:
    """Sidebar model picker; returns the loaded image model, or None with a message."""
    model = PICKER.draw()
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
        "input is 64 x 64).",
    )
    if upload is None:
        st.info("Upload an image, or switch to a demo image.")
        return None
    return Picked(upload.getvalue(), _upload_key(upload), upload.name, None)


def run(model: ImageModel, picked: Picked) -> ImageRun | None:
    """The cached forward pass of the picked image, or None after showing why (and the model's GPU notice)."""
    try:
        with device_notice(model):
            return cached_image_run(model, picked)
    except InputError as exc:
        show_input_error(exc)
        st.caption(f"Formats that work: {FORMAT_HINT}. Your earlier choices are kept.")
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


def _on_patch_click(cols: int) -> None:
    """A click on the overlay selected a point of its click layer: point ``i`` is cell divmod(i, cols)."""
    points = st.session_state[OVERLAY_CHART]["selection"]["points"]
    if points and "point_index" in points[0]:
        st.session_state[PATCH] = divmod(int(points[0]["point_index"]), cols)
        st.session_state[MAP] = MAPS[2]


@dataclass(frozen=True)
class MapChoice:
    kind: str
    layer: int
    head: int | None  # None: mean of heads
    fusion: str
    discard: float
    opacity: float
    colormap: str
    from_min: bool = False


def map_controls(ia: ImageAttention) -> MapChoice:
    c1, c2, c3, c4 = st.columns([5, 2, 3, 3])
    kind = c1.radio(
        "Map",
        MAPS,
        key=MAP,
        horizontal=True,
        help="Class token: where the class token (the model's summary, read by the classifier) looks in one "
        "layer. Rollout: attention composed through every layer (Abnar & Zuidema). From a clicked patch: "
        "click a cell of the image.",
    )
    layers = list(range(ia.n_layers))
    heads = [MEAN_OF_HEADS, *range(ia.n_heads)]
    _clamp(LAYER, layers[::-1])  # default: the last layer, the one the classifier reads
    _clamp(HEAD, heads)
    layer = c2.selectbox("Layer", layers, key=LAYER, disabled=kind == "Rollout")
    head = c3.selectbox("Head", heads, key=HEAD, disabled=kind == "Rollout")
    keep_default(OPACITY, 0.55)
    opacity = c4.slider("Opacity", 0.0, 1.0, step=0.05, key=OPACITY)
    fusion, discard = "mean", 0.0
    with st.expander("Rollout and colour options", expanded=kind == "Rollout"):
        d1, d2, d3 = st.columns(3)
        fusion = d1.selectbox("Head fusion", HEAD_FUSIONS, key=FUSION, help="How each layer's heads become one matrix.")
        keep_default(DISCARD, 0.0)
        discard = d2.slider(
            "Discard lowest", 0.0, 0.95, step=0.05, key=DISCARD, help="Share of each layer's weakest weights dropped."
        )
        colormap = d3.selectbox("Colour map", list(COLORMAPS), key=COLORMAP)
        from_min = d3.toggle(
            "Colours from min",
            key=FROM_MIN,
            help="Off: colours run from 0 to the largest value. On: from the smallest, which shows small "
            "differences in nearly uniform maps (e.g. where a patch attends in a late layer).",
        )
    head_index = None if head == MEAN_OF_HEADS else int(head)
    return MapChoice(kind, layer, head_index, fusion, discard, opacity, colormap, from_min)


def rollout_map(ia: ImageAttention, fusion: str = "mean", discard: float = 0.0) -> np.ndarray:
    """The class token's row of the rollout, over grid cells: (rows, cols)."""
    return rollout(ia.weights, head_fusion=fusion, discard_ratio=discard)[0, 1:].reshape(ia.grid)


def current_map(ia: ImageAttention, choice: MapChoice) -> tuple[np.ndarray, str]:
    heads = "mean of heads" if choice.head is None else f"head {choice.head}"
    if choice.kind == "Rollout":
        return rollout_map(ia, choice.fusion, choice.discard), f"Rollout ({choice.fusion} of heads)"
    if choice.kind == "From a clicked patch":
        row, col = st.session_state.get(PATCH) or (ia.grid[0] // 2, ia.grid[1] // 2)
        row, col = min(row, ia.grid[0] - 1), min(col, ia.grid[1] - 1)
        title = f"From patch ({row}, {col}), layer {choice.layer}, {heads}"
        return ia.cell_attention(choice.layer, choice.head, row, col), title
    return ia.cls_attention(choice.layer, choice.head), f"Class token, layer {choice.layer}, {heads}"


def render_main(result: ImageRun, choice: MapChoice, target: str, picked: Picked) -> np.ndarray:
    ia = result.attention
    grid_map, title = current_map(ia, choice)
    selected = st.session_state.get(PATCH) if choice.kind == "From a clicked patch" else None
    if choice.kind == "From a clicked patch" and selected is None:
        selected = (ia.grid[0] // 2, ia.grid[1] // 2)
    fig = overlay(
        result.shown,
        grid_map,
        opacity=choice.opacity,
        colormap=choice.colormap,
        title=title,
        clickable=True,
        selected=selected,
        from_min=choice.from_min,
    )
    st.plotly_chart(
        fig,
        key=OVERLAY_CHART,
        # A partial, not a lambda: Streamlit keeps every chart's callback for the whole session
        # (one per new image), and a lambda would keep ``ia`` with it.
        on_select=partial(_on_patch_click, ia.grid[1]),
        selection_mode="points",
        width="stretch",
    )
    st.caption(
        f"Click a cell to see where that patch attends. The {ia.grid[0]} x {ia.grid[1]} grid is the model's view "
        f"of the whole image (squeezed to {ia.image.width} x {ia.image.height} pixels)."
    )
    c1, c2 = st.columns(2)
    c1.download_button(
        "Overlay as PNG",
        lambda: overlay_png(result.shown, grid_map, opacity=choice.opacity, colormap=choice.colormap),
        file_name=f"{picked.name}-overlay.png",
        mime="image/png",
        icon=":material/download:",
    )
    return grid_map


def render_predictions(ia: ImageAttention, target: str) -> None:
    st.plotly_chart(
        predictions_bar(ia.predictions, k=5, chosen=target), width="stretch", config={"displayModeBar": False}
    )


def render_heads(result: ImageRun, choice: MapChoice) -> None:
    ia = result.attention
    layer = choice.layer
    if choice.kind == "From a clicked patch":
        row, col = st.session_state.get(PATCH) or (ia.grid[0] // 2, ia.grid[1] // 2)
        maps = [(f"head {h}", ia.cell_attention(layer, h, row, col)) for h in range(ia.n_heads)]
        maps.append(("mean of heads", ia.cell_attention(layer, None, row, col)))
        what = f"where patch ({row}, {col}) attends"
    else:
        maps = [(f"head {h}", ia.cls_attention(layer, h)) for h in range(ia.n_heads)]
        maps.append(("mean of heads", ia.cls_attention(layer)))
        what = "where the class token attends"
    st.subheader(f"All heads of layer {layer}")
    st.caption(f"{what.capitalize()}, one head per picture, each scaled to its own maximum.")
    fig = small_multiples(result.shown, maps, opacity=choice.opacity, colormap=choice.colormap, n_cols=len(maps))
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False})


def gradient_maps(
    model: ImageModel, result: ImageRun, picked: Picked, target: str
) -> tuple[PixelMap | None, PixelMap] | None:
    try:
        with device_notice(model, earlier=False):
            return cached_gradient_maps(model, picked, target, result)
    except InputError as exc:
        show_input_error(exc)
        return None


def render_comparison(
    result: ImageRun, choice: MapChoice, target: str, maps: tuple[PixelMap | None, PixelMap], picked: Picked
) -> None:
    ia = result.attention
    cam, ig = maps
    roll = rollout_map(ia, choice.fusion, choice.discard)
    last = ia.cls_attention(ia.n_layers - 1)
    panels = [("Rollout", roll), (f"Class token, layer {ia.n_layers - 1}", last)]
    if cam is not None:
        panels.append((f"Grad-CAM: {target}", cam.grid))
    panels.append((f"Integrated Gradients: {target}", ig.grid))
    st.subheader("Attention beside gradient attributions")
    st.caption(
        "Attention says where the model looked; Grad-CAM (last convolution) and Integrated Gradients "
        f"(pixels, from a black image) say which regions raised the score of “{md_escape(target)}”. All are "
        f"summed over the same grid cells. Integrated Gradients' convergence delta: {ig.delta:.2g}, against a "
        f"score change of {ig.change:.2g} that it splits among the pixels."
    )
    fig = small_multiples(result.shown, panels, opacity=choice.opacity, colormap=choice.colormap, n_cols=len(panels))
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False})
    if cam is None:
        st.caption("No Grad-CAM for this model: it has no convolution grid to explain (a ViT's patches are linear).")

    rows = []
    if cam is not None:
        rows.append(("Rollout vs Grad-CAM", spearman(roll.ravel(), cam.grid.ravel())))
    rows.append(("Rollout vs Integrated Gradients", spearman(roll.ravel(), ig.grid.ravel())))
    if cam is not None:
        rows.append(("Grad-CAM vs Integrated Gradients", spearman(cam.grid.ravel(), ig.grid.ravel())))
    cols = st.columns(len(rows))
    for col, (label, rho) in zip(cols, rows, strict=True):
        col.metric(label, "n/a" if not np.isfinite(rho) else f"ρ = {rho:+.2f}")
    if cam is not None and np.isfinite(rows[0][1]):
        st.caption(_agreement_sentence(rows[0][1], ia.grid))

    if picked.mask is not None:
        st.subheader("Does each map point at the shape?")
        named = dict(panels)
        table = {
            "map": list(named),
            "pointing game": ["hit" if pointing_hit(m, picked.mask) else "miss" for m in named.values()],
            "mass inside the shape": [f"{mass_inside(m, picked.mask):.0%}" for m in named.values()],
        }
        st.dataframe(table, hide_index=True)
        st.caption(
            f"The shape covers {picked.mask.mean():.0%} of the image (what a uniform map would score). A hit: the "
            "map's strongest cell is within half a cell of the shape."
        )
    npz = lambda: maps_npz(  # noqa: E731
        {
            "attention": ia.weights,
            "rollout": roll,
            "integrated_gradients": ig.pixels,
            **({"gradcam": cam.pixels} if cam is not None else {}),
        },
        model=ia.model_name,
        target=target,
        classes=",".join(label for label, _ in ia.predictions),
    )
    st.download_button(
        "All maps as .npz",
        npz,
        file_name=f"{picked.name}-maps.npz",
        mime="application/octet-stream",
        icon=":material/download:",
    )


def _agreement_sentence(rho: float, grid: tuple[int, int]) -> str:
    size = abs(rho)
    strength = next(
        word
        for bound, word in ((0.7, "strongly"), (0.4, "moderately"), (0.2, "weakly"), (0, "hardly"))
        if size >= bound
    )
    direction = "agree" if rho >= 0 else "disagree"
    return (
        f"Spearman's ρ ranks the {grid[0] * grid[1]} cells by each map and compares the rankings: here rollout and "
        f"Grad-CAM {strength} {direction} on which cells matter most (1 = same order, 0 = unrelated, −1 = reversed)."
    )


def page_caption(model: ImageModel) -> None:
    card = model.card or {}
    acc = card.get("metrics", {}).get("test_accuracy")
    bits = [f"Model: {md_escape(model.name)}", f"{model.n_layers} attention layers × {model.n_heads} heads"]
    bits.append(f"{model.grid[0]} x {model.grid[1]} grid")
    if acc is not None and model.name == BUNDLED_IMAGE_MODEL:
        bits.append(f"{acc:.1%} accuracy on held-out generated shapes")
    st.caption(" · ".join([*bits, class_list(model.classes)]))


#: The caption names at most this many classes (a hub ViT trained on ImageNet has 1,000).
CAPTION_CLASSES = 20


def class_list(classes: tuple[str, ...]) -> str:
    """The model's class names for a Markdown caption: escaped, since a model card or a hub ViT's
    ``id2label`` is written by whoever published the model and ``![x](url)`` would make every
    visitor's browser load that url."""
    names = ", ".join(md_escape(name) for name in classes[:CAPTION_CLASSES])
    more = f" and {len(classes) - CAPTION_CLASSES} more" if len(classes) > CAPTION_CLASSES else ""
    return f"classes: {names}{more}"
