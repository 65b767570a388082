"""The image-attention page's drawing: the overlay (clickable cells), every head, and attention
beside Grad-CAM and Integrated Gradients with their agreement and pointing-game scores.

It only draws what is cached (attnviz.ui.cache): a display choice never reruns the model.
The map drawn is the chosen entry of attnviz.ui.image_maps (the choices: its :class:`~attnviz.ui.image_maps.MapChoice`).

The page's maps are three views, each a fragment that reruns alone: :func:`overlay_view` (the map
controls and the overlay), :func:`heads_view` and :func:`compare_view`. Which controls rerun which
views: attnviz.ui.image_page.RERUNS.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from attnviz.export.image_files import maps_npz, overlay_png, overlays_png
from attnviz.figures.overlay import overlay, predictions_bar, small_multiples
from attnviz.image.attribution import PixelMap
from attnviz.image.extraction import ImageAttention
from attnviz.image.loading import BUNDLED_IMAGE_MODEL, ImageModel
from attnviz.maths.agreement import WORDING_RULE, relation, spearman
from attnviz.maths.colour_scale import near_uniform_note
from attnviz.maths.integral_check import integral_error, integral_warning, more_steps
from attnviz.maths.map_scores import mass_inside, pointing_hit
from attnviz.ui import fragments
from attnviz.ui.cache import ImageRun, Picked
from attnviz.ui.figure_downloads import figure_downloads
from attnviz.ui.image_families import family_note, with_gradcam
from attnviz.ui.image_maps import FROM_PATCH, IMAGE_MAPS, MapChoice, heads_entry, patch_of, rollout_map
from attnviz.ui.image_page import (
    COMPARE_VIEW,
    HEADS_VIEW,
    IG_STEP_CHOICES,
    MAP,
    OVERLAY_CHART,
    OVERLAY_VIEW,
    PATCH,
    current_choice,
    gradient_maps,
    map_controls,
    rerun_views,
    use_ig_steps,
)
from attnviz.ui.safe import md_escape


@fragments.view(OVERLAY_VIEW)
def overlay_view(model: ImageModel, result: ImageRun, picked: Picked, target: str) -> None:
    """The map controls and the overlay: a fragment. Its address hooks run here (the heads and comparison
    views change nothing the address holds but the controls drawn here)."""
    choice = with_gradcam(model, result, picked, target, map_controls(result.attention))
    render_main(result, choice, target, picked)


@st.fragment(key=HEADS_VIEW)
def heads_view(result: ImageRun) -> None:
    """The row "All heads of layer": a fragment that reruns with the map, layer, patch and colours."""
    render_heads(result, current_choice(result.attention))


@st.fragment(key=COMPARE_VIEW)
def compare_view(model: ImageModel, result: ImageRun, picked: Picked, target: str) -> None:
    """Attention beside the gradient maps, their agreement and scores: a fragment that reruns with the
    rollout's options, the Grad-CAM layer, the colours and its own "More steps"."""
    maps = gradient_maps(model, result, picked, target)
    if maps is not None:
        render_comparison(result, current_choice(result.attention), target, maps, picked)


def _on_patch_click(cols: int) -> None:
    """A click on the overlay selected a point of its click layer: point ``i`` is cell divmod(i, cols).
    The overlay and the heads rerun (the map becomes the clicked patch's); the comparison does not."""
    points = st.session_state[OVERLAY_CHART]["selection"]["points"]
    if points and "point_index" in points[0]:
        st.session_state[PATCH] = divmod(int(points[0]["point_index"]), cols)
        st.session_state[MAP] = FROM_PATCH.name
        rerun_views(PATCH)


def render_main(result: ImageRun, choice: MapChoice, target: str, picked: Picked) -> np.ndarray | None:
    ia = result.attention
    entry = IMAGE_MAPS.get(choice.kind)
    if entry is None:  # the model supports no map over the image: Integrated Gradients is below
        st.info(
            "This model has no map to draw over the image here: Integrated Gradients is drawn below; the note "
            "under the model's name says why the others are absent.",
            icon=":material/info:",
        )
        return None
    grid_map = entry.grid_map(ia, choice, choice.head)
    fig = overlay(
        result.shown,
        grid_map,
        opacity=choice.opacity,
        colormap=choice.colormap,
        title=entry.title(ia, choice),
        clickable=entry.clickable,
        selected=patch_of(ia, choice) if entry.outlines_patch else None,
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
    if entry.clickable:
        st.caption(
            f"Click a cell to see where that patch attends. The {ia.grid[0]} x {ia.grid[1]} grid is the model's "
            f"view of the whole image (squeezed to {ia.image.width} x {ia.image.height} pixels)."
        )
        if ia.windows:
            st.caption(swin_caption(ia, choice))
    else:
        st.caption(
            f"Grad-CAM of “{md_escape(target)}” on {md_escape(choice.cam_layer or '')}: its {grid_map.shape[0]} x "
            f"{grid_map.shape[1]} output grid over the image (squeezed to {ia.image.width} x {ia.image.height} "
            "pixels). Pick another layer under “Grad-CAM layer”."
        )
    uniform_note(grid_map, choice.from_min)
    c1, c2 = st.columns(2)
    title = entry.title(ia, choice)
    figure_downloads(
        lambda fmt, paper: overlay_png(
            result.shown,
            grid_map,
            opacity=choice.opacity,
            colormap=choice.colormap,
            from_min=choice.from_min,
            title=title,
            fmt=fmt,
            paper=paper,
        ),
        stem=f"{picked.name}-overlay",
        key="overlay_figure",
        label="Overlay",
        container=c1,
    )
    return grid_map


def swin_caption(ia: ImageAttention, choice: MapChoice) -> str:
    """What a Swin block's map is: its stage's grid, the window holding the clicked patch, the shift, and the
    weight lost to padding when there is any."""
    block = ia.windows[choice.layer]
    rows, cols = block.grid
    k = block.scale
    cell = block.cell_of_patch(*patch_of(ia, choice))
    said = (
        f"Swin attends within windows. This block works on stage {block.stage}'s {rows} x {cols} grid"
        + (f" (each cell merges {k} x {k} patches)" if k > 1 else " (one cell per patch)")
        + f", cut into windows of {block.window} x {block.window} cells"
        + (
            f" shifted by {block.shift} cells (the grid is rolled, so a window can wrap around an edge; cells that "
            "the roll brought together are masked from each other)"
            if block.shift
            else ""
        )
        + f". The map is cell ({cell[0]}, {cell[1]})'s row of its window's attention, each patch showing the weight "
        "of the cell that holds it; it is 0 outside the window."
    )
    lost = block.padding_share(choice.head, *cell)
    if lost > 0.005:
        said += (
            f" {lost:.0%} of the row's weight is on padding cells (the grid is padded to whole windows, and "
            "Swin does not mask the padding), so the map sums to less than 1."
        )
    return said


def uniform_note(grid_map: np.ndarray, from_min: bool) -> None:
    """Say in numbers when the map is nearly uniform: its colours would overstate its differences."""
    note = near_uniform_note(grid_map)
    if note is None:
        return
    if from_min:
        how = "Colours run from the smallest value to the largest, so these small differences fill the whole scale."
    else:
        how = (
            "Coloured from 0, every cell looks strong; “Colours from min” (under the choice of map) "
            "shows the small differences instead."
        )
    st.info(f"{note} {how}", icon=":material/info:")


def render_domain_note(ia: ImageAttention) -> None:
    """Above the predictions: a warning when the domain check finds the image unlike the training data."""
    if ia.out_of_domain:
        st.warning(md_escape(ia.domain_note), icon=":material/warning:")
    elif ia.domain_note:
        st.caption(md_escape(ia.domain_note))


def render_predictions(ia: ImageAttention, target: str) -> None:
    st.plotly_chart(
        predictions_bar(ia.predictions, k=5, chosen=target), width="stretch", config={"displayModeBar": False}
    )


def render_heads(result: ImageRun, choice: MapChoice) -> None:
    ia = result.attention
    if not ia.map_layers or choice.kind not in IMAGE_MAPS:  # a CNN: no heads (the family note says why)
        return
    entry = heads_entry(IMAGE_MAPS[choice.kind])
    maps = [(f"head {h}", entry.grid_map(ia, choice, h)) for h in range(ia.heads_in(choice.layer))]
    maps.append(("mean of heads", entry.grid_map(ia, choice, None)))
    st.subheader(f"All heads of layer {choice.layer}")
    st.caption(f"{entry.heads_what(ia, choice).capitalize()}, one head per picture, each scaled to its own maximum.")
    _draw_row(
        result,
        choice,
        maps,
        f"All heads of layer {choice.layer}",
        f"attnviz-image-heads-L{choice.layer}",
        "Heads",
        "image_heads_figure",
    )


def _draw_row(result: ImageRun, choice: MapChoice, maps: list, title: str, stem: str, label: str, key: str) -> None:
    """A row of maps over the image, and its figure downloads (the same maps, drawn by matplotlib)."""
    fig = small_multiples(result.shown, maps, opacity=choice.opacity, colormap=choice.colormap, n_cols=len(maps))
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False})
    figure_downloads(
        lambda fmt, paper: overlays_png(
            result.shown, maps, opacity=choice.opacity, colormap=choice.colormap, title=title, fmt=fmt, paper=paper
        ),
        stem=stem,
        key=key,
        label=label,
        container=st.columns(3)[0],
    )


def render_comparison(
    result: ImageRun, choice: MapChoice, target: str, maps: tuple[PixelMap | None, PixelMap], picked: Picked
) -> None:
    ia = result.attention
    cam, ig = maps
    panels = []
    roll = rollout_map(ia, choice.fusion, choice.discard) if ia.has_attention else None
    if roll is not None:
        last = ia.cls_attention(ia.n_layers - 1)
        panels = [("Rollout", roll), (f"Class token, layer {ia.n_layers - 1}", last)]
    if cam is not None:
        panels.append((f"Grad-CAM: {target}", cam.grid))
    panels.append((f"Integrated Gradients: {target}", ig.grid))
    st.subheader("Attention beside gradient attributions" if roll is not None else "Gradient attributions")
    where = f"on {md_escape(cam.layer)}" if cam is not None and cam.layer else "last convolution"
    # Only the maps this model has are named (a Swin has no Grad-CAM, a CNN no attention).
    says = (
        f"Grad-CAM ({where}) and Integrated Gradients (pixels, from a black image) say"
        if cam is not None
        else "Integrated Gradients (pixels, from a black image) says"
    )
    looked = "Attention says where the model looked; " if roll is not None else ""
    st.caption(
        f"{looked}{says} which regions raised the score of “{md_escape(target)}”. All are "
        f"summed over the same grid cells. Integrated Gradients' convergence delta: {ig.delta:.2g}, against a "
        f"score change of {ig.change:.2g} that it splits among the pixels ({ig.n_steps} steps)."
    )
    ig_check(ig)
    _draw_row(
        result,
        choice,
        panels,
        "Attention beside gradient attributions",
        f"{picked.name}-attention-and-gradients",
        "Maps",
        "image_compare_figure",
    )
    if cam is None:
        family = ia.family
        why = family.absent_reason("Grad-CAM") if family is not None else None
        st.caption(f"No Grad-CAM for this model: {md_escape(why or 'it has no convolution grid to explain')}.")

    rows = []
    if cam is not None and roll is not None:
        rows.append(("Rollout vs Grad-CAM", spearman(roll.ravel(), cam.grid.ravel())))
    if roll is not None:
        rows.append(("Rollout vs Integrated Gradients", spearman(roll.ravel(), ig.grid.ravel())))
    if cam is not None:
        rows.append(("Grad-CAM vs Integrated Gradients", spearman(cam.grid.ravel(), ig.grid.ravel())))
    if rows:  # a Swin model has one map only (Integrated Gradients): nothing to compare
        cols = st.columns(len(rows))
        for col, (label, rho) in zip(cols, rows, strict=True):
            col.metric(label, "n/a" if not np.isfinite(rho) else f"ρ = {rho:+.2f}")
            col.caption(relation(rho).capitalize() if np.isfinite(rho) else "Undefined: one map is constant.")
        st.caption(_agreement_caption(ia.grid))

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
            **({"attention": ia.weights, "rollout": roll} if roll is not None else {}),
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


def ig_check(ig: PixelMap) -> None:
    """A warning and a "More steps" button when the integral misses by more than 5 % of the change."""
    warning = integral_warning(integral_error(ig.delta, ig.change), ig.n_steps)
    if warning is None:
        return
    st.warning(warning, icon=":material/warning:")
    bigger = more_steps(ig.n_steps, IG_STEP_CHOICES)
    if bigger is None:
        st.caption(f"{ig.n_steps} steps is the most this page runs.")
    else:
        st.button(
            f"More steps ({bigger})",
            key="image_ig_more_steps",
            icon=":material/add:",
            on_click=use_ig_steps,
            args=(bigger,),
        )


def _agreement_caption(grid: tuple[int, int]) -> str:
    return (
        f"Spearman's ρ ranks the {grid[0] * grid[1]} cells by each map and compares the rankings: 1 = same order, "
        f"0 = unrelated, −1 = reversed. The words follow one rule across the app: {WORDING_RULE}."
    )


def page_caption(model: ImageModel) -> None:
    card = model.card or {}
    acc = card.get("metrics", {}).get("test_accuracy")
    bits = [f"Model: {md_escape(model.name)}"]
    if model.has_attention:
        bits.append(f"{model.n_layers} attention layers × {model.n_heads} heads")
    elif model.has_window_attention:
        heads = model.window_heads
        stages = len(model.model.config.depths)
        span = f"{min(heads)} to {max(heads)}" if min(heads) != max(heads) else f"{max(heads)}"
        bits.append(f"{len(heads)} windowed attention blocks in {stages} stages ({span} heads)")
    if model.has_conv and model.kind != "cnn-attention":
        bits.append(f"{len(model.family.conv_layers)} convolution layers")
    bits.append(f"{model.grid[0]} x {model.grid[1]} grid")
    if acc is not None and model.name == BUNDLED_IMAGE_MODEL:
        bits.append(f"{acc:.1%} accuracy on held-out generated shapes")
    st.caption(" · ".join([*bits, class_list(model.classes)]))
    family_note(model)


#: The caption names at most this many classes (a hub ViT trained on ImageNet has 1,000).
CAPTION_CLASSES = 20


def class_list(classes: tuple[str, ...]) -> str:
    """The model's class names for a Markdown caption: escaped, since a model card or a hub ViT's
    ``id2label`` is written by whoever published the model and ``![x](url)`` would make every
    visitor's browser load that url."""
    names = ", ".join(md_escape(name) for name in classes[:CAPTION_CLASSES])
    more = f" and {len(classes) - CAPTION_CLASSES} more" if len(classes) > CAPTION_CLASSES else ""
    return f"classes: {names}{more}"
