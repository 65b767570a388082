"""Runs in a fresh process (``python benchmarks/decoderbench/child.py MODE ...``) and prints one JSON line.

``load``: import torch and transformers, then ``attnviz.load_text_model(MODEL)`` under the
``ATTNVIZ_CACHE_DIR`` the parent set; times and resident memory.
``bertviz WEIGHTS.npy TOKENS.json LIMIT_GB``: the length of the HTML ``bertviz.head_view`` and
``model_view`` return for that attention (tuple of per-layer ``[1, heads, n, n]`` tensors), their
times and the peak resident memory. A fresh process keeps BertViz's gigabytes of Python lists and
strings out of the parent and gives a clean peak.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

T_START = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for attnviz

MODEL = "SmolLM2-135M-Instruct"


def _status_mb() -> dict[str, float]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(rest.split()[0]) / 1024
    return out


def _rss_psutil_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _maxrss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def load() -> dict:
    t0 = time.perf_counter()
    import torch  # noqa: F401  (the app has these imported before a model loads)
    import transformers  # noqa: F401
    from transformers.models.llama import modeling_llama  # noqa: F401

    import attnviz
    from attnviz.text import bundled_decoder

    imports_s = time.perf_counter() - t0
    before = _status_mb()
    cached = bundled_decoder.looks_converted()
    t1 = time.perf_counter()
    tm = attnviz.load_text_model(MODEL)
    load_s = time.perf_counter() - t1
    gc.collect()
    after = _status_mb()
    return {
        "cache_present": cached,
        "cache_dir": str(bundled_decoder.converted_folder_path()),
        "imports_s": imports_s,
        "load_s": load_s,
        "since_start_s": time.perf_counter() - T_START,
        "rss_after_imports_mb": before["VmRSS"],
        "rss_after_load_mb": after["VmRSS"],
        "rss_psutil_mb": _rss_psutil_mb(),
        "peak_rss_mb": after["VmHWM"],
        "ru_maxrss_mb": _maxrss_mb(),
        "n_layers": tm.n_layers,
        "n_heads": tm.n_heads,
        "threads": torch.get_num_threads(),
    }


def bertviz_html(weights_path: str, tokens_path: str, limit_gb: float) -> dict:
    """``limit_gb`` caps the address space, so that running out ends in a MemoryError here rather
    than in the kernel's OOM killer picking a process (maybe someone else's) on a shared machine."""
    import resource

    if limit_gb > 0:
        cap = int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import bertviz
    import numpy as np
    import torch

    weights = np.load(weights_path, mmap_mode=None)
    tokens = json.loads(Path(tokens_path).read_text(encoding="utf-8"))
    attention = tuple(torch.from_numpy(weights[i][None]) for i in range(weights.shape[0]))  # [1, H, n, n] each
    out = {"rss_before_mb": _status_mb()["VmRSS"]}
    for name, fn in (("head_view", bertviz.head_view), ("model_view", bertviz.model_view)):
        t0 = time.perf_counter()
        try:
            html = fn(attention, tokens, html_action="return").data
        except MemoryError:
            out[name] = None
            out[name + "_error"] = f"MemoryError (address space capped at {limit_gb:g} GB)"
            gc.collect()
            continue
        out[name + "_s"] = time.perf_counter() - t0
        out[name] = len(html) if html.isascii() else len(html.encode("utf-8"))
        del html
        gc.collect()
    out["peak_rss_mb"] = _status_mb()["VmHWM"]
    return out


def main(argv: list[str]) -> None:
    if argv[0] == "load":
        result = load()
    elif argv[0] == "bertviz":
        result = bertviz_html(argv[1], argv[2], float(argv[3]))
    else:
        raise SystemExit(f"unknown mode {argv[0]!r}")
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
