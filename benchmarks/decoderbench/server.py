"""2. Server time in-process: forward pass, new text -> default view, each view's figure and its JSON."""

from __future__ import annotations

import gc
import time

import torch
from textbench.cpu import CPU, wait_for_quiet_cpu

import attnviz

from .common import HEAD_LINES_ALL, fmt_ms, log, median, page_views, rss_mb, timed


def _time(fn, repeats: int) -> tuple[float, object]:
    """Median seconds of ``repeats`` calls after one warm-up call; returns the last result too."""
    out = fn()
    times = []
    for _ in range(repeats):
        t, out = timed(fn)
        times.append(t)
    return median(times), out


def measure_size(tm, text: str, n: int, repeats: int, wait_quiet: float) -> dict:
    """Everything of part 2 at one size; ``ta`` (the attention) is returned for BertViz."""
    text_attention, make_view, figures = attnviz.text_attention, attnviz.make_view, attnviz.figures
    ta = text_attention(tm, text)
    if ta.weights.shape != (tm.n_layers, tm.n_heads, n, n):
        raise SystemExit(f"expected attention [{tm.n_layers}, {tm.n_heads}, {n}, {n}], got {ta.weights.shape}")
    wait_for_quiet_cpu(wait_quiet)
    mark = CPU.start()
    r: dict = {"n": n, "repeats": repeats, "weights_mb": ta.weights.nbytes / 1e6}

    enc = tm.tokenizer(text, return_tensors="pt")
    inputs = {k: v.to(tm.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}

    def model_call():
        with tm.lock, torch.inference_mode():
            return tm.model.base_model(**inputs, output_attentions=True).attentions

    r["model_call"], _ = _time(model_call, repeats)
    r["forward"], ta = _time(lambda: text_attention(tm, text), repeats)

    def default_view():
        t0 = time.perf_counter()
        a = text_attention(tm, text)
        t1 = time.perf_counter()
        figures.head_matrix(make_view(a), 0, 0, scale="fixed", selected_query=None).to_json()
        return t1 - t0, time.perf_counter() - t1

    default_view()  # warm-up
    runs = [default_view() for _ in range(repeats)]
    # The page's own part is taken from the same runs as its text_attention: on a shared machine two
    # separate medians can differ by more than the page's part.
    r["default"] = median([f + p for f, p in runs])
    r["default_forward"] = median([f for f, _ in runs])
    r["default_added"] = median([p for _, p in runs])
    r["make_view"], view = _time(lambda: make_view(ta), repeats)

    r["views"] = {}
    for spec in [*page_views(n), HEAD_LINES_ALL]:
        row = {"source": 0.0}
        shown = view
        if spec.source is not None:
            row["source"], shown = _time(lambda spec=spec: spec.source(ta), repeats)
        row["build"], fig = _time(lambda spec=spec, shown=shown: spec.figure(shown), repeats)
        row["to_json"], js = _time(fig.to_json, repeats)
        row["bytes"] = len(js) if js.isascii() else len(js.encode("utf-8"))
        row["total"] = row["source"] + row["build"] + row["to_json"]
        r["views"][spec.name] = row
        del fig, js, shown
    r["other_cpu"] = CPU.share(mark)
    gc.collect()
    r["rss_mb"] = rss_mb()["VmRSS"]
    log(
        f"  n={n}: model call {fmt_ms(r['model_call'])} ms, text_attention {fmt_ms(r['forward'])} ms, "
        f"default view {fmt_ms(r['default'])} ms, RSS {r['rss_mb']:.0f} MB (other processes: {r['other_cpu']:.0%} CPU)"
    )
    return {**r, "ta": ta}


def server_times(tm, texts: dict[int, str], repeats: int, wait_quiet: float, after=None) -> dict[int, dict]:
    """``measure_size`` per size; ``after(n, ta)`` runs before the attention is dropped (BertViz)."""
    out = {}
    for n, text in texts.items():
        t0 = time.perf_counter()
        r = measure_size(tm, text, n, repeats, wait_quiet)
        ta = r.pop("ta")
        r["wall_s"] = time.perf_counter() - t0
        if after is not None:
            r["bertviz"] = after(n, ta)
        del ta
        gc.collect()
        out[n] = r
    return out
