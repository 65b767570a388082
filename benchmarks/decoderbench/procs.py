"""Run ``child.py`` in a fresh process and read its JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from textbench.cpu import CPU

from .common import log

CHILD = Path(__file__).resolve().parent / "child.py"


def run_child(args: list[str], env: dict[str, str] | None = None, timeout: float = 900.0) -> dict:
    """The child's result dict plus ``wall_s`` (spawn to exit) and ``other_cpu``; on failure
    ``error`` says why (timed out, killed, exit status with the last line of stderr)."""
    mark = CPU.start()
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(CHILD), *args],
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "wall_s": time.perf_counter() - t0}
    wall = time.perf_counter() - t0
    other = CPU.share(mark)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[len("RESULT ") :]), "wall_s": wall, "other_cpu": other}
    if proc.returncode < 0:
        why = f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
    else:
        tail = [t for t in proc.stderr.strip().splitlines() if t.strip()][-1:] or ["no output"]
        why = f"exit status {proc.returncode}: {tail[0][:200]}"
    log(f"  child {args[0]} failed: {why}")
    return {"error": why, "wall_s": wall, "other_cpu": other}
