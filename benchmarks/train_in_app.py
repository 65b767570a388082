"""Training in the app, measured: 2 classes x 50 images at 64 x 64, then accuracy on a separate test set.

    python benchmarks/train_in_app.py                       # circle vs cross, 50 each, 90 s budget
    python benchmarks/train_in_app.py --budget 60 --size 128
    python benchmarks/train_in_app.py --cluttered           # the bundled model's cluttered shapes instead

The images (``separable_image``): one dark shape, circle or cross, of random colour, size (30-60 % of the
side), place and rotation, on a light background of random tint with a mild gradient and a little noise,
so the two classes are told apart by their shape only, and a person sorts them at a glance. Training
images and test images come from different seeds: the test images are fresh, never seen in training or
in the choice of the kept checkpoint. The zip goes through the very function the app's training page
runs (``train_from_zip``: unpack, check, train with the app's batch, one CPU thread as the panel's
worker has), with a time budget and the panel's "rotated or mirrored, same class" switch
(``--augment dihedral``); the saved model is then loaded through ``attnviz.load_image_model`` and scored
on the test set with ``attnviz.image_attention``. The target (issue 17): >= 90 % held-out accuracy
within 2 minutes, all in (unpacking, reading, training, domain check, saving). The same fresh images
measure the model's domain check (issue 17: at most 5 % of them flagged as unlike the upload), and
images unlike it (photographs, scans, noise, flat colours, cluttered shapes) its detection.

``--cluttered`` uses the bundled model's generated shapes (clutter, stripes, noise behind the shape):
with 45 training images a class they are memorised rather than learnt (the first run: 50 % on fresh
images after 60 s).

Writes ``benchmarks/results-train-in-app.md``. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import attnviz  # noqa: E402
from attnviz.image import generated_shapes  # noqa: E402
from attnviz.image.training_archive import APP_BATCH, train_from_zip  # noqa: E402

TRAIN_SEED, TEST_SEED = 9001, 9002  # used by no other data set of the project
_SUPERSAMPLE = 4


def _outline(shape: str) -> list[tuple[float, float]]:
    """The shape's polygon, unit bounding circle: a 48-gon circle, or a plus whose arms are a third as wide."""
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
        return list(zip(np.cos(t), np.sin(t), strict=True))
    if shape == "cross":
        a = 1 / np.sqrt(1 + 1 / 9)
        w = a / 3
        quarter = np.array([[w, -a], [w, -w], [a, -w]])
        turns = [np.array(r) for r in ([[1, 0], [0, 1]], [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]])]
        return [tuple(p) for p in np.concatenate([quarter @ r.T for r in turns])]
    raise ValueError(f"unknown shape {shape!r} (circle or cross)")


def separable_image(shape: str, seed: int, index: int, size: int) -> Image.Image:
    """One image of ``shape`` (circle or cross): see the module docstring. A pure function of its arguments."""
    rng = np.random.default_rng([seed, index])
    big = size * _SUPERSAMPLE
    tint = rng.uniform(170, 245, 3)
    ramp = np.linspace(-1, 1, size)
    angle = rng.uniform(0, 2 * np.pi)
    gradient = rng.uniform(0, 20) * (np.cos(angle) * ramp[None, :] + np.sin(angle) * ramp[:, None])
    background = tint[None, None, :] + gradient[:, :, None] + rng.normal(0, 5, (size, size, 3))
    radius = rng.uniform(0.15, 0.3) * big
    centre = rng.uniform(radius, big - radius, 2)
    turn = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    points = np.array(_outline(shape)) @ rotation.T * radius + centre
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).polygon([tuple(p) for p in points], fill=255)
    cover = np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float64)[:, :, None] / 255
    colour = rng.uniform(0, 110, 3)
    pixels = background * (1 - cover) + colour[None, None, :] * cover
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def sample(shape: str, seed: int, index: int, size: int, cluttered: bool) -> Image.Image:
    if cluttered:
        return generated_shapes.shape_sample(seed, index, size, label=shape).image
    return separable_image(shape, seed, index, size)


def shape_zip(shapes: list[str], per_class: int, seed: int, size: int, cluttered: bool = False) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k, shape in enumerate(shapes):
            for i in range(per_class):
                image = sample(shape, seed, k * 100_000 + i, size, cluttered)
                png = io.BytesIO()
                image.save(png, "PNG")
                z.writestr(f"shapes/{shape}/{i:03d}.png", png.getvalue())
    return buf.getvalue()


def unfamiliar_sets(size: int) -> dict[str, np.ndarray]:
    """Images unlike any upload of drawn shapes: the domain check's detection sets (as benchmarks/domain_check.py)."""
    from attnviz.image import unfamiliar_images as unfamiliar

    return {
        "photographs (scikit-learn's 2 samples, whole + 20 crops each)": unfamiliar.photographs(size),
        "greyscale scan-like phantoms": unfamiliar.scan_like(50, size, seed=1),
        "uniform noise": unfamiliar.uniform_noise(50, size, seed=2),
        "Gaussian noise": unfamiliar.gaussian_noise(50, size, seed=3),
        "flat colours": unfamiliar.flat_colours(50, size, seed=4),
        "the bundled model's cluttered shapes": np.stack(
            [np.asarray(generated_shapes.shape_sample(TEST_SEED, i, size).image) for i in range(50)]
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="circle,cross")
    parser.add_argument("--per-class", type=int, default=50)
    parser.add_argument("--test-per-class", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--budget", type=float, default=90.0, help="the panel's time budget, seconds of training")
    parser.add_argument("--augment", choices=["dihedral", "hflip", "none"], default="dihedral")
    parser.add_argument("--cluttered", action="store_true", help="the bundled model's cluttered shapes")
    parser.add_argument("--sample", type=Path, help="also save a strip of training images here (PNG)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-train-in-app.md")
    args = parser.parse_args()
    shapes = args.shapes.split(",")
    torch.set_num_threads(1)  # as the panel's worker thread
    data = shape_zip(shapes, args.per_class, TRAIN_SEED, args.size, args.cluttered)
    if args.sample:
        strip = Image.new("RGB", (args.size * 8, args.size * len(shapes)))
        for k, shape in enumerate(shapes):
            for i in range(8):
                image = sample(shape, TRAIN_SEED, k * 100_000 + i, args.size, args.cluttered)
                strip.paste(image, (i * args.size, k * args.size))
        strip.save(args.sample)
    load = os.getloadavg()[0]
    curve: list[tuple[int, float, float | None, float]] = []

    def progress(p) -> None:
        if p.step % 25 == 0 or p.fraction >= 1:
            curve.append((p.step, p.loss, p.held_out_accuracy, p.seconds))
            held = "-" if p.held_out_accuracy is None else f"{p.held_out_accuracy:.0%}"
            print(f"  step {p.step:5d}  loss {p.loss:.3f}  held-out {held}  {p.seconds:5.1f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        card, unpacked = train_from_zip(
            data,
            Path(tmp) / "model",
            size=args.size,
            time_budget=args.budget,
            progress=progress,
            name="shapes.zip",
            augment=args.augment,
        )
        wall = time.perf_counter() - started
        model = attnviz.load_image_model(str(Path(tmp) / "model"), device="cpu")
        hits, n, alarms = 0, 0, 0
        for k, shape in enumerate(shapes):
            for i in range(args.test_per_class):
                image = sample(shape, TEST_SEED, k * 100_000 + i, args.size, args.cluttered)
                result = attnviz.image_attention(model, image)
                hits += result.predictions[0][0] == shape
                alarms += result.out_of_domain  # a fresh image of the training classes: a false alarm
                n += 1
        # The domain check on images unlike the upload (attnviz.image.unfamiliar_images): the share flagged.
        detected = {
            name: np.mean([attnviz.image_attention(model, Image.fromarray(x)).out_of_domain for x in images])
            for name, images in unfamiliar_sets(args.size).items()
            if len(images)
        }
    accuracy = hits / n
    domain = card["domain_check"]
    used = ", ".join(f"{k} ({v['images']})" for k, v in domain["calibration"].items())
    training = card["training"]
    shown = curve[:: max(1, len(curve) // 12)]
    shown += [c for c in curve[-1:] if c not in shown]
    met = "met" if accuracy >= 0.9 and wall <= 120 else "MISSED"
    lines = [
        "# Training in the app (benchmarks/train_in_app.py)",
        "",
        f"Data: {'cluttered generated shapes' if args.cluttered else 'separable shapes (`separable_image`)'}, "
        f"{' vs '.join(shapes)}, {args.per_class} per class at {args.size} x {args.size} "
        f"(zip of {len(data) / 1e3:.0f} kB; {unpacked.summary()}); test set: {n} fresh images "
        f"({args.test_per_class} per class, another seed).",
        f"Settings: the panel's (`train_from_zip`): batch {APP_BATCH}, time budget {args.budget:.0f} s, "
        f"augment {training['augment']} with shifts of up to {training.get('shift_pixels', 0)} px, "
        f"the best held-out checkpoint kept (step {training.get('kept_step', '-')}), "
        f"one CPU thread; {os.cpu_count()} CPU cores, 1-minute load average {load:.1f} at the start "
        "(the machine is shared with other jobs).",
        "",
        "| | |",
        "|---|---|",
        f"| steps done | {training['steps']} ({training['stopped'] or 'all steps'}) |",
        f"| training time | {training['train_seconds']:.1f} s |",
        f"| wall time, zip to saved model | {wall:.1f} s |",
        f"| held-out accuracy (10 % of the upload, {card['data'].split(', ')[-1]}) | "
        f"{card['metrics']['validation_accuracy']:.0%} |",
        f"| **test accuracy ({n} fresh images)** | **{accuracy:.1%}** |",
        f"| target: >= 90 % within 120 s | {met} |",
        f"| **domain check: fresh test images flagged as unlike the upload (false alarms)** | "
        f"**{alarms}/{n} = {alarms / n:.1%}** (issue 17: at most 5 %; the card's bound "
        f"{domain['false_alarm_bound']:.1%}) |",
        f"| domain check: scores used (calibration images) | {used} |",
        f"| domain check: scores left out (too few held-out images) | {', '.join(domain['scores_left_out']) or '-'} |",
        "",
        "The domain check on images unlike the upload (`attnviz.image.unfamiliar_images`), share flagged:",
        "",
        "| images | n | flagged |",
        "|---|---:|---:|",
        *[f"| {name} | {len(unfamiliar_sets(args.size)[name])} | {share:.0%} |" for name, share in detected.items()],
        "",
        "Curve (step, training loss, held-out accuracy, seconds):",
        "",
        "| step | loss | held-out | s |",
        "|---:|---:|---:|---:|",
        *[f"| {s} | {lo:.3f} | {'-' if h is None else f'{h:.0%}'} | {t:.1f} |" for s, lo, h, t in shown],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
