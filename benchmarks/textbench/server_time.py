"""2. Server time, in-process (no Streamlit): forward pass, the default view and all five views.

An input whose ``[L, H, n, n]`` weights are not held (past ``extraction.HELD_BYTES``: bert-base at 512
tokens) has no ``make_view``: the page shows it with the long-input views, whose default is the pooled
single head. Its default is timed as that, and the five short views are "n/a".
"""

from __future__ import annotations

import gc
import pickle
import time

import torch

from attnviz.figures.pooled import pooled_head
from attnviz.text import long_views

from .common import figures, fmt_ms, log, make_view, median, text_attention, timed
from .cpu import CPU, wait_for_quiet_cpu
from .inputs import ModelCase, encode

FIGURE_STEPS = ["head_matrix", "layer_heads", "model_overview", "head_lines", "token_heads"]


def build_figure(name: str, view, n_heads: int):
    """The figure the page builds for each view, with the page's default options."""
    if name == "head_matrix":
        return figures.head_matrix(view, 0, 0, scale="fixed", selected_query=None)
    if name == "layer_heads":
        return figures.layer_heads(view, 0, scale="fixed")
    if name == "model_overview":
        return figures.model_overview(view, scale="fixed")  # the page passes its scale radio ("fixed")
    if name == "head_lines":
        return figures.head_lines(view, 0, list(range(n_heads)), threshold=0.05, query=None)
    if name == "token_heads":
        return figures.token_heads(view, min(1, len(view.query_tokens) - 1), scale="fixed")
    raise ValueError(name)


def long_default(ta):
    """What the page draws first for an input whose weights are not held: layer 0, head 0, max-pooled."""
    ph = long_views.pooled_head(ta, 0, 0)
    return pooled_head(ph.pooled, ph.tokens, title="Layer 0, head 0", causal=ta.causal)


def server_times(case: ModelCase, sizes: list[int], wait_quiet: float = 20.0) -> dict:
    """Medians (seconds) per size: forward, default view, all five views, and step breakdown."""
    tm = case.tm
    results = {}
    for n in sizes:
        text = case.texts[n]
        repeats = 5 if n <= 128 else 3
        inputs, _ = encode(tm, text)
        assert inputs["input_ids"].shape[1] == n, (inputs["input_ids"].shape, n)

        def forward(inputs=inputs):
            with torch.inference_mode():
                return tm.model(**inputs, output_attentions=True)

        def default(text=text):
            ta = text_attention(tm, text)
            if not ta.holds_weights:
                return long_default(ta).to_json()
            view = make_view(ta)
            return build_figure("head_matrix", view, tm.n_heads).to_json()

        def full(text=text):
            steps = {}
            t0 = time.perf_counter()
            ta = text_attention(tm, text)
            steps["text_attention"] = time.perf_counter() - t0
            sizes_json = {}
            if not ta.holds_weights:  # the long-input views: no make_view, none of the five short figures
                steps |= {"make_view": None, **dict.fromkeys(FIGURE_STEPS)}
                sizes_json = dict.fromkeys(FIGURE_STEPS)
                long_default(ta).to_json()
                steps["total"] = time.perf_counter() - t0
                return steps, ta, sizes_json
            t1 = time.perf_counter()
            view = make_view(ta)
            steps["make_view"] = time.perf_counter() - t1
            for name in FIGURE_STEPS:
                t2 = time.perf_counter()
                sizes_json[name] = len(build_figure(name, view, tm.n_heads).to_json())
                steps[name] = time.perf_counter() - t2
            steps["total"] = time.perf_counter() - t0
            return steps, ta, sizes_json

        forward()
        full()  # warm-up (first calls import and JIT-ish caches)
        wait_for_quiet_cpu(wait_quiet)
        cpu_mark = CPU.start()
        fwd = [timed(forward)[0] for _ in range(repeats)]
        dflt, fulls = [], []
        for _ in range(repeats):
            dflt.append(timed(default)[0])
            steps, ta, sizes_json = full()
            fulls.append(steps)
        # What st.cache_data does with the page's TextAttention: pickle on store, unpickle on
        # every rerun that hits the cache (cached_text_attention is called on every rerun).
        blob = pickle.dumps(ta, protocol=pickle.HIGHEST_PROTOCOL)
        loads = [timed(lambda blob=blob: pickle.loads(blob))[0] for _ in range(3)]
        results[n] = {
            "repeats": repeats,
            "forward": median(fwd),
            "default": median(dflt),
            "full": median([s["total"] for s in fulls]),
            "steps": {k: median([s[k] for s in fulls]) for k in fulls[0]},  # None stays None (long input)
            "json_bytes": sizes_json,
            "pickle_bytes": len(blob),
            "unpickle": median(loads),
            "weights_bytes": 4 * ta.n_layers * ta.n_heads * ta.n_tokens**2,  # [L, H, n, n] float32, held or not
            "other_cpu": CPU.share(cpu_mark),
        }
        del blob, ta
        gc.collect()
        r = results[n]
        log(
            f"  {case.key} n={n}: forward {fmt_ms(r['forward'])} ms, default {fmt_ms(r['default'])} ms, "
            f"full {fmt_ms(r['full'])} ms (other processes: {r['other_cpu']:.0%} CPU)"
        )
    return results
