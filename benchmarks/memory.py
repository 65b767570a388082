"""Memory over many reruns: does the app's resident memory keep growing?

    python benchmarks/memory.py                      # 200 reruns of each page (about 10 min on 2 cores)
    python benchmarks/memory.py --reruns 40 --every 10 --pages text,image

Each page is opened in one AppTest session (the app's own script, widgets and caches; no
browser) and rerun ``--reruns`` times, each time with a NEW input, so that every rerun misses the
caches and computes: home (plain reruns: it has no input), text (a new sentence), image (a new
generated image, uploaded), worked example (new random toy numbers: a new seed), head statistics
(a new sentence). All pages run in one process, one after another, as one server would serve them.

The resident set size (VmRSS of /proc/self/status, read after ``gc.collect()``) is printed at the
start of each page's reruns (after one warm-up rerun) and every ``--every`` reruns, with the growth
over the last half of the reruns: the app's caches are all bounded (``max_entries``), so once they
are full the memory should stop growing. A second table gives the same readings after glibc's
``malloc_trim(0)`` (called right after the first reading, at each checkpoint only), which hands
freed heap pages back to the system: what is left is memory in use, without the allocator's
free-but-kept pages that make the raw RSS of the image page jump by ±100 MB from one reading to
the next.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import io
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from streamlit.testing.v1 import AppTest  # noqa: E402

APP = ROOT / "app.py"
PAGES = ("home", "text", "image", "worked", "stats")
WORDS = (
    "the a cat dog bird man woman child tree house river road car old new small big red green quick slow "
    "sat ran flew saw played read wrote found near under over through because while after before happy tired"
).split()


def rss_mb() -> float:
    gc.collect()
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def trimmed_rss_mb() -> float | None:
    """RSS after glibc's ``malloc_trim(0)``; None where there is no glibc."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        return None
    return rss_mb()


def reading() -> tuple[float, float | None]:
    return rss_mb(), trimmed_rss_mb()


def sentence(i: int) -> str:
    """A new sentence for rerun ``i`` (8-16 words, never seen before in this run)."""
    rng = random.Random(i)
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 16))]
    return f"{' '.join(words).capitalize()} number {i}."


def image_png(i: int) -> bytes:
    from attnviz.image import generated_shapes

    buf = io.BytesIO()
    generated_shapes.shape_sample(seed=10_000 + i).image.save(buf, format="PNG")
    return buf.getvalue()


def open_page(page: str | None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=300)
    if page is not None:
        at.switch_page(page)
    return at.run()


def check(at: AppTest, what: str) -> None:
    if at.exception or at.error:
        raise SystemExit(f"{what}: {[e.value for e in at.exception] or [e.value for e in at.error]}")


# Each page: (open it, rerun it with input i). The rerun returns the AppTest after the run.


def home() -> tuple[AppTest, Callable[[AppTest, int], AppTest]]:
    return open_page(None), lambda at, i: at.run()


def text() -> tuple[AppTest, Callable[[AppTest, int], AppTest]]:
    return open_page("pages/text.py"), lambda at, i: at.text_area(key="text_input").input(sentence(i)).run()


def image() -> tuple[AppTest, Callable[[AppTest, int], AppTest]]:
    at = open_page("pages/image.py")
    at.radio(key="image_source").set_value("Upload").run()

    def rerun(at: AppTest, i: int) -> AppTest:
        return at.file_uploader(key="image_upload").upload(f"shape-{i}.png", image_png(i), "image/png").run()

    return at, rerun


def worked() -> tuple[AppTest, Callable[[AppTest, int], AppTest]]:
    from attnviz.maths.toy_presets import RANDOM

    at = open_page("pages/worked_example.py")
    at.selectbox(key="worked_preset").set_value(RANDOM).run()
    return at, lambda at, i: at.number_input(key="worked_seed").set_value(1 + i % 9999).run()


def stats() -> tuple[AppTest, Callable[[AppTest, int], AppTest]]:
    return open_page("pages/head_stats.py"), lambda at, i: at.text_area(key="text_input").input(sentence(i)).run()


def measure(name: str, reruns: int, every: int) -> tuple[list[tuple[int, float, float | None]], float]:
    """(rerun, RSS MB, RSS MB after malloc_trim) at the start and every ``every`` reruns; ms per rerun."""
    at, rerun = globals()[name]()
    check(at, name)
    at = rerun(at, 10**6)  # warm-up: the first new input
    check(at, name)
    points = [(0, *reading())]
    seconds = 0.0
    for i in range(1, reruns + 1):
        started = time.perf_counter()
        at = rerun(at, i)
        seconds += time.perf_counter() - started
        if i % every == 0 or i == reruns:
            check(at, f"{name}, rerun {i}")
            points.append((i, *reading()))
            print(f"  {name}: {i} reruns, RSS {points[-1][1]:.0f} MB", file=sys.stderr, flush=True)
    return points, seconds / reruns * 1000


def table(results: dict, column: int, reruns: int, title: str) -> None:
    marks = [point[0] for point in next(iter(results.values()))[0]]
    half = reruns // 2
    header = ["page", *("start" if i == 0 else f"after {i}" for i in marks), f"growth over the last {half}", "ms/rerun"]
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, (points, ms) in results.items():
        values = {point[0]: point[column] for point in points}
        if any(v is None for v in values.values()):
            return
        middle = min(values, key=lambda i: abs(i - half))
        cells = [f"{values[i]:.0f}" for i in marks]
        print(f"| {name} | " + " | ".join(cells) + f" | {values[reruns] - values[middle]:+.1f} | {ms:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reruns", type=int, default=200)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--pages", default=",".join(PAGES), help=f"comma-separated, from {', '.join(PAGES)}")
    args = parser.parse_args()
    pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown = set(pages) - set(PAGES)
    if unknown:
        parser.error(f"unknown pages {sorted(unknown)}; choose from {', '.join(PAGES)}")

    print(f"RSS at import: {rss_mb():.0f} MB", file=sys.stderr)
    results = {name: measure(name, args.reruns, args.every) for name in pages}
    done = f"{args.reruns} reruns of each page, one process, pages in this order"
    table(results, 1, args.reruns, f"RSS in MB (VmRSS after gc.collect()); {done}.")
    table(results, 2, args.reruns, f"RSS in MB after malloc_trim(0) at each checkpoint; {done}.")


if __name__ == "__main__":
    main()
