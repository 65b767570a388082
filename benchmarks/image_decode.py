"""Memory and time to open hostile images: small files that decode into huge ones.

    python benchmarks/image_decode.py               # every case, the app's max_side (1024) and full size
    python benchmarks/image_decode.py --cases grey16-png,webp-rgba --max-side 1024

Each case runs in a fresh Python process, so one case's freed-but-kept heap cannot hide another's.
The process builds its input first (a file's bytes, or for the in-memory modes the PIL image), then
reads its peak resident set size (``VmHWM``), opens or converts the image, and reads the peak
again: the growth is what opening cost on top of holding the input. ``tracemalloc`` adds the peak
of the Python-side allocations (numpy arrays, bytes); Pillow's own pixel buffers are invisible to
it, which is why the RSS column is the one to read. Times are wall clock on whatever else the
machine is doing; the figures are printed, never asserted (the tests assert memory bounds).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> (what it is, how the child process builds its input)
CASES = {
    "grey16-png": ("40 MP uniform 16-bit grey PNG (I;16)", "file"),
    "webp-rgba": ("40 MP uniform lossless WebP with alpha", "file"),
    "rgba-png": ("40 MP uniform 8-bit RGBA PNG", "file"),
    "palette-png": ("40 MP palette PNG with a transparent colour", "file"),
    "float-tiff": ("40 MP float (F) TIFF, read through its percentile window", "file"),
    "mode-I;16": ("40 MP I;16 image in memory, converted", "memory"),
    "mode-I": ("40 MP I (32-bit) image in memory, converted", "memory"),
    "mode-F": ("40 MP F (float) image in memory, converted", "memory"),
}

CHILD = r"""
import json, sys, time, tracemalloc
from pathlib import Path
sys.path.insert(0, {root!r})
import numpy as np
from PIL import Image
from attnviz.image import decoding
case, path, max_side = {case!r}, {path!r}, {max_side!r}
if path:
    source = Path(path).read_bytes()
else:
    mode = case.removeprefix("mode-")
    source = Image.new(mode, (8000, 5000), {{"I;16": 30000, "I": 30000, "F": 0.25}}[mode])
    source.load()

def convert(im):
    if hasattr(image_io, "as_rgb"):
        return decoding.as_rgb(im, max_side=max_side)
    out = decoding._to_rgb(im)  # the old way: full size, then shrink
    if max_side and max(out.size) > max_side:
        out.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return out

def peak_mb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec.
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

before = peak_mb()
tracemalloc.start()
t0 = time.perf_counter()
try:
    im = decoding.open_image(source, max_side=max_side) if path else convert(source)
    outcome = "%d x %d" % im.size
except decoding.InputError as exc:
    outcome = "InputError: " + str(exc)[:70]
seconds = time.perf_counter() - t0
traced = tracemalloc.get_traced_memory()[1] / 2**20
print(json.dumps(dict(before=before, growth=peak_mb() - before, traced=traced, seconds=seconds, outcome=outcome)))
"""


def build_files(folder: Path) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    import image_bombs as bombs

    w, h = bombs.BOMB_SIZE
    webp = bombs.uniform_webp(w, h)
    if webp != bombs.WEBP_40MP_RGBA:
        print("note: this libwebp encodes the WebP differently from the tests' copy", file=sys.stderr)
    files = {
        "grey16-png": bombs.grey16_png(w, h),
        "webp-rgba": webp,
        "rgba-png": bombs.rgba_png(w, h),
        "palette-png": bombs.palette_png(w, h),
        "float-tiff": bombs.float_tiff(w, h),
    }
    out = {}
    for name, data in files.items():
        out[name] = folder / name
        out[name].write_bytes(data)
    return out


def _size(n: int) -> str:
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KB"


def run_case(case: str, path: Path | None, max_side: int | None) -> dict:
    code = CHILD.format(root=str(ROOT), case=case, path=str(path) if path else "", max_side=max_side)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return dict(before=0, growth=0, traced=0, seconds=0, outcome=f"crashed: {done.stderr.strip()[-120:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--max-side", default="1024,none", help="comma-separated max_side values; 'none' = full size")
    args = parser.parse_args()
    sides = [None if s.strip().lower() == "none" else int(s) for s in args.max_side.split(",")]
    cases = [c.strip() for c in args.cases.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        files = build_files(Path(tmp))
        print(f"{'case':<13} {'max_side':>8} {'file':>9} {'RSS growth':>11} {'traced':>8} {'time':>7}  outcome")
        for case in cases:
            path = files.get(case) if CASES[case][1] == "file" else None
            size = _size(path.stat().st_size) if path else "-"
            for side in sides:
                r = run_case(case, path, side)
                print(
                    f"{case:<13} {side or 'full':>8} {size:>9} {r['growth']:>8.0f} MB {r['traced']:>5.0f} MB "
                    f"{r['seconds']:>6.2f}s  {r['outcome']}"
                )


if __name__ == "__main__":
    main()
