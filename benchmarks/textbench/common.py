"""What every part shares: the attnviz API it measures, the constants and targets, formatting."""

from __future__ import annotations

import statistics
import sys
import time

import attnviz

from . import REPO

# Public API only (attnviz's internals move). Bind the function before anything imports the
# figures, so an attribute shadowed by a same-named submodule would show up here at once.
text_attention = attnviz.text_attention
make_view = attnviz.make_view
figures = attnviz.figures
BUNDLED_TEXT_MODEL = attnviz.BUNDLED_TEXT_MODEL
if not callable(text_attention) or not callable(attnviz.text_attention):
    raise SystemExit("attnviz.text_attention is not the function (a submodule shadows it)")

VIEWS = ["Single head", "All heads of a layer", "Model overview", "Head lines", "From one token"]
DEFAULT_SIZES = [16, 64, 128, 256, 512]
QUICK_SIZES = [16, 128]
VIEW_SIZE = 128  # token count of the per-view payload and draw-time measurements
CLICK_SIZE = 20  # token count of the click-on-cell smoke check
MB = 1_000_000  # 1 MB = 10^6 bytes throughout
PAYLOAD_TARGETS = {128: 1 * MB, 512: 3 * MB}  # whole page, default view
SERVER_TARGET_MS = 150  # default view: server time <= forward + 150 ms
DRAW_TARGET_MS = 1000  # each view drawn in <= 1 s
CODE: dict[str, str] = {}  # app code fingerprint at start and end of the run


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def code_fingerprint() -> str:
    """Short hash of the app's code (attnviz/, pages/, app.py), to tell whether it changed mid-run."""
    import hashlib

    digest = hashlib.sha256()
    files = sorted([REPO / "app.py", *REPO.glob("pages/**/*.py"), *REPO.glob("attnviz/**/*.py")])
    for f in files:
        digest.update(str(f.relative_to(REPO)).encode())
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def fmt_bytes(b: int | None) -> str:
    if b is None:
        return "n/a"
    return f"{b / MB:,.3f} MB ({b:,} B)" if b >= 100_000 else f"{b / 1000:,.1f} kB ({b:,} B)"


def fmt_ms(s: float | None) -> str:
    if s is None:
        return "n/a"
    return f"{s * 1000:.1f}" if abs(s) < 0.01 else f"{s * 1000:,.0f}"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"
