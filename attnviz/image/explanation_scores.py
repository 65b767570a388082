"""Is this picture faithful? Deletion and insertion scores of every map of one image.

:func:`score_image_explanations` (``attnviz.score_explanations`` on an image model) ranks the
attention grid's cells by each map, removes them in that order (deletion) or puts them back into
an image with every cell removed (insertion), and follows the **probability of the chosen class**
(the predicted one by default). The curves' arithmetic is :mod:`attnviz.maths.deletion_curves`.

Removal, one way for every map: a removed cell's pixels are replaced by those of a blurred copy of
the image (a Gaussian of one cell's width, at the model's input size), RISE's choice for insertion.
Black cells, the other candidate (integrated gradients' usual baseline), were tried first and
measured useless here: the bundled model classifies shapes, and black squares are shapes. On the
demo images, blacking out 10 % of the cells at random (mean of 10 orders) left the predicted class
0.04 of its probability on the circle, 0.25 on the diamond and 0.52 on the triangle, and on the
circle every map and the random order scored a deletion area of 0.06-0.07 (nothing told apart).
Blurred cells took it to 1.0, 0.76 and 0.81, the random order's areas were 0.33-0.79 and the maps'
0.06-0.87 (one cell's width as the radius; four cells' blurred too little to remove a shape).
Integrated gradients here starts from the same
blurred image (the blur path of Xu et al. 2020), so the fully removed image is IG's baseline and
IG's per-cell scores add up to the change the curves span.

Maps (:data:`IMAGE_METHODS`), each a score per cell:

* ``class-token attention (last layer)``: the class token's last-layer attention, mean over heads;
* ``rollout``: :func:`attnviz.rollout`'s class-token row (both over the grid cells, after the special
  tokens; left out with a note for a model without attention maps, a CNN or Swin);
* ``Grad-CAM``: :func:`attnviz.image.attribution.gradcam` on the last convolution (models with
  convolution layers; a ViT's or Swin's row is left out with a note saying why);
* ``integrated gradients``: captum's ``IntegratedGradients`` of the class probability from the blurred
  image (``ig_steps``, :data:`IG_STEPS` by default), summed over each cell's pixels and channels, signed;
* ``occlusion``: captum's ``FeatureAblation`` with one cell at a time, removed as above;
* ``random``: mean and sd over ``random_orders`` orders; ``centre``: the nearer the image centre,
  the more important.

Everything holds the model's lock (captum hooks the shared model).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image, ImageFilter

from attnviz.device import falls_back_to_cpu
from attnviz.errors import InputError
from attnviz.image.attribution import _target_index, gradcam
from attnviz.image.loading import ImageModel
from attnviz.maths.attention_rollout import rollout
from attnviz.maths.curve_runs import Progress, run_curves
from attnviz.maths.deletion_curves import MaskScores, centre_nearness, check_settings, chosen_methods, fractions
from attnviz.maths.explanation_table import RANDOM, ExplanationScores, assemble
from attnviz.maths.integral_check import check_steps

ATTENTION = "class-token attention (last layer)"
ROLLOUT = "rollout"
GRADCAM = "Grad-CAM"
IG = "integrated gradients"
OCCLUSION = "occlusion"
CENTRE = "centre"
#: The map names ``methods=`` accepts for an image model.
IMAGE_METHODS = (ATTENTION, ROLLOUT, GRADCAM, IG, OCCLUSION, RANDOM, CENTRE)
#: Steps of integrated gradients: the bundled model is small (a pass of 64 images takes milliseconds).
IG_STEPS = 64
BATCH = 64

REMOVAL = (
    "A removed cell's pixels are replaced by a blurred copy's (a Gaussian one cell wide): black squares, the "
    "other choice, are themselves shapes to this model and took the prediction away wherever they were put. "
    "Integrated gradients starts from the same blurred image."
)


def removed_image(model: ImageModel, image: Image.Image) -> torch.Tensor:
    """The image with every cell removed, ``(1, 3, H, W)`` as the model takes it: the image at the
    model's input size, blurred by a Gaussian whose radius is one grid cell's width."""
    h, w = model.input_size
    small = image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
    return model.pixels(small.filter(ImageFilter.GaussianBlur(w / model.grid[1])))


def _cell_of_pixel(input_size: tuple[int, int], grid: tuple[int, int]) -> np.ndarray:
    """int ``[H, W]``: the grid cell (row by row) each pixel lies in."""
    (h, w), (rows, cols) = input_size, grid
    return (np.arange(h)[:, None] * rows // h) * cols + np.arange(w)[None, :] * cols // w


@falls_back_to_cpu("scoring explanations")
def score_image_explanations(
    model: ImageModel,
    image: Image.Image,
    target=None,
    methods=None,
    steps: int = 20,
    random_orders: int = 20,
    seed: int = 0,
    progress=None,
    ig_steps: int = IG_STEPS,
) -> ExplanationScores:
    """Deletion and insertion scores of every map of ``image`` (module docstring).

    Args:
        model: an image model (``attnviz.load_image_model()``).
        image: a PIL image (``attnviz.open_image``).
        target: the class explained, an index or a name; None: the predicted class.
        methods: None for all of :data:`IMAGE_METHODS`, or a list of them.
        steps, random_orders, seed, progress, ig_steps: as :func:`attnviz.score_explanations`.

    Raises:
        InputError: not an image, an unknown class or method.
    """
    check_settings(steps, random_orders, seed)
    ig_steps = check_steps(ig_steps)
    delta = float("nan")
    wanted = chosen_methods(methods, IMAGE_METHODS)
    if not isinstance(image, Image.Image):
        raise InputError(f"score_explanations needs a PIL image for an image model, not {type(image).__name__}.")
    notes: list[str] = []
    family = model.family
    if GRADCAM in wanted and not model.has_conv:
        wanted.remove(GRADCAM)
        why = family.absent_reason("Grad-CAM") if family is not None else None
        notes.append(f"Grad-CAM is left out: {why or f'{model.name} has no convolution grid to explain'}.")
    if not model.has_attention:
        dropped = [m for m in (ATTENTION, ROLLOUT) if m in wanted]
        for method in dropped:
            wanted.remove(method)
        if dropped:
            why = family.absent_reason("Class token") if family is not None else None
            notes.append(f"{' and '.join(dropped).capitalize()} left out: {why or 'the model has no attention'}.")
    specials = len(family.special_tokens) if family is not None else 1
    rows, cols = model.grid
    m = rows * cols
    cell = torch.as_tensor(_cell_of_pixel(model.input_size, model.grid).ravel())  # (H*W,)
    prog = Progress(progress, 4 + (len(wanted) + random_orders) * (steps - 1) + m)
    phase = ["full image"]

    with model.lock:
        x = model.pixels(image)  # (1, 3, H, W)
        base = removed_image(model, image)  # (1, 3, H, W)
        with torch.inference_mode():
            logits, attention = model.forward(x)  # (1, K), (1, L, heads, T, T)
        probs = logits[0].float().softmax(dim=-1)
        top = int(probs.argmax())
        index = top if target is None else _target_index(model, target)
        which = "the predicted class" if index == top else f"the model predicts {model.classes[top]!r}"
        description = f"probability of the class {model.classes[index]!r} (p = {float(probs[index]):.3g}), {which}"
        h, w = model.input_size

        def masked(removed: np.ndarray) -> torch.Tensor:
            where = torch.as_tensor(removed, device=x.device)[:, cell.to(x.device)].view(-1, 1, h, w)  # (B, 1, H, W)
            return torch.where(where, base, x)

        def probability(batch: torch.Tensor) -> torch.Tensor:
            return model.logits(batch).float().softmax(dim=-1)[:, index]

        def compute(removed: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return probability(masked(removed)).double().cpu().numpy()

        cache = MaskScores(m, batch=BATCH, progress=lambda k: prog.step(phase[0], k))
        full, removed_score = cache.scores(np.array([np.zeros(m, bool), np.ones(m, bool)]), compute)
        weights = attention[0].double().cpu().numpy() if attention is not None else None  # (L, heads, T, T)
        importance, spent = {}, {}
        for method in wanted:
            began = time.perf_counter()
            if method == ATTENTION:
                importance[method] = weights[-1, :, 0, specials:].mean(axis=0)
            elif method == ROLLOUT:
                importance[method] = rollout(weights)[0, specials:].astype(np.float64)
            elif method == GRADCAM:
                phase[0] = GRADCAM
                importance[method] = gradcam(model, image, index).grid.astype(np.float64).ravel()
                prog.step(phase[0])
            elif method == IG:
                phase[0] = IG
                importance[method], delta = _integrated_gradients(probability, x, base, cell.numpy(), m, ig_steps)
                change = float(full - removed_score)
                share = f" ({abs(delta) / abs(change):.0%} of the change it explains)" if change else ""
                notes.append(f"Integrated gradients: {ig_steps} steps, convergence delta {delta:.3g}{share}.")
                prog.step(phase[0])
            elif method == CENTRE:
                importance[method] = centre_nearness(model.grid)
            spent[method] = time.perf_counter() - began
        phase[0] = OCCLUSION
        began, cached = time.perf_counter(), cache.seconds
        loo = _occlusion(cache, compute, m)
        if OCCLUSION in wanted:
            importance[OCCLUSION] = loo
            spent[OCCLUSION] = time.perf_counter() - began - (cache.seconds - cached)
        phase[0] = "curves"
        runs, row_importance = run_curves(
            cache,
            compute,
            importance={k: importance[k] for k in wanted if k in importance},
            steps=steps,
            random_count=random_orders if RANDOM in wanted else 0,
            seed=seed,
            extra_masks={OCCLUSION: np.eye(m, dtype=bool)} if OCCLUSION in wanted else None,
            importance_seconds=spent,
            on_total=prog.expect,
        )
    prog.finish()
    if GRADCAM in row_importance:
        notes.append("Grad-CAM explains the class's logit (its usual target), the curves its probability.")
    return assemble(
        fractions=fractions(steps),
        importance=row_importance,
        deletion_raw=runs.deletion,
        insertion_raw=runs.insertion,
        seconds=runs.seconds,
        loo=loo,
        random_deletion_raw=runs.random_deletion,
        random_insertion_raw=runs.random_insertion,
        random_importance=runs.random_importance,
        random_seconds=runs.random_seconds,
        full_score=float(full),
        removed_score=float(removed_score),
        target=description,
        removal=REMOVAL,
        units=[f"cell ({r}, {c})" for r in range(rows) for c in range(cols)],
        notes=notes,
        model_name=model.name,
        family="image",
        steps=steps,
        random_orders=random_orders if RANDOM in wanted else 0,
        seed=seed,
        ig_steps=ig_steps if IG in wanted else None,
        ig_delta=delta,
    )


def _occlusion(cache: MaskScores, compute, m: int) -> np.ndarray:
    """captum's FeatureAblation over the cells through the shared pool: ``[m]`` full minus without cell i."""
    from captum.attr import FeatureAblation

    def forward(keep: torch.Tensor) -> torch.Tensor:  # (B, m) 1 = kept
        return torch.as_tensor(cache.scores(keep.detach().cpu().numpy() < 0.5, compute))

    attribution = FeatureAblation(forward).attribute(
        torch.ones(1, m, dtype=torch.float64), baselines=0.0, perturbations_per_eval=m
    )
    return attribution[0].double().numpy()


def _integrated_gradients(probability, x, base, cell: np.ndarray, m: int, ig_steps: int) -> tuple[np.ndarray, float]:
    """Signed IG of the class probability from ``base`` (the blurred image), summed over each cell's pixels
    and channels: ``[m]``, and the convergence delta."""
    from captum.attr import IntegratedGradients

    with torch.inference_mode(False), torch.enable_grad():
        ig = IntegratedGradients(probability)
        attr, delta = ig.attribute(
            x, baselines=base, n_steps=ig_steps, internal_batch_size=BATCH, return_convergence_delta=True
        )
    per_pixel = attr[0].detach().double().sum(dim=0).cpu().numpy().ravel()  # (H*W,)
    return np.bincount(cell, weights=per_pixel, minlength=m), float(delta.detach().reshape(-1)[0])
