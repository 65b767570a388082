"""``attnviz.score_explanations``: the scoreboard of explanations for a text or an image model.

This module sits above the wings (like ``attnviz/__init__.py``): it only picks the text or the
image wing's scorer by the model's type, importing the wing when it is called, so that the wings
never import each other and the shared top imports no wing.
"""

from __future__ import annotations

import sys

from attnviz.errors import InputError


def score_explanations(
    model,
    inp,
    target=None,
    methods=None,
    steps: int = 20,
    random_orders: int = 20,
    seed: int = 0,
    text_pair: str | None = None,
    progress=None,
    ig_steps: int | None = None,
):
    """How faithful each explanation (attention, rollout, gradients, ...) is on one input.

    Each method ranks the input's units (a text's tokens, an image's grid cells); the **deletion**
    curve removes them most important first and follows the model's target score (lower area:
    more faithful), the **insertion** curve puts them back into a fully removed input (higher area:
    more faithful); both are divided by the full input's score. A random order (mean ± sd over
    ``random_orders`` orders) is the bar to beat.

    Args:
        model: a text model (encoder or decoder, :func:`attnviz.load_text_model`) or an image model
            (:func:`attnviz.load_image_model`).
        inp: the text (str) or the image (a PIL image).
        target: what is explained. Decoder: the next token (one token as text, or an id; default the top
            choice). Encoder with a masked-LM head: the token at [MASK]; with a classifier: the class.
            Plain encoder: None (the similarity of the sentence embedding to the full input's). Image:
            the class (index or name; default the predicted one).
        methods: None for every method of the model's family, or a list of names
            (``attnviz.text.explanation_scores.TEXT_METHODS``, ``attnviz.image.explanation_scores.IMAGE_METHODS``).
        steps: the curves have ``steps + 1`` points, fractions 0, 1/steps, ..., 1 of the units.
        random_orders: random orders for the random row (0 leaves it out); ``seed`` seeds them.
        text_pair: an encoder's second sentence.
        progress: ``progress(done, total, what)``, called as the work advances.
        ig_steps: integrated gradients' interpolation steps (1 to 4096); None: the wing's default (16 for
            text, 64 for images). More steps give a smaller convergence delta (``ig_delta`` on the result;
            ``ig_warning()`` says when it exceeds 5 % of the change explained) and a longer run.

    Returns:
        :class:`attnviz.ExplanationScores`: ``table`` (one row per method, best deletion area first),
        the curves, the random band, the target and removal in words, notes, and ``summary()``.

    Raises:
        InputError: input a person can fix (empty or too long text, no removable unit, an unknown
            method or target).
    """
    # A TextModel's (an ImageModel's) module is loaded whenever one exists: look, do not import.
    text_loading, image_loading = sys.modules.get("attnviz.text.loading"), sys.modules.get("attnviz.image.loading")
    if text_loading is not None and isinstance(model, text_loading.TextModel):
        from attnviz.text.explanation_scores import IG_STEPS
        from attnviz.text.explanation_scores import score_text_explanations as score

        side = {"text_pair": text_pair}
    elif image_loading is not None and isinstance(model, image_loading.ImageModel):
        if text_pair is not None:
            raise InputError("text_pair is for text models; an image model scores one image.")
        from attnviz.image.explanation_scores import IG_STEPS
        from attnviz.image.explanation_scores import score_image_explanations as score

        side = {}
    else:
        raise InputError(
            "score_explanations needs a model from attnviz.load_text_model() or attnviz.load_image_model(), "
            f"not {type(model).__name__}."
        )
    ig_steps = IG_STEPS if ig_steps is None else ig_steps
    return score(model, inp, target, methods, steps, random_orders, seed, progress=progress, ig_steps=ig_steps, **side)
