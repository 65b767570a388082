"""A 512 x 512 16-bit DICOM: from the uploaded bytes to the overlay figure, the way the image page does it.

    python benchmarks/dicom_upload.py               # 7 runs
    python benchmarks/dicom_upload.py --runs 11

The file is a CT-like slice written with pydicom (int16, RescaleIntercept -1024, a soft-tissue window
centre 40 / width 400, and patient fields, which are never read). Each run takes the page's steps on
the same bytes, with nothing cached between runs (the page caches each step; a first upload pays all):

1. **read**: ``read_grey`` (pydicom with the pixel tags only; values in HU; the default window),
   what the page's ``cached_grey_info`` does;
2. **window**: ``windowed_png`` through the slider's window (reads the file again, windows, writes an
   8-bit PNG), what ``cached_windowed_png`` does;
3. **forward**: ``open_image`` of that PNG (the app's max side 1024), ``image_attention`` (the model's
   forward pass and its domain check) and the browser's copy of the image (``display_image``);
4. **overlay**: the class token's map of the last layer drawn by ``figures.overlay`` and serialised
   to the JSON Streamlit sends.

Then, unless ``--no-page``, the whole image page in Streamlit's AppTest: the upload's rerun, which
also computes Grad-CAM and Integrated Gradients and draws everything after the overlay (Streamlit
sends the overlay as soon as it is drawn; AppTest reports only the end of the rerun), and a move of
the window slider.

The bundled image model is loaded (and run once) before the timed runs. Prints and writes
``benchmarks/results-dicom.md`` (median and worst of the runs; the target is at most 1 s). Figures
only, nothing asserted; times depend on what else the machine is doing (the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_S = 1.0
STEPS = ("read", "window", "forward", "overlay")


def ct_dicom(n: int = 512) -> bytes:
    """A 16-bit CT-like slice (air, a body of soft tissue with noise, a bone) as a DICOM file."""
    from tests.dicom_files import dicom_bytes

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:n, :n]
    stored = np.full((n, n), 24, dtype=np.int16)
    body = (yy - n / 2) ** 2 + ((xx - n / 2) / 1.2) ** 2 < (n / 2.6) ** 2
    stored[body] = 1064 + rng.normal(0, 40, size=int(body.sum())).astype(np.int16)
    stored[(yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 14) ** 2] = 2224  # bone, 1200 HU
    return dicom_bytes(
        stored,
        patient=("Benchmark^Patient", "BENCH-0001"),
        RescaleSlope=1,
        RescaleIntercept=-1024,
        WindowCenter=40,
        WindowWidth=400,
    )


def one_run(raw: bytes, model) -> dict[str, float]:
    from attnviz.figures.overlay import display_image, overlay
    from attnviz.image.decoding import open_image
    from attnviz.image.extraction import image_attention
    from attnviz.image.medical_images import Window, read_grey, windowed_png

    times = {}
    t0 = time.perf_counter()
    info = read_grey(raw).info
    t1 = time.perf_counter()
    window = Window.from_range(float(np.floor(info.window.low)), float(np.ceil(info.window.high)))
    png = windowed_png(raw, window)
    t2 = time.perf_counter()
    image = open_image(png, max_side=1024)
    ia = image_attention(model, image)
    shown = display_image(image)
    t3 = time.perf_counter()
    fig = overlay(shown, ia.cls_attention(ia.n_layers - 1), opacity=0.55, clickable=True)
    fig.to_json()
    t4 = time.perf_counter()
    times.update(read=t1 - t0, window=t2 - t1, forward=t3 - t2, overlay=t4 - t3, total=t4 - t0)
    return times


def page_runs(raw: bytes, runs: int) -> tuple[list[float], list[float]]:
    """Seconds of the image page's rerun after the upload, and after a window move, in fresh sessions."""
    os.environ.setdefault("ATTNVIZ_WARM_START", "0")
    from streamlit.testing.v1 import AppTest

    from attnviz.ui import image_page as page
    from attnviz.ui import image_window

    upload_s, slider_s = [], []
    for i in range(runs + 1):  # the first session warms Streamlit's imports and the app's caches up
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
        at.switch_page("pages/image.py")
        at.run()
        at.radio(key=page.SOURCE).set_value("Upload").run()
        data = raw[:-2] + i.to_bytes(2, "little")  # new bytes, a new SHA-256: nothing cached for it
        t0 = time.perf_counter()
        at.file_uploader(key=page.UPLOAD).upload(f"scan{i}.dcm", data, "application/dicom").run()
        t1 = time.perf_counter()
        at.slider(key=image_window.WINDOW).set_value((-300 - i, 300)).run()
        t2 = time.perf_counter()
        assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
        if i:
            upload_s.append(t1 - t0)
            slider_s.append(t2 - t1)
    return upload_s, slider_s


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--no-page", action="store_true", help="skip the AppTest runs of the whole page")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results-dicom.md")
    args = ap.parse_args()

    import torch

    import attnviz

    raw = ct_dicom()
    model = attnviz.load_image_model(device="cpu")
    one_run(raw, model)  # warm-up: first calls of pydicom, Pillow's PNG codec, the model and Plotly
    load_before = os.getloadavg()[0]
    runs = [one_run(raw, model) for _ in range(args.runs)]
    load_after = os.getloadavg()[0]

    rows = []
    for step in (*STEPS, "total"):
        values = [r[step] for r in runs]
        rows.append((step, statistics.median(values), max(values)))
    total_median, total_worst = rows[-1][1], rows[-1][2]
    verdict = "met" if total_worst <= TARGET_S else "MISSED"
    lines = [
        "# A 512 x 512 DICOM: upload to overlay",
        "",
        f"`python benchmarks/dicom_upload.py --runs {args.runs}`: a 512 x 512 16-bit CT slice written by pydicom "
        f"({len(raw) / 1024:.0f} KB), the bundled image model on the CPU (torch threads: {torch.get_num_threads()}), "
        f"1-minute load average {load_before:.2f} before the runs and {load_after:.2f} after. Each run takes the "
        "image page's steps with nothing cached (a first upload); the model was loaded and run once before.",
        "",
        "| step | median (ms) | worst (ms) |",
        "|---|---:|---:|",
        *[f"| {step} | {median * 1000:.0f} | {worst * 1000:.0f} |" for step, median, worst in rows],
        "",
        f"Target: at most {TARGET_S:g} s from the bytes to the overlay figure: **{verdict}** (median "
        f"{total_median:.2f} s, worst {total_worst:.2f} s of {args.runs} runs).",
        "",
        "Steps: read = `read_grey` (pydicom, pixel tags only, values in HU, default window); window = "
        "`windowed_png` (reads again, windows, writes an 8-bit PNG); forward = `open_image` + `image_attention` "
        "(forward pass and domain check) + `display_image`; overlay = `figures.overlay` of the class token's "
        "last-layer map, serialised to JSON.",
    ]
    if not args.no_page:
        upload_s, slider_s = page_runs(raw, args.runs)
        lines += [
            "",
            "The whole image page in AppTest (median and worst of "
            f"{args.runs} fresh sessions): the upload's rerun {statistics.median(upload_s):.2f} s / "
            f"{max(upload_s):.2f} s, which also runs Grad-CAM and Integrated Gradients (128 steps) and draws every "
            "map after the overlay; a move of the window slider (a new window: window, forward, gradient maps) "
            f"{statistics.median(slider_s):.2f} s / {max(slider_s):.2f} s.",
        ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
