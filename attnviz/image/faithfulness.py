"""Does a map point at the object? Pointing game and mass inside the mask, on generated shapes.

``python -m attnviz.image.faithfulness`` measures, on freshly generated images (a seed the model
never trained on), for last-layer class-token attention (mean over heads), attention rollout
and Grad-CAM, next to a centre-point baseline:

- **pointing game**: the map's highest grid cell, taken at its centre, lies on the shape
  (within half a grid cell of a mask pixel) — a hit;
- **mass inside**: the share of the map's total (each cell spread evenly over its pixels) that
  falls on the shape's pixels. A uniform map scores the shape's area share.

The masks only measure the maps; the model never saw them in training.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from attnviz.image import generated_shapes
from attnviz.image.attribution import gradcam
from attnviz.image.extraction import ImageAttention, image_attention
from attnviz.image.loading import ImageModel, load_image_model
from attnviz.image.model_files import BUNDLED_DIR, CARD_FILE
from attnviz.maths.attention_rollout import rollout
from attnviz.maths.map_scores import mass_inside, point_hits, pointing_hit

FAITHFULNESS_SEED = 2026  # not a training, validation or test seed of attnviz.image.train
METHODS = ("last-layer attention", "rollout", "Grad-CAM")


def attention_maps(ia: ImageAttention) -> dict[str, np.ndarray]:
    """The two attention maps measured, each (rows, cols) over grid cells."""
    roll = rollout(ia.weights)  # (T, T)
    return {
        "last-layer attention": ia.cls_attention(ia.n_layers - 1),
        "rollout": roll[0, 1:].reshape(ia.grid),
    }


@dataclass(frozen=True)
class Faithfulness:
    n_images: int
    seed: int
    pointing: dict[str, float]  # method -> share of hits; includes "centre baseline"
    mass: dict[str, float]  # method -> mean share of mass inside; includes "uniform baseline"
    accuracy: float  # the model's accuracy on these images

    def to_dict(self) -> dict:
        return {
            "n_images": self.n_images,
            "seed": self.seed,
            "pointing_game": {k: round(v, 4) for k, v in self.pointing.items()},
            "mass_inside_mask": {k: round(v, 4) for k, v in self.mass.items()},
            "accuracy": round(self.accuracy, 4),
        }


def evaluate(
    model: ImageModel,
    n_images: int = 1000,
    seed: int = FAITHFULNESS_SEED,
    progress: Callable[[int, int], None] | None = None,
) -> Faithfulness:
    """Score each method on ``n_images`` generated images; Grad-CAM explains the true class."""
    hits = {m: 0 for m in (*METHODS, "centre baseline")}
    mass = {m: 0.0 for m in (*METHODS, "uniform baseline")}
    correct = 0
    size = model.input_size
    for i in range(n_images):
        sample = generated_shapes.shape_sample(seed, i, size[0])
        ia = image_attention(model, sample.image)
        correct += ia.predictions[0][0] == sample.label
        maps = attention_maps(ia)
        maps["Grad-CAM"] = gradcam(model, sample.image, sample.label).grid
        for method, grid_map in maps.items():
            hits[method] += pointing_hit(grid_map, sample.mask)
            mass[method] += mass_inside(grid_map, sample.mask)
        centre = (size[1] / 2, size[0] / 2)
        hits["centre baseline"] += point_hits(centre, sample.mask, 0.5 * size[1] / model.grid[1])
        mass["uniform baseline"] += float(sample.mask.mean())
        if progress is not None:
            progress(i + 1, n_images)
    return Faithfulness(
        n_images=n_images,
        seed=seed,
        pointing={k: v / n_images for k, v in hits.items()},
        mass={k: v / n_images for k, v in mass.items()},
        accuracy=correct / n_images,
    )


def table(result: Faithfulness) -> str:
    """A Markdown table of the figures, as the README and the model card show them."""
    lines = ["| map | pointing game | mass inside the shape |", "|---|---:|---:|"]
    for method in METHODS:
        lines.append(f"| {method} | {result.pointing[method]:.1%} | {result.mass[method]:.1%} |")
    lines.append(f"| centre point (baseline) | {result.pointing['centre baseline']:.1%} | – |")
    lines.append(f"| uniform map (baseline) | – | {result.mass['uniform baseline']:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnviz.image.faithfulness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="image model folder (default: the bundled one)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=FAITHFULNESS_SEED)
    parser.add_argument("--write-card", action="store_true", help="store the figures in the bundled model card")
    args = parser.parse_args(argv)
    model = load_image_model(args.model, device="cpu")
    bar = tqdm(total=args.images, desc="measuring", unit="img")
    result = evaluate(model, args.images, args.seed, progress=lambda done, total: bar.update(1))
    bar.close()
    print(f"{model.name}: {args.images} images, seed {args.seed}, model accuracy {result.accuracy:.1%}")
    print(table(result))
    if args.write_card:
        path = BUNDLED_DIR / CARD_FILE if args.model is None else None
        if path is None:
            print("--write-card only updates the bundled model's card", file=sys.stderr)
            return 2
        card = json.loads(path.read_text())
        card["faithfulness"] = result.to_dict()
        path.write_text(json.dumps(card, indent=2) + "\n")
        print(f"wrote the figures to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
