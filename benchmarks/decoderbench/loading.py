"""1. Loading: the first load (GGUF -> safetensors conversion) and warm loads, each in a fresh process."""

from __future__ import annotations

import shutil
import tempfile

from textbench.cpu import note_load

from .common import log
from .procs import run_child


def load_times(warm_runs: int) -> list[dict]:
    """One first load into an empty ``ATTNVIZ_CACHE_DIR``, then ``warm_runs`` loads from the cache
    it wrote; the temporary cache (about 0.5 GB) is removed afterwards."""
    cache = tempfile.mkdtemp(prefix="attnviz-decoder-cache-")
    rows = []
    try:
        env = {"ATTNVIZ_CACHE_DIR": cache}
        note_load("first load")
        log(f"first load (conversion) into an empty cache {cache} ...")
        first = run_child(["load"], env=env)
        rows.append({"kind": "first load (empty cache: GGUF converted)", **first})
        log(f"  {_summary(first)}")
        if "error" in first:
            return rows
        note_load("warm loads")
        for i in range(warm_runs):
            warm = run_child(["load"], env=env)
            rows.append({"kind": f"warm load #{i + 1} (cache present)", **warm})
            log(f"  warm #{i + 1}: {_summary(warm)}")
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    return rows


def _summary(r: dict) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    return (
        f"load_text_model {r['load_s']:.1f} s, process {r['wall_s']:.1f} s, RSS {r['rss_after_load_mb']:.0f} MB "
        f"(peak {r['peak_rss_mb']:.0f} MB), cache present before: {r['cache_present']}"
    )
