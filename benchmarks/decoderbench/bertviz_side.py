"""3. BertViz side by side: the HTML ``head_view`` / ``model_view`` return for the same attention."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .common import fmt_bytes, log
from .procs import run_child


def bertviz_sizes(ta, timeout: float, limit_gb: float) -> dict:
    """Run BertViz in a fresh process on ``ta``'s weights (float32, as the model returned them) and
    tokens (as the page labels them); returns lengths, times and the child's peak RSS, or ``error``."""
    folder = Path(tempfile.mkdtemp(prefix="attnviz-bertviz-"))
    try:
        np.save(folder / "weights.npy", ta.weights)
        (folder / "tokens.json").write_text(json.dumps(list(ta.tokens)), encoding="utf-8")
        r = run_child(
            ["bertviz", str(folder / "weights.npy"), str(folder / "tokens.json"), str(limit_gb)], timeout=timeout
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    n = ta.weights.shape[-1]
    if "error" in r:
        log(f"  n={n}: BertViz failed: {r['error']}")
    else:
        log(
            f"  n={n}: BertViz head_view {fmt_bytes(r.get('head_view'))} in {r.get('head_view_s', 0):.1f} s, "
            f"model_view {fmt_bytes(r.get('model_view'))} in {r.get('model_view_s', 0):.1f} s, "
            f"peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    return r
