"""How many CPU threads should PyTorch use for the app? (the default of ``ATTNVIZ_THREADS``)

    python benchmarks/threads.py                 # 1, 2 and PyTorch's default; about 3 min on 2 cores
    python benchmarks/threads.py --settings 1,4,0 --rounds 3

Each setting runs in fresh processes with ``ATTNVIZ_THREADS`` set (0 = PyTorch's own default, one
thread per core), on the bundled models, the settings taking turns for ``--rounds`` rounds, and
measures (medians over the rounds):

* one extraction (``attnviz.text_attention``) of 16 and of 128 tokens, machine otherwise idle;
* 8 extractions at once, one per thread (8 sessions), 16-token sentences: wall time until all
  are done; the same with 4 text and 4 image extractions (two models, two locks);
* one 16-token extraction and the 8 at once while another process keeps one core busy (another
  user's request, another job on the machine).

Prints a Markdown table, with the load average: numbers from a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROWS = {
    "idle16": "one extraction, 16 tokens",
    "idle128": "one extraction, 128 tokens",
    "c8": "8 at once (threads), 16 tokens each",
    "mix8": "4 text + 4 image at once",
    "busy16": "one extraction, 16 tokens, 1 core busy elsewhere",
    "busy8": "8 at once, 1 core busy elsewhere",
}
HOG = "import time\nt = time.time()\nwhile time.time() - t < 60: pass"


def worker(rounds: int) -> dict:
    """Runs in the child process: ATTNVIZ_THREADS is already set in its environment."""
    import torch

    import attnviz
    from attnviz.image import generated_shapes
    from benchmarks.textbench.inputs import text_with_tokens

    tm = attnviz.load_text_model(device="cpu")  # applies ATTNVIZ_THREADS
    im = attnviz.load_image_model(device="cpu")
    words = "the cat sat on a mat while dogs ran through green parks near old rivers and birds sang".split()
    short = [" ".join(words[(i + k) % len(words)] for k in range(12)) for i in range(64)]
    long = text_with_tokens(tm.tokenizer, 128)
    images = [s.image for s in generated_shapes.demo_samples()]
    for text in short[:3]:
        attnviz.text_attention(tm, text)
        attnviz.image_attention(im, images[0])

    def timed(text: str) -> float:
        started = time.perf_counter()
        attnviz.text_attention(tm, text)
        return time.perf_counter() - started

    def at_once(mixed: bool) -> float:
        def one(i: int) -> None:
            if mixed and i % 2:
                attnviz.image_attention(im, images[i % len(images)])
            else:
                attnviz.text_attention(tm, short[8 + i])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - started

    out = {key: [] for key in ROWS}
    for r in range(rounds):
        out["idle16"].append(statistics.median(timed(s) for s in short[r : r + 5]))
        out["idle128"].append(statistics.median(timed(long) for _ in range(3)))
        out["c8"].append(at_once(False))
        out["mix8"].append(at_once(True))
        hog = subprocess.Popen([sys.executable, "-c", HOG])
        try:
            time.sleep(0.3)
            out["busy16"].append(statistics.median(timed(s) for s in short[r : r + 5]))
            out["busy8"].append(at_once(False))
        finally:
            hog.kill()
            hog.wait()
    return {"threads": torch.get_num_threads(), **{k: statistics.median(v) * 1000 for k, v in out.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", default="1,2,0", help="ATTNVIZ_THREADS values; 0 = PyTorch's default")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.rounds)))
        return
    settings = [s.strip() for s in args.settings.split(",") if s.strip()]
    runs: dict[str, list[dict]] = {s: [] for s in settings}
    # Settings take turns, one round each, so that a change in the machine's other load (it is
    # shared) spreads over all of them rather than landing on one.
    for r in range(args.rounds):
        for setting in settings:
            env = {**os.environ, "ATTNVIZ_THREADS": setting, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
            print(f"round {r + 1}/{args.rounds}: ATTNVIZ_THREADS={setting}", file=sys.stderr, flush=True)
            run = subprocess.run(
                [sys.executable, __file__, "--worker", "--rounds", "3"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[setting].append(json.loads(run.stdout.strip().splitlines()[-1]))
    results = {
        s: {"threads": rs[0]["threads"], **{k: statistics.median(r[k] for r in rs) for k in ROWS}}
        for s, rs in runs.items()
    }
    load = os.getloadavg()
    names = [f"{s} ({r['threads']} threads)" if s == "0" else s for s, r in results.items()]
    print(f"Load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} CPUs; medians in ms.\n")
    print("| | " + " | ".join(f"ATTNVIZ_THREADS={n}" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for key, label in ROWS.items():
        print(f"| {label} | " + " | ".join(f"{r[key]:.0f}" for r in results.values()) + " |")


if __name__ == "__main__":
    main()
