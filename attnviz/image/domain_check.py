"""Does the model know this kind of image? The domain check of a CNN-attention model.

A trained model (the bundled one, or one from ``python -m attnviz.image.train``) carries a check
fitted on its training images and calibrated on images that did not shape each score (the scores and
their calibration: :mod:`attnviz.maths.domain_scores`, Lee et al. 2018's Mahalanobis distance on two
layers and a colour thumbnail, Liu et al. 2020's energy, Serrà et al. 2020's PNG size). The network's
scores are calibrated on the held-out images only; a model trained on a few hundred images has too
few of those for a share of the false-alarm budget, so its check leaves them out, and the card says
so (``scores_left_out``). Every image the page classifies is scored in the same forward pass; past the
calibrated threshold, :class:`~attnviz.image.extraction.ImageAttention` says so
(``out_of_domain``, ``domain_note``) and the page shows the note above the predictions.

Files: ``domain_check.safetensors`` beside the weights (the class means and precisions as arrays,
the thresholds in its metadata), and a ``domain_check`` entry in the model card with the file's
SHA-256 and the calibration's figures. The loader refuses a file that does not match its hash.

Re-fit the bundled model's check (after retraining it)::

    python -m attnviz.image.domain_check            # 5,000 training images, 2,000 held out
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from attnviz.errors import ModelLoadError
from attnviz.maths.domain_scores import (
    BITS,
    ENERGY,
    TOO_COMPLEX,
    TOO_SIMPLE,
    Calibration,
    ClassGaussians,
    DomainCheck,
    calibrate,
    fit_gaussians,
    mahalanobis,
)
from attnviz.weight_files import sha256_of

DOMAIN_FILE = "domain_check.safetensors"
#: The calibration's target share of held-out training-domain images flagged. Below the issue's
#: 5 %, because a quantile of 2,000 images is itself uncertain (fresh images measured 3.x %: see
#: ``benchmarks/results-domain-check.md``).
FALSE_ALARM = 0.03
#: The most false alarms issue 17 allows on new images like the training ones: what a note says is exceeded
#: when a check's calibration sets were too small for its target.
PROMISED = 0.05
FEATURES = ("class_token", "stem", "thumbnail")
#: The features the network computes; the thumbnail is the image's own colours, whatever the network.
NETWORK_FEATURES, THUMBNAIL = ("class_token", "stem"), "thumbnail"
#: Folds of the thumbnail's out-of-fold calibration.
FOLDS = 10
METHOD = (
    "out of domain when any of six scores passes its threshold: the Mahalanobis distance (Lee et al. 2018) "
    "of the class token, of the last convolution's channel statistics and of a 4 x 4 colour thumbnail to the "
    "nearest class, the energy -logsumexp(logits) (Liu et al. 2020), and the PNG bits per pixel, too few or too "
    "many (input complexity, Serrà et al. 2020); each threshold a split-conformal quantile of its score over "
    "images that did not shape it (the network's scores: held-out images; the thumbnail: all images, out of "
    "fold; the PNG size: all images), the false-alarm budget shared between the scores (union bound), so that "
    "at most the target of fresh images like the training ones are flagged; a score with too few calibration "
    "images for a share is left out"
)
#: The bundled model's check, calibrated before the split-conformal calibration (its card keeps this text).
OLD_METHOD = (
    "out of domain when any of six scores passes its threshold: the Mahalanobis distance (Lee et al. 2018) "
    "of the class token, of the last convolution's channel statistics and of a 4 x 4 colour thumbnail to the "
    "nearest class, the energy "
    "-logsumexp(logits) (Liu et al. 2020), and the PNG bits per pixel, too few or too many (input complexity, "
    "Serrà et al. 2020); thresholds calibrated on held-out training-domain images"
)


def png_bits_per_pixel(images: np.ndarray) -> np.ndarray:
    """uint8 images ``[N, S, S, 3]`` -> ``[N]`` bits per pixel of each as a PNG (Serrà et al.'s complexity)."""
    out = np.empty(len(images))
    for i, pixels in enumerate(images):
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=6)
        out[i] = 8 * len(buffer.getvalue()) / (pixels.shape[0] * pixels.shape[1])
    return out


def features_of(
    model: torch.nn.Module, images: np.ndarray, batch: int = 250
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """uint8 images ``[N, S, S, 3]`` -> ({feature name: ``[N, D]``, BITS: ``[N]``}, logits ``[N, K]``), float64."""
    device = next(model.parameters()).device
    feats: dict[str, list[np.ndarray]] = {name: [] for name in FEATURES}
    logits = []
    with torch.inference_mode():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch])).permute(0, 3, 1, 2)
            out, f = model(x.float().div_(255).to(device), return_features=True)
            logits.append(out.double().cpu().numpy())
            for name in FEATURES:
                feats[name].append(f[name].double().cpu().numpy())
    out = {k: np.concatenate(v) for k, v in feats.items()}
    out[BITS] = png_bits_per_pixel(images)
    return out, np.concatenate(logits)


def _out_of_fold(features: np.ndarray, labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Each row's Mahalanobis distance under Gaussians fitted on the other folds (``folds`` random folds)."""
    assign = np.random.default_rng(seed).permutation(len(features)) % min(folds, len(features))
    out = np.empty(len(features))
    for fold in np.unique(assign):
        inside = assign == fold
        out[inside] = mahalanobis(features[inside], fit_gaussians(features[~inside], labels[~inside]))
    return out


def fit_domain_check(
    model: torch.nn.Module,
    fit_images: np.ndarray,
    fit_labels: np.ndarray,
    calibration_images: np.ndarray,
    calibration_labels: np.ndarray | None = None,
    false_alarm: float = FALSE_ALARM,
    seed: int = 0,
) -> DomainCheck:
    """Fit the Gaussians and calibrate every score on images that did not shape it (:func:`calibrate`).

    The network's scores (class token, convolution statistics, energy): Gaussians fitted on the training
    images ``fit_images`` (with their true labels), calibrated on the held-out ``calibration_images`` only,
    since the network was trained on the others. The thumbnail and the PNG size do not depend on the
    network: the thumbnail's Gaussians are fitted on all the images (held-out ones too when
    ``calibration_labels`` are given) and calibrated on each image's distance out of fold
    (:data:`FOLDS` folds; each fold's Gaussians have a tenth fewer images than the final ones, so the
    distances are if anything larger: conservative), the PNG size on all the images as they are.
    """
    model.eval()
    fit_feats, _ = features_of(model, fit_images)
    cal_feats, cal_logits = features_of(model, calibration_images)
    gaussians = {name: fit_gaussians(fit_feats[name], fit_labels) for name in NETWORK_FEATURES}
    if calibration_labels is not None:
        all_thumbs = np.concatenate([fit_feats[THUMBNAIL], cal_feats[THUMBNAIL]])
        all_labels = np.concatenate([np.asarray(fit_labels), np.asarray(calibration_labels)])
    else:
        all_thumbs, all_labels = fit_feats[THUMBNAIL], np.asarray(fit_labels)
    gaussians[THUMBNAIL] = fit_gaussians(all_thumbs, all_labels)
    thumb_scores = _out_of_fold(all_thumbs, all_labels, FOLDS, seed)
    if calibration_labels is None:  # the held-out images were not fitted on: their own distances
        thumb_scores = np.concatenate([thumb_scores, mahalanobis(cal_feats[THUMBNAIL], gaussians[THUMBNAIL])])
    bits = np.concatenate([fit_feats[BITS], cal_feats[BITS]])
    held_out = DomainCheck(gaussians, {}, false_alarm, 0.0).scores(cal_feats, cal_logits)
    # The order settles ties between equal calibration sets: the cheapest, sturdiest scores first.
    scores = {TOO_SIMPLE: -bits, TOO_COMPLEX: bits, THUMBNAIL: thumb_scores}
    scores |= {name: held_out[name] for name in (ENERGY, *NETWORK_FEATURES)}
    calibration = calibrate(scores, false_alarm)
    return DomainCheck(gaussians, calibration.thresholds, false_alarm, calibration.bound, calibration)


def save_domain_check(check: DomainCheck, folder: Path, *, fit_images: int, calibration_images: int) -> dict:
    """Write ``domain_check.safetensors`` into ``folder``; returns the model card's ``domain_check`` entry."""
    arrays = {}
    for name, g in check.gaussians.items():
        arrays[f"{name}.means"] = np.ascontiguousarray(g.means, dtype=np.float64)
        arrays[f"{name}.precision"] = np.ascontiguousarray(g.precision, dtype=np.float64)
    meta = {
        "thresholds": json.dumps(check.thresholds),
        "false_alarm": repr(check.false_alarm),
        "calibration_rate": repr(check.calibration_rate),
    }
    cal = check.calibration
    if cal is not None:
        meta["calibration"] = json.dumps(
            {"shares": cal.shares, "sizes": cal.sizes, "ranks": cal.ranks, "left_out": list(cal.left_out)}
        )
    path = Path(folder) / DOMAIN_FILE
    save_file(arrays, str(path), metadata=meta)
    entry = {
        "file": DOMAIN_FILE,
        "sha256": sha256_of(path),
        "method": METHOD if cal is not None else OLD_METHOD,
        "false_alarm_target": check.false_alarm,
    }
    if cal is None:
        entry["calibration_false_alarm"] = round(check.calibration_rate, 4)
    else:
        entry["false_alarm_bound"] = round(cal.bound, 4)
        entry["calibration"] = {
            k: {"images": cal.sizes[k], "share": round(cal.shares[k], 5), "rank": cal.ranks[k]} for k in cal.thresholds
        }
        entry["scores_left_out"] = list(cal.left_out)
    entry |= {
        "fit_images": int(fit_images),
        "calibration_images": int(calibration_images),
        "thresholds": {k: round(v, 4) for k, v in check.thresholds.items()},
    }
    return entry


def load_domain_check(folder: Path, card: dict, hint: str = "") -> DomainCheck | None:
    """The check a model card names (None when it names none); ModelLoadError for a bad file."""
    entry = card.get("domain_check")
    if entry is None:
        return None
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("file"), str)
        or not isinstance(entry.get("sha256"), str)
    ):
        raise ModelLoadError(f"The model card's domain_check entry is malformed (it needs file and sha256). {hint}")
    path = Path(folder) / Path(entry["file"]).name  # a name only: the card cannot point outside the folder
    try:
        actual = sha256_of(path)
    except OSError as exc:
        raise ModelLoadError(
            f"{path} (the model's domain check) cannot be read ({type(exc).__name__}). {hint}"
        ) from exc
    if actual != entry["sha256"]:
        raise ModelLoadError(f"{path} does not match the SHA-256 in its model card: damaged or replaced. {hint}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        arrays = load_file(str(path))
        thresholds = {str(k): float(v) for k, v in json.loads(meta["thresholds"]).items()}
        names = sorted({key.rsplit(".", 1)[0] for key in arrays})  # the features this check was fitted on
        gaussians = {name: ClassGaussians(arrays[f"{name}.means"], arrays[f"{name}.precision"]) for name in names}
        false_alarm, rate = float(meta["false_alarm"]), float(meta["calibration_rate"])
        calibration = None
        if "calibration" in meta:  # a split-conformal calibration (older checks have none)
            c = json.loads(meta["calibration"])
            calibration = Calibration(
                thresholds=thresholds,
                shares={str(k): float(v) for k, v in c["shares"].items()},
                sizes={str(k): int(v) for k, v in c["sizes"].items()},
                ranks={str(k): int(v) for k, v in c["ranks"].items()},
                left_out=tuple(str(k) for k in c["left_out"]),
                bound=rate,
                false_alarm=false_alarm,
            )
        return DomainCheck(gaussians, thresholds, false_alarm, rate, calibration)
    except (OSError, KeyError, ValueError, TypeError, SafetensorError) as exc:
        raise ModelLoadError(
            f"{path} (the model's domain check) could not be read ({type(exc).__name__}: {exc}). {hint}"
        ) from exc


def shortfall_words(fewest: int, bound: float, target: float) -> str:
    """The one sentence for a check whose calibration sets were too small for its target (the page's note and
    the training page's card both say it): how many images, and what to expect instead."""
    if bound > PROMISED:
        return (
            f"calibrated on {fewest} images only: expect more false alarms than {max(PROMISED, target):.0%}, "
            f"up to about {bound:.0%} of images like the training ones"
        )
    return (
        f"calibrated on {fewest} images only: expect up to {bound:.1%} false alarms, more than the {target:.0%} "
        "aimed at"
    )


def calibration_words(check: DomainCheck) -> str:
    """What the check's false-alarm rate is, in words: its bound, or plainly that it is above the target."""
    cal = check.calibration
    if cal is None:  # an older check (the bundled model's), calibrated on its 2,000 held-out images
        return f"calibrated to flag {check.false_alarm:.0%} of held-out training images"
    if not cal.supported:
        return shortfall_words(min(cal.sizes.values()), cal.bound, check.false_alarm)
    return f"calibrated to flag at most {cal.bound:.1%} of new images like the training ones"


def domain_verdict(check: DomainCheck | None, card: dict, features: dict, logits: np.ndarray) -> tuple[bool, str]:
    """(out of domain?, the note the page shows) for one image's features and logits."""
    classes = ", ".join(card.get("classes", []))
    trained_on = card.get("data", "its training images")
    if check is None:
        return False, (
            "Not checked: this model carries no domain check (models trained with attnviz carry one), so nothing "
            "says whether it knows images like this one."
        )
    scores = check.scores(features, logits)
    # How far past its threshold each passing score is, relative to the threshold: the note names the furthest.
    over = {
        k: (float(scores[k][0]) - t) / max(abs(t), 1e-9) for k, t in check.thresholds.items() if float(scores[k][0]) > t
    }
    if not over:
        return False, (
            "Like the training images: every score of the domain check is within its threshold "
            f"({calibration_words(check)})."
        )
    words = {
        "class_token": "Its class-token features are further from every class",
        "stem": "Its convolution statistics are further from every class",
        "thumbnail": "Its colours and layout (at 4 x 4 cells) are further from every class",
        "energy": "The model's energy (how unsure it is of every class) is higher",
        "too simple": "It is simpler (fewer PNG bits per pixel)",
        "too complex": "It is busier (more PNG bits per pixel)",
    }
    worst = max(over, key=over.get)
    return True, (
        f"This image is unlike anything the model was trained on ({trained_on}; classes: {classes}). "
        f"{words.get(worst, worst)} than the model's training images ({calibration_words(check)}). The model "
        "still answers with one of its classes, and the maps show where it looked, but neither the prediction nor "
        "the maps say anything about this image's content. Try a demo "
        "image, or train a model on your own images (the app's Train on your images page, or "
        "python -m attnviz.train --data FOLDER)."
    )


def main(argv: list[str] | None = None) -> int:
    from attnviz.image import generated_shapes
    from attnviz.image.loading import load_image_model
    from attnviz.image.model_files import BUNDLED_DIR, CARD_FILE
    from attnviz.image.train import TRAIN_SEED, VAL_SEED, _generated

    ap = argparse.ArgumentParser(prog="python -m attnviz.image.domain_check", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", type=Path, default=BUNDLED_DIR, help="a CNN-attention folder trained on generated shapes"
    )
    ap.add_argument("--fit-images", type=int, default=5000)
    ap.add_argument("--calibration-images", type=int, default=2000)
    ap.add_argument("--false-alarm", type=float, default=FALSE_ALARM)
    args = ap.parse_args(argv)
    im = load_image_model(str(args.model) if args.model != BUNDLED_DIR else None, device="cpu")
    size = im.input_size[0]
    if list(im.classes) != list(generated_shapes.CLASSES):
        print(
            "error: this command re-fits models trained on generated shapes; a folder model is fitted by train.",
            file=sys.stderr,
        )
        return 2
    fit_x, fit_y = _generated(args.fit_images, TRAIN_SEED, size, "generating training images")
    cal_x, cal_y = _generated(args.calibration_images, VAL_SEED, size, "generating held-out images")
    check = fit_domain_check(im.model, fit_x, fit_y, cal_x, cal_y, args.false_alarm)
    entry = save_domain_check(check, args.model, fit_images=len(fit_x), calibration_images=len(cal_x))
    card_path = args.model / CARD_FILE
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card["domain_check"] = entry
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.model / DOMAIN_FILE}: false alarms at most {check.calibration_rate:.1%} of fresh images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
