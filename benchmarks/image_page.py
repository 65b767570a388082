#!/usr/bin/env python
"""Performance benchmark of the image-attention page: server time and payload.

Run from the repository root::

    python benchmarks/image_page.py            # about 1 min on 2 cores
    python benchmarks/image_page.py --rounds 9

What it measures, in-process, with the same functions the page calls (no browser):

1. **Server time, new image -> overlay figure**: decode (``open_image`` with the page's
   decode size), the forward pass, the display copy, and the overlay figure's JSON, for a
   4000x3000 photo as JPEG and as PNG, and for a 64x64 demo image. Median of ``--rounds``.
2. **Display change**: a new opacity, layer or head only rebuilds a figure from cached arrays.
3. **Gradient maps**: Grad-CAM and Integrated Gradients (128 steps) for one class.
4. **Payload**: bytes of every figure the page sends for the default view (figure JSON, as
   Streamlit sends it), for the photo and the demo.

Targets (printed, never asserted): new 4000x3000 photo -> overlay <= 1 s of server time on
the CPU; page payload <= 1 MB. Results are printed as Markdown and written to
``benchmarks/results-image.md``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import attnviz  # noqa: E402
from attnviz.figures.overlay import display_image, overlay, predictions_bar, small_multiples  # noqa: E402
from attnviz.image import generated_shapes  # noqa: E402
from attnviz.image.attribution import gradcam, integrated_gradients  # noqa: E402
from attnviz.image.decoding import open_image  # noqa: E402
from attnviz.ui.cache import DECODE_SIDE  # noqa: E402

OUT_MD = Path(__file__).resolve().parent / "results-image.md"


def photo(fmt: str) -> bytes:
    """A 4000x3000 photo-like image: smooth gradients, texture and a few shapes (hard to compress)."""
    rng = np.random.default_rng(0)
    h, w = 3000, 4000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / w * 200, yy / h * 180, (xx + yy) / (w + h) * 160], axis=-1)
    noise = rng.normal(0, 12, size=(h // 4, w // 4, 3)).astype(np.float32).repeat(4, 0).repeat(4, 1)
    arr = np.clip(base + noise, 0, 255).astype(np.uint8)
    arr[1000:1800, 1500:2600] = (220, 40, 40)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def timed(fn, rounds: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def page_figures(model, data: bytes) -> dict[str, int]:
    """Bytes of each figure the page draws for its default view."""
    image = open_image(data, max_side=DECODE_SIDE)
    ia = attnviz.image_attention(model, image)
    shown = display_image(image)
    target = ia.predictions[0][0]
    last = ia.n_layers - 1
    heads = [(f"head {h}", ia.cls_attention(last, h)) for h in range(ia.n_heads)] + [("mean", ia.cls_attention(last))]
    cam, ig = gradcam(model, image, target), integrated_gradients(model, image, target)
    roll = attnviz.rollout(ia.weights)[0, 1:].reshape(ia.grid)
    compare = [("rollout", roll), ("last", ia.cls_attention(last)), ("cam", cam.grid), ("ig", ig.grid)]
    figs = {
        "overlay": overlay(shown, ia.cls_attention(last), clickable=True),
        "predictions": predictions_bar(ia.predictions),
        "heads of a layer": small_multiples(shown, heads, n_cols=len(heads)),
        "attention vs gradients": small_multiples(shown, compare, n_cols=4),
    }
    return {name: len(fig.to_json().encode()) for name, fig in figs.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=OUT_MD)
    args = ap.parse_args(argv)
    model = attnviz.load_image_model(device="cpu")
    inputs = {"4000x3000 JPEG": photo("JPEG"), "4000x3000 PNG": photo("PNG")}
    demo = io.BytesIO()
    generated_shapes.demo_samples()[0].image.save(demo, format="PNG")
    inputs["64x64 demo PNG"] = demo.getvalue()

    lines = [
        "# Image page benchmark",
        "",
        f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, load average "
        f"{os.getloadavg()[0]:.2f}; median of {args.rounds} rounds.",
        "",
        "## New image -> overlay (server time)",
        "",
        "| input | file | decode | forward | display copy + overlay JSON | total | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, data in inputs.items():
        t_decode, image = timed(lambda d=data: open_image(d, max_side=DECODE_SIDE), args.rounds)
        t_forward, ia = timed(lambda im=image: attnviz.image_attention(model, im), args.rounds)
        t_fig, _ = timed(
            lambda im=image, a=ia: overlay(
                display_image(im), a.cls_attention(a.n_layers - 1), clickable=True
            ).to_json(),
            args.rounds,
        )
        total = t_decode + t_forward + t_fig
        mark = ("met" if total <= 1.0 else "MISSED") if name.startswith("4000") else ""
        lines.append(
            f"| {name} | {len(data) / 1e6:.2f} MB | {t_decode * 1e3:.0f} ms | {t_forward * 1e3:.0f} ms | "
            f"{t_fig * 1e3:.0f} ms | {total * 1e3:.0f} ms | {'≤ 1 s ' + mark if mark else ''} |"
        )

    image = open_image(inputs["4000x3000 JPEG"], max_side=DECODE_SIDE)
    ia = attnviz.image_attention(model, image)
    shown = display_image(image)
    t_change, _ = timed(
        lambda: overlay(shown, ia.cls_attention(0, 1), opacity=0.7, clickable=True).to_json(), args.rounds
    )
    t_cam, _ = timed(lambda: gradcam(model, image, ia.predictions[0][0]), args.rounds)
    t_ig, ig = timed(lambda: integrated_gradients(model, image, ia.predictions[0][0]), args.rounds)
    lines += [
        "",
        "## Display changes and gradient maps (4000x3000 JPEG)",
        "",
        "| step | server time |",
        "|---|---:|",
        f"| new opacity / layer / head (figure from cached arrays, no model run) | {t_change * 1e3:.0f} ms |",
        f"| Grad-CAM (captum LayerGradCam + interpolate) | {t_cam * 1e3:.0f} ms |",
        f"| Integrated Gradients, 128 steps (convergence delta {ig.delta:.3g}, score change {ig.change:.3g}) "
        f"| {t_ig * 1e3:.0f} ms |",
        "",
        "## Payload of the default view",
        "",
        "| input | overlay | predictions | heads of a layer | attention vs gradients | page total | target |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in ("4000x3000 JPEG", "64x64 demo PNG"):
        sizes = page_figures(model, inputs[name])
        total = sum(sizes.values())
        cells = " | ".join(f"{v / 1e3:.0f} kB" for v in sizes.values())
        lines.append(f"| {name} | {cells} | {total / 1e3:.0f} kB | ≤ 1 MB {'met' if total <= 1e6 else 'MISSED'} |")
    report = "\n".join(lines) + "\n"
    print(report)
    args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
