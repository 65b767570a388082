"""Train the CNN-attention image model: ``python -m attnviz.image.train``.

With no ``--data`` it trains the bundled model on generated shapes (``attnviz.image.generated_shapes``) and
writes ``assets/image-model/``: ``model.safetensors`` and ``model_card.json`` (classes, input
size, seed, training time, metrics). With ``--data FOLDER`` (one subfolder of images per class)
it trains on the user's own images and writes to ``--out`` (default: a new folder under the app's
trained-models folder, ``<tmp>/attnviz-trained/command-line/<data folder>-<size>``). Same seed, same
machine, same thread count: same weights.

    python -m attnviz.image.train                          # the bundled model (~16 min on 2 idle CPU cores)
    python -m attnviz.image.train --steps 40 --out /tmp/m  # a smoke run
    python -m attnviz.image.train --data my_photos/ --out my-model/
    python -m attnviz.train --data my_photos/ --size 128   # saved under <tmp>/attnviz-trained/command-line/
    python -m attnviz.train --data my_photos/ --out my-model/ --size 128 --time-budget 120

``--size`` (64, 128 or 224) picks the input size, each with its own grid and strides
(:data:`SIZE_CONFIGS`); ``--time-budget`` stops training when that many seconds are spent (the
learning rate then decays over the time instead of the steps). :func:`train` also takes a
``progress`` callback (steps, loss, held-out accuracy) and a ``stop`` event, honoured between
steps: a stopped run still saves a usable model, and its card says that it was stopped. The
app's "Train on your images" page (``attnviz.ui.image_training``) runs this same function.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

from attnviz.device import pick_device
from attnviz.errors import InputError
from attnviz.image import generated_shapes
from attnviz.image.cnn_attention import CnnAttention, CnnAttentionConfig
from attnviz.image.domain_check import fit_domain_check, save_domain_check
from attnviz.image.model_files import BUNDLED_DIR, CARD_FILE, WEIGHTS_FILE
from attnviz.image.training_archive import COMMAND_LINE_DIR, TRAINED_ROOT, new_model_folder
from attnviz.weight_files import sha256_of

#: Generated data: train, validation and test sets come from different seeds, never overlapping.
TRAIN_SEED, VAL_SEED, TEST_SEED = 1, 2, 3
DOMAIN_FIT_IMAGES = 5000
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}
#: Input sizes and the grid and stem strides of each (image_size = grid x product of strides). 64 is the
#: bundled model's; 128 adds a stride to keep 8 x 8 cells; 224 has 14 x 14 cells (197 tokens, still cheap on CPU).
SIZE_CONFIGS: dict[int, dict] = {
    64: {"grid": 8, "stem_strides": (2, 2, 1, 2)},
    128: {"grid": 8, "stem_strides": (2, 2, 2, 2)},
    224: {"grid": 14, "stem_strides": (2, 2, 2, 2)},
}
SIZES = tuple(SIZE_CONFIGS)
#: Why a run ended before its steps: the visitor's Stop, or the time budget.
STOPPED_BY_STOP, STOPPED_BY_TIME = "stopped", "time budget spent"


def size_config(size: int, n_classes: int) -> CnnAttentionConfig:
    """The model's config for input ``size`` (one of :data:`SIZES`)."""
    if size not in SIZE_CONFIGS:
        raise InputError(f"Input size {size} is not offered: choose one of {', '.join(map(str, SIZES))}.")
    return CnnAttentionConfig(n_classes=n_classes, image_size=size, **SIZE_CONFIGS[size])


@dataclass(frozen=True)
class TrainProgress:
    """What a running training reports: steps done, the last step's loss, the latest held-out accuracy."""

    step: int
    steps: int  # the most steps the run may take
    loss: float
    held_out_accuracy: float | None  # None until first measured
    seconds: float  # training time so far
    time_budget: float | None

    @property
    def fraction(self) -> float:
        """Share of the run done: steps or time, whichever is further along."""
        done = self.step / max(1, self.steps)
        if self.time_budget:
            done = max(done, self.seconds / self.time_budget)
        return min(1.0, done)


# ------------------------------------------------------------------------ data


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, S, S, 3) -> float (N, 3, S, S) in [0, 1], channels-last in memory."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255)
    return x.contiguous(memory_format=torch.channels_last)


def _generated(n: int, seed: int, size: int, desc: str) -> tuple[np.ndarray, np.ndarray]:
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    labels = np.empty(n, dtype=np.int64)
    for i in tqdm(range(n), desc=desc, unit="img", mininterval=1.0, leave=False):
        s = generated_shapes.shape_sample(seed, i, size)
        images[i], labels[i] = np.asarray(s.image), s.label_index
    return images, labels


def folder_dataset(folder: Path, size: int, min_per_class: int = 1) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images from ``folder/<class>/*``, resized to ``size`` x ``size``; classes sorted by name.

    A class with fewer than ``min_per_class`` readable images is an InputError (files that do not
    decode are skipped and do not count).
    """
    from attnviz.image.decoding import open_image  # PIL checks for every file

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder: give a folder with one subfolder of images per class.")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise InputError(f"{folder} needs at least two class subfolders (found {len(classes)}).")
    images, labels, skipped = [], [], 0
    for index, name in enumerate(classes):
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"Class folder {name!r} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}).")
        readable = 0
        for path in files:
            try:
                image = open_image(path)
            except InputError:
                skipped += 1  # one bad file should not stop a long run; counted below
                continue
            # Resized as the model sees every image (ImageModel.pixels, bilinear): trained on what it will be shown,
            # and the domain check's PNG sizes calibrated on the same resampling (bicubic adds ~0.75 bits per pixel).
            images.append(np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8))
            labels.append(index)
            readable += 1
        if readable < min_per_class:
            raise InputError(
                f"Class {name!r} has {readable} readable image(s) ({len(files) - readable} file(s) named like images "
                f"did not open as images); every class needs at least {min_per_class}. Add images, or replace the "
                "broken ones."
            )
    if skipped:
        print(f"skipped {skipped} file(s) that are not readable images", file=sys.stderr)
    return np.stack(images), np.array(labels, dtype=np.int64), classes


def _augment(x: torch.Tensor, mode: str, gen: torch.Generator, shift: int = 0) -> torch.Tensor:
    """Label-preserving flips: 'dihedral' (shapes look the same rotated by 90° or mirrored), 'hflip'
    (mirrored left to right), 'none'; then, when ``shift`` > 0, each image moved by up to ``shift``
    pixels each way (edges repeated), so that a small set does not teach where things sit."""
    if mode != "none":
        if torch.rand((), generator=gen) < 0.5:
            x = x.flip(3)
        if mode == "dihedral":
            if torch.rand((), generator=gen) < 0.5:
                x = x.flip(2)
            if torch.rand((), generator=gen) < 0.5:
                x = x.transpose(2, 3)
    if shift > 0:
        n, _, h, w = x.shape
        padded = nn.functional.pad(x, (shift, shift, shift, shift), mode="replicate")
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(n, x.shape[1], h, w + 2 * shift)
        x = padded.gather(2, rows)
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(n, x.shape[1], h, w)
        x = x.gather(3, cols)
    return x.contiguous(memory_format=torch.channels_last)


def held_out_split(labels: np.ndarray, seed: int, share: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(held-out indices, training indices): ``share`` of each class, at least one image of each, drawn
    at random with ``seed``. Every class is measured, however few images it has."""
    rng = np.random.default_rng(seed)
    held, kept = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n = max(1, round(share * len(members)))
        held.append(members[:n])
        kept.append(members[n:])
    return rng.permutation(np.concatenate(held)), rng.permutation(np.concatenate(kept))


@torch.no_grad()
def _held_out_score(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) on the held-out images; the model is left in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    logits = torch.cat([model(images[i : i + 500].to(device)).cpu() for i in range(0, len(images), 500)])
    return float((logits.argmax(1) == labels).float().mean()), float(nn.functional.cross_entropy(logits, labels))


# ------------------------------------------------------------------------ training


@torch.no_grad()
def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    device = next(model.parameters()).device
    hits = 0
    for i in range(0, len(images), batch):
        logits = model(images[i : i + batch].to(device))
        hits += int((logits.argmax(1).cpu() == labels[i : i + batch]).sum())
    return hits / max(1, len(images))


def train(
    out_dir: Path = BUNDLED_DIR,
    *,
    data_dir: Path | None = None,
    steps: int = 10_000,
    batch: int = 128,
    n_train: int = 60_000,
    n_val: int = 2_000,
    n_test: int = 2_000,
    lr: float = 3e-3,
    seed: int = 0,
    augment: str | None = None,
    device: torch.device | None = None,
    log: Callable[[str], None] = print,
    size: int = 64,
    time_budget: float | None = None,
    progress: Callable[[TrainProgress], None] | None = None,
    stop: threading.Event | None = None,
    eval_every: int = 25,
    min_per_class: int = 1,
    name: str | None = None,
    data_name: str | None = None,
) -> dict:
    """Train, evaluate and save; returns the model card (also written next to the weights).

    ``size``: the input size (:data:`SIZES`). ``time_budget``: seconds of training, after which the
    run stops (the learning rate decays over whichever of steps and time runs out first).
    ``progress`` is called after every step with a :class:`TrainProgress` (held-out accuracy measured
    every ``eval_every`` steps). ``stop``: when set, the run stops before its next step. A run ended
    either way saves its model all the same, and the card's ``training.stopped`` says why.
    ``min_per_class``: the fewest readable images a class of ``data_dir`` may have. ``name``: the card's name;
    ``data_name``: what its ``data`` calls ``data_dir`` (an upload's name rather than a temporary folder).
    """
    torch.manual_seed(seed)
    config = size_config(size, len(generated_shapes.CLASSES))
    started = time.perf_counter()
    if data_dir is None:
        classes = list(generated_shapes.CLASSES)
        train_x, train_y = _generated(n_train, TRAIN_SEED + 100 * seed, size, "generating train")
        val_x, val_y = _generated(n_val, VAL_SEED + 100 * seed, size, "generating validation")
        test_x, test_y = _generated(n_test, TEST_SEED + 100 * seed, size, "generating test")
        augment = augment or "dihedral"
        shift = 0
        data = f"generated shapes: {n_train} train, {n_val} validation, {n_test} test images"
    else:
        images, labels, classes = folder_dataset(data_dir, size, min_per_class=min_per_class)
        val_idx, train_idx = held_out_split(labels, seed)
        train_x, train_y, val_x, val_y = images[train_idx], labels[train_idx], images[val_idx], labels[val_idx]
        test_x, test_y = val_x, val_y  # a user's folder has no separate test set
        augment = augment or "hflip"
        shift = size // 8  # a user's few images: moved about as well as flipped
        data = (
            f"{data_name or data_dir}: {len(train_idx)} train, {len(val_idx)} validation images "
            "(10% of each class held out)"
        )
    config = size_config(size, len(classes))
    data_seconds = time.perf_counter() - started

    device = device or pick_device()
    model = CnnAttention(config).to(device).to(memory_format=torch.channels_last)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "positions" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 or "positions" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    warmup = max(1, steps // 20)
    train_started = time.perf_counter()
    if time_budget is None:
        # Linear warm-up, then cosine decay to zero: a fixed schedule, so a run is reproducible.
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
        )
    else:
        # The same shape over the run's share done, steps or time, whichever is further: warm-up over its
        # first 5 %, cosine decay to zero at its end, however fast this machine is.
        def _factor(s: int) -> float:
            done = min(1.0, max(s / steps, (time.perf_counter() - train_started) / time_budget))
            return min(1.0, max((s + 1) / warmup, done / 0.05)) * 0.5 * (1 + math.cos(math.pi * done))

        schedule = torch.optim.lr_scheduler.LambdaLR(opt, _factor)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    train_t, train_lab = _to_tensor(train_x), torch.from_numpy(train_y)
    val_t, val_lab = _to_tensor(val_x), torch.from_numpy(val_y)
    gen = torch.Generator().manual_seed(seed)

    model.train()
    bar = tqdm(range(steps), desc="training", unit="step", mininterval=1.0, disable=progress is not None)
    train_started = time.perf_counter()
    stopped, done, held_out = None, 0, None
    # A user's folder: the weights of the best held-out score so far are kept (accuracy, then loss), and saved
    # in the end; a few images are memorised long before a time budget is spent, and later steps can get worse.
    keep_best = data_dir is not None
    best: tuple[tuple[float, float], int, dict] | None = None
    for step in bar:
        if stop is not None and stop.is_set():
            stopped = STOPPED_BY_STOP
            break
        idx = torch.randint(len(train_t), (batch,), generator=gen)
        x = _augment(train_t[idx], augment, gen, shift).to(device)
        loss = loss_fn(model(x), train_lab[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        schedule.step()
        done = step + 1
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % 1000 == 0 and step + 1 < steps:
            log(f"step {step + 1}: validation accuracy {accuracy(model, val_t, val_lab):.3f}")
            model.train()
        spent = time.perf_counter() - train_started
        out_of_time = time_budget is not None and spent >= time_budget
        stopping = out_of_time or (stop is not None and stop.is_set())
        if (progress is not None or keep_best) and (done % eval_every == 0 or done == steps or stopping or done == 1):
            held_out, held_loss = _held_out_score(model, val_t, val_lab)
            if keep_best and (best is None or (held_out, -held_loss) > best[0]):
                best = ((held_out, -held_loss), done, {k: v.detach().clone() for k, v in model.state_dict().items()})
            model.train()
        if progress is not None:
            progress(TrainProgress(done, steps, loss.item(), held_out, spent, time_budget))
        if out_of_time and done < steps:
            stopped = STOPPED_BY_TIME
            break
    train_seconds = time.perf_counter() - train_started

    kept_step = done
    if best is not None:
        model.load_state_dict(best[2])
        kept_step = best[1]
    model.eval()
    metrics = {
        "validation_accuracy": round(accuracy(model, val_t, val_lab), 4),
        "test_accuracy": round(accuracy(model, _to_tensor(test_x), torch.from_numpy(test_y)), 4),
    }
    card = {
        "name": name or ("shapes-cnn-attention" if data_dir is None else Path(out_dir).name),
        "architecture": "CnnAttention (attnviz.image.cnn_attention)",
        "classes": classes,
        "input_size": [config.image_size, config.image_size],
        "grid": [config.grid, config.grid],
        "config": config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": data,
        "training": {
            "seed": seed,
            "steps": done,
            "batch": batch,
            "learning_rate": lr,
            "augment": augment,
            "shift_pixels": shift,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "data_seconds": round(data_seconds, 1),
            "train_seconds": round(train_seconds, 1),
            "total_seconds": round(time.perf_counter() - started, 1),
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
        },
        "metrics": metrics,
    }
    if time_budget is not None or stop is not None:
        # Only runs that can end early say how they ended (the bundled model's card stays as it was).
        card["training"] |= {"max_steps": steps, "time_budget_seconds": time_budget, "stopped": stopped}
    if keep_best:
        card["training"]["kept_step"] = kept_step  # the step whose weights were saved: the best held-out score
    # The domain check: the network's scores fitted on (up to 5,000 of) the training images and calibrated on
    # the held-out ones; the thumbnail and the PNG size, which the network plays no part in, on all of them.
    fit_n = min(len(train_x), DOMAIN_FIT_IMAGES)
    check = fit_domain_check(model, train_x[:fit_n], train_y[:fit_n], val_x, val_y, seed=seed)
    card = save(model, card, Path(out_dir), domain=(check, fit_n, len(val_x)))
    log(f"saved to {out_dir}: test accuracy {metrics['test_accuracy']:.3f}, {train_seconds / 60:.1f} min training")
    return card


def save(model: CnnAttention, card: dict, out_dir: Path, domain: tuple | None = None) -> dict:
    """Write the weights and the card (with the weights' SHA-256 added); returns that card.

    ``domain``: (DomainCheck, images fitted on, images calibrated on), written beside the weights.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if domain is not None:
        check, fit_n, cal_n = domain
        card = {**card, "domain_check": save_domain_check(check, out_dir, fit_images=fit_n, calibration_images=cal_n)}
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    # The loader checks this hash: a damaged or swapped weight file is refused, not half-used.
    card = {**card, "weights_sha256": sha256_of(out_dir / WEIGHTS_FILE)}
    # A new card: faithfulness figures of older weights would be wrong for these ones.
    (out_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attnviz.image.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, help="folder with one subfolder of images per class")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default {BUNDLED_DIR} for generated data; with --data, a new folder "
        f"{TRAINED_ROOT / COMMAND_LINE_DIR}/<data folder's name>-<size>, never an existing one)",
    )
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--train-images", type=int, default=60_000, help="generated training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--augment", choices=["dihedral", "hflip", "none"])
    parser.add_argument("--size", type=int, choices=SIZES, default=64, help="input size in pixels (default 64)")
    parser.add_argument(
        "--time-budget", type=float, metavar="SECONDS", help="stop training after this many seconds (and save)"
    )
    parser.add_argument(
        "--threads", type=int, help="CPU threads (default: PyTorch's choice); 1 is faster on a busy machine"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = args.out
    try:
        if args.data is not None and out is None:  # never the bundled model in assets/
            out = new_model_folder(args.data, args.size)
            print(f"no --out: saving the model to {out} (a temporary folder; copy it to keep it)")
        train(
            out or BUNDLED_DIR,
            data_dir=args.data,
            steps=args.steps,
            batch=args.batch,
            n_train=args.train_images,
            n_val=min(2000, args.train_images),
            n_test=min(2000, args.train_images),
            seed=args.seed,
            lr=args.lr,
            augment=args.augment,
            size=args.size,
            time_budget=args.time_budget,
        )
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
