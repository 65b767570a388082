"""Does the image page know when an upload is outside what the model knows? The domain check, measured.

    python benchmarks/domain_check.py                 # 1,000 fresh generated images, the bundled model
    python benchmarks/domain_check.py --fresh 300     # quicker
    python benchmarks/domain_check.py --model /tmp/copy --out /tmp/r.md   # a copy, its check re-fitted

The bundled model's check (``assets/image-model/domain_check.safetensors``, fitted by
``python -m attnviz.image.domain_check`` on 5,000 training images and calibrated on 2,000 held-out
ones, seeds 1 and 2 of ``attnviz.image.train``) is scored on images it has never seen:

- **false alarms**: ``--fresh`` generated shapes from a seed used by no training, validation, test
  or calibration set (the share flagged; the target is at most 5 %);
- **detection**: the sample photographs scikit-learn ships (whole and 20 random crops each),
  greyscale scan-like phantoms, uniform and Gaussian noise, and flat colours
  (``attnviz.image.unfamiliar_images``): the share flagged, and which score flagged them;
- **time**: the check's own cost per image (the image's PNG size and the six scores, on features the
  page's forward pass returns anyway; target at most 5 ms), and a whole ``image_attention`` call with it, one thread.

Writes ``benchmarks/results-domain-check.md``. Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FRESH_SEED = 5150  # not a seed of attnviz.image.train (1, 2, 3) nor of the faithfulness benchmarks


def calibration_line(check, entry: dict) -> str:
    """How the check was calibrated: an older check's in-sample rate, or the split-conformal bound."""
    if check.calibration is None:
        return (
            f"Calibrated to flag {check.false_alarm:.0%} of {entry['calibration_images']:,} held-out "
            f"images (it flags {check.calibration_rate:.1%} of them)."
        )
    sets = ", ".join(f"{k} on {n:,}" for k, n in check.calibration.sizes.items())
    return (
        f"Calibrated split-conformally for at most {check.false_alarm:.0%} false alarms (each score on images that "
        f"did not shape it: {sets}); the union's bound {check.calibration_rate:.2%}"
        + (f"; left out: {', '.join(check.calibration.left_out)}." if check.calibration.left_out else ".")
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fresh", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-domain-check.md")
    ap.add_argument("--model", help="a copy of the bundled model's folder (say, with its check re-fitted)")
    args = ap.parse_args()

    import torch
    from PIL import Image

    import attnviz
    from attnviz.image import unfamiliar_images as unfamiliar
    from attnviz.image.domain_check import features_of, png_bits_per_pixel
    from attnviz.image.train import _generated
    from attnviz.maths.domain_scores import BITS, flagged

    torch.set_num_threads(1)
    im = attnviz.load_image_model(args.model, device="cpu")
    check = im.domain
    size = im.input_size[0]
    fresh, _ = _generated(args.fresh, FRESH_SEED, size, "generating fresh images")
    sets = {
        f"fresh generated shapes (seed {FRESH_SEED})": fresh,
        "photographs (scikit-learn's 2 samples, whole + 20 crops each)": unfamiliar.photographs(size),
        "greyscale scan-like phantoms": unfamiliar.scan_like(100, size, seed=1),
        "uniform noise": unfamiliar.uniform_noise(100, size, seed=2),
        "Gaussian noise": unfamiliar.gaussian_noise(100, size, seed=3),
        "flat colours": unfamiliar.flat_colours(100, size, seed=4),
    }
    rows = []
    for name, images in sets.items():
        if len(images) == 0:
            rows.append(f"| {name} | 0 | (scikit-learn absent) | | | |")
            continue
        feats, logits = features_of(im.model, images)
        scores = check.scores(feats, logits)
        union = flagged(scores, check.thresholds)
        each = " | ".join(f"{(scores[k] > t).mean():.1%}" for k, t in check.thresholds.items())
        rows.append(f"| {name} | {len(images)} | **{union.mean():.1%}** | {each} |")
        print(rows[-1], flush=True)

    # The check's own cost: one image's PNG size and the six scores of its features.
    feats, logits = features_of(im.model, fresh[:1])
    reps = 500
    began = time.perf_counter()
    for _ in range(reps):
        feats[BITS] = png_bits_per_pixel(fresh[:1])
        check.flags(feats, logits)
    check_ms = (time.perf_counter() - began) / reps * 1000
    image = Image.fromarray(fresh[0])
    attnviz.image_attention(im, image)  # warm-up
    began = time.perf_counter()
    for _ in range(50):
        attnviz.image_attention(im, image)
    call_ms = (time.perf_counter() - began) / 50 * 1000

    heads = " | ".join(check.thresholds)
    lines = [
        "# The image domain check, measured (issue 17)",
        "",
        f"`python benchmarks/domain_check.py --fresh {args.fresh}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())};"
        f" torch {torch.__version__}, one thread. The bundled model's check: {im.card['domain_check']['method']}.",
        calibration_line(check, im.card["domain_check"]),
        "",
        f"| images | n | flagged (any score) | {heads} |",
        "|---|---:|---:|" + "---:|" * len(check.thresholds),
        *rows,
        "",
        f"Time: the check itself (the PNG size, the six scores) {check_ms:.2f} ms per image (target ≤ 5 ms); "
        "a whole `image_attention` call "
        f"(resize, forward pass with attention and features, the check, the result) {call_ms:.1f} ms.",
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
