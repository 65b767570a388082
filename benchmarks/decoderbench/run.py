"""The phases in order: loading (fresh processes), then per size the server times and BertViz."""

from __future__ import annotations

import datetime as _dt
import time
from functools import partial

from textbench.common import code_fingerprint
from textbench.cpu import note_load, phase

import attnviz

from .bertviz_side import bertviz_sizes
from .common import MODEL, log
from .inputs import n_tokens, text_with_tokens
from .loading import load_times
from .report import report
from .server import server_times


def run(args) -> str:
    started = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M")
    t0 = time.perf_counter()
    code = {"start": code_fingerprint()}
    loads = None
    if not args.no_load:
        with phase("loading"):
            loads = load_times(args.warm_loads)
    note_load("in-process")
    log(f"loading {MODEL} in this process ...")
    tm = attnviz.load_text_model(MODEL)
    texts = {}
    for n in args.sizes:
        texts[n] = text_with_tokens(tm.tokenizer, n)
        assert n_tokens(tm.tokenizer, texts[n]) == n, n
    after = None
    if not args.no_bertviz:
        after = partial(_bertviz_after, timeout=args.bertviz_timeout, limit_gb=args.bertviz_limit_gb)
    with phase("in-process (server time + BertViz children)"):
        server = server_times(tm, texts, args.repeats, args.wait_quiet, after=after)
    note_load("end")
    code["end"] = code_fingerprint()
    md = report(args, started, code, loads, server, time.perf_counter() - t0)
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(md, encoding="utf-8")
    log(f"written to {args.out}")
    return md


def _bertviz_after(n, ta, timeout: float, limit_gb: float) -> dict:
    log(f"BertViz at {n} tokens (fresh process) ...")
    return bertviz_sizes(ta, timeout=timeout, limit_gb=limit_gb)
