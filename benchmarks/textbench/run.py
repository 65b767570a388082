"""The benchmark's phases in order: models, in-process server time, BertViz, browser; then the report."""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
from pathlib import Path

from .bertviz_size import bertviz_sizes
from .browser import browser_phase
from .common import CODE, code_fingerprint, log
from .cpu import note_load, phase, wait_for_quiet_cpu
from .inputs import load_cases
from .report import report
from .server_time import server_times


def run(args: argparse.Namespace) -> None:
    """Measure what ``args`` asks for, print the markdown report and write it to ``args.out``."""
    started = time.time()
    CODE["start"] = code_fingerprint()
    quiet_each = args.wait_quiet / 6  # before each browser measurement, wait up to this long for an idle CPU

    log("loading models (bundled, and a random bert-base written to a temporary folder)")
    tmp = Path(tempfile.mkdtemp(prefix="attnviz-bench-bert-base-"))
    try:
        cases = load_cases(args.sizes, tmp)

        note_load("in-process start")
        wait_for_quiet_cpu(args.wait_quiet)
        log("2. server time, in-process")
        with phase("in-process server time"):
            server = {c.key: server_times(c, args.sizes, min(args.wait_quiet, 20.0)) for c in cases}

        bv = {}
        if not args.no_bertviz:
            note_load("BertViz start")
            log("1. BertViz payload (this is the slow part at 512 tokens)")
            with phase("BertViz"):
                bv = {c.key: bertviz_sizes(c, args.sizes) for c in cases}

        br = None
        if not args.no_browser:
            log("1./3. browser: payload, view draw times, click smoke check")
            gc.collect()
            note_load("browser start")
            wait_for_quiet_cpu(args.wait_quiet)
            with phase("browser"):
                br = browser_phase(cases, args.sizes, args.chromium, args.draw_rounds, quiet_each)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    note_load("end")
    CODE["end"] = code_fingerprint()
    total = time.time() - started
    md = report(args, cases, server, bv, br, started, total)
    print(md)
    args.out.write_text(md + "\n", encoding="utf-8")
    log(f"wrote {args.out} (total {total / 60:.1f} min)")
