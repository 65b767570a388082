"""Command line: is each image map faithful, on average over generated images? The scoreboard per map.

    python -m attnviz.image.scoreboard_cli --images 1000 --threads 1 --json scores.json --markdown scores.md

Scores class-token attention, rollout, Grad-CAM, integrated gradients, occlusion, random orders
and the centre baseline with :func:`attnviz.score_explanations` on ``--images`` freshly generated
shape images (:mod:`attnviz.image.generated_shapes`, seed :data:`~attnviz.image.faithfulness.FAITHFULNESS_SEED`
by default, which the model never trained on), explaining the predicted class (``--target true``:
the drawn shape's class). The table on stdout gives each map's mean ± sd over the images of the
deletion and insertion areas, the Spearman correlation with occlusion (leave-one-cell-out)
importance and the seconds, and how often it beat the random orders on the same image
(:mod:`attnviz.maths.score_summary`). Progress goes to stderr; Ctrl+C stops after the current
image and writes what was done.
"""

from __future__ import annotations

import argparse
import sys

from tqdm.auto import tqdm

from attnviz.errors import InputError
from attnviz.image.faithfulness import FAITHFULNESS_SEED
from attnviz.scoreboard_runs import (
    EXIT_INPUT,
    EXIT_STOPPED,
    StopRequest,
    add_options,
    check_methods,
    check_options,
    code_version,
    score_inputs,
    write_results,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m attnviz.image.scoreboard_cli",
        description="Deletion/insertion scores of every image map, mean ± sd over generated shape images.",
    )
    ap.add_argument("--model", default=None, help="image model folder or ViT hub id (default: the bundled model)")
    ap.add_argument("--images", type=int, default=1000, help="generated images to score (default 1000)")
    ap.add_argument("--image-seed", type=int, default=FAITHFULNESS_SEED, help="seed of the generated images")
    ap.add_argument("--target", choices=("predicted", "true"), default="predicted", help="class explained")
    add_options(ap)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        methods = check_options(args)
        if args.images < 1:
            raise InputError("--images must be at least 1.")
        import attnviz
        from attnviz.image import generated_shapes
        from attnviz.image.explanation_scores import IMAGE_METHODS

        check_methods(methods, IMAGE_METHODS)
        model = attnviz.load_image_model(args.model, device=args.device)
        if args.target == "true" and set(model.classes) != set(generated_shapes.CLASSES):
            raise InputError(f"--target true needs a model of the generated shapes' classes; {model.name} has others.")
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    size = model.input_size[0]
    print(f"{args.images:,} generated images (seed {args.image_seed}) · model {model.name}", file=sys.stderr)

    def samples():
        for i in range(args.images):
            yield f"image {i}", generated_shapes.shape_sample(args.image_seed, i, size)

    def score(sample):
        target = sample.label if args.target == "true" else None
        return attnviz.score_explanations(
            model,
            sample.image,
            target=target,
            methods=methods,
            steps=args.steps,
            random_orders=args.random_orders,
            seed=args.seed,
        )

    bar = tqdm(total=args.images, desc="scoring", unit="img", disable=args.quiet, file=sys.stderr)
    try:
        with StopRequest() as stop:
            run = score_inputs(
                samples(),
                score,
                total=args.images,
                progress=lambda done, total: bar.update(1),
                should_stop=lambda: stop.asked,
            )
    finally:
        bar.close()
    settings = {
        "model": model.name,
        "images": args.images,
        "image_seed": args.image_seed,
        "target": args.target,
        "steps": args.steps,
        "random_orders": args.random_orders,
        "seed": args.seed,
        "methods": methods,
        "code": code_version(),
    }
    text = write_results(run, settings, out=args.out, json_path=args.json, markdown=args.markdown)
    for name, reason in run.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    print(text)
    return EXIT_STOPPED if run.stopped else 0


if __name__ == "__main__":
    sys.exit(main())
