"""The markdown report: run conditions, then one table per part."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable

import torch
from textbench.cpu import CPU, LOAD

from .common import MB, MODEL, PAYLOAD_TARGETS, SERVER_TARGET_MS, fmt_bytes, fmt_ms, fmt_pct, page_views

Write = Callable[[str], None]


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def report(args, started: str, code: dict, loads, server, total_s: float) -> str:
    lines: list[str] = []
    w = lines.append
    _conditions(w, args, started, code, total_s)
    if loads:
        _loading(w, loads)
    if server:
        _server(w, server)
        _payloads(w, server)
        _view_times(w, server)
        if not args.no_bertviz:
            _bertviz(w, server, args)
    return "\n".join(lines) + "\n"


def _conditions(w: Write, args, started: str, code: dict, total_s: float) -> None:
    w("# attnviz bundled-decoder benchmark")
    w("")
    w(
        f"Run {started} UTC · {os.cpu_count()} CPU cores · torch threads {torch.get_num_threads()} "
        f"(`ATTNVIZ_THREADS`, default 1) · python {platform.python_version()} · torch {torch.__version__} "
        f"· transformers {_version('transformers')} · plotly {_version('plotly')} · bertviz {_version('bertviz')} "
        f"· sizes {','.join(map(str, args.sizes))} · {total_s:.0f} s in all"
    )
    w("")
    w(f"Model: bundled decoder **{MODEL}** (Llama, 30 layers × 9 heads = 270 heads), CPU. 1 MB = 10^6 bytes.")
    w("")
    loads = ", ".join(f"{k} {v:.2f}" for k, v in LOAD.items())
    w(f"1-minute load average when each phase started: {loads} (on {os.cpu_count()} cores).")
    w("")
    shares = ", ".join(f"{k} {fmt_pct(v)}" for k, v in CPU.phases.items())
    w(
        f"Share of the machine's CPU used by *other* processes (not this script or its children) during each "
        f"phase: {shares}. Times taken while other processes use the CPU are inflated; bytes are not."
    )
    w("")
    same = "unchanged during the run" if code.get("start") == code.get("end") else f"changed to {code.get('end')}"
    w(f"App code (attnviz/, pages/, app.py) fingerprint {code.get('start')}, {same}.")
    w("")


def _mb(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def _loading(w: Write, loads: list[dict]) -> None:
    w("## 1. Loading (each in a fresh process, `ATTNVIZ_CACHE_DIR` = a new temporary folder)")
    w("")
    w(
        "process = spawn to exit of the child; imports = `import torch, transformers` + the Llama module (the "
        "app has them before a model loads); load = `attnviz.load_text_model('SmolLM2-135M-Instruct')`. RSS = "
        "`VmRSS` of `/proc/self/status` (psutil agrees), peak = `VmHWM`."
    )
    w("")
    w("| load | process (s) | imports (s) | load_text_model (s) | RSS after imports (MB) | RSS after load (MB) "
      "| peak RSS (MB) | other CPU |")  # fmt: skip
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in loads:
        if "error" in r:
            w(f"| {r['kind']} | {r['wall_s']:.1f} | failed: {r['error']} | | | | | |")
            continue
        w(
            f"| {r['kind']} | {r['wall_s']:.1f} | {r['imports_s']:.1f} | {r['load_s']:.1f} "
            f"| {_mb(r['rss_after_imports_mb'])} | {_mb(r['rss_after_load_mb'])} | {_mb(r['peak_rss_mb'])} "
            f"| {fmt_pct(r.get('other_cpu'))} |"
        )
    w("")


def _server(w: Write, server: dict) -> None:
    repeats = next(iter(server.values()))["repeats"]
    w(f"## 2. New text → default view, in-process (medians of {repeats} runs after one warm-up; ms)")
    w("")
    w(
        "model call = `model.base_model(**inputs, output_attentions=True)` on the tokenized text; forward = "
        "`attnviz.text_attention` (tokenize + model call + weights to one float32 array); default view = "
        "`text_attention` + `make_view` + `figures.head_matrix(view, 0, 0)` + `to_json()`, as the page does for a "
        "new text ('Single head', layer 0, head 0); page's part = `make_view` + figure + `to_json`, timed in the same "
        "runs as their `text_attention` (median of those runs; two separate medians on a shared machine can differ "
        f"by more than it). Target: default view ≤ forward + {SERVER_TARGET_MS} ms, i.e. page's part ≤ "
        f"{SERVER_TARGET_MS} ms. RSS = this process after the size's measurements."
    )
    w("")
    w("| tokens | model call | forward (text_attention) | default view | page's part (same runs) "
      f"| target ≤ forward + {SERVER_TARGET_MS} | attention array (MB) | RSS (MB) | other CPU |")  # fmt: skip
    w("|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    for n, r in server.items():
        extra = r["default_added"]
        met = "met" if extra * 1000 <= SERVER_TARGET_MS else "MISSED"
        w(
            f"| {n} | {fmt_ms(r['model_call'])} | {fmt_ms(r['forward'])} | {fmt_ms(r['default'])} | {fmt_ms(extra)} "
            f"| {met} | {r['weights_mb']:,.1f} | {_mb(r['rss_mb'])} | {fmt_pct(r['other_cpu'])} |"
        )
    w("")


def _view_names(server: dict) -> list[str]:
    return list(next(iter(server.values()))["views"])


def _payloads(w: Write, server: dict) -> None:
    w("## 2b. Figure JSON of each view (what `st.plotly_chart` sends)")
    w("")
    targets = ", ".join(f"≤ {t / MB:g} MB at {n} tokens" for n, t in PAYLOAD_TARGETS.items())
    w(
        f"`len(fig.to_json())` for each view as the page first draws it (layer 0, head 0, colour scale 'fixed'; "
        f"head lines: the chosen head, threshold 0.05; from one token: token 1; rollout: mean over heads, nothing "
        f"discarded, relative to position). Target per view: {targets}. The last row is not a default: every head "
        f"of the layer added to 'Head lines'."
    )
    w("")
    sizes = list(server)
    w("| view | " + " | ".join(f"{n} tokens" for n in sizes) + " |")
    w("|---|" + "---:|" * len(sizes))
    for name in _view_names(server):
        cells = []
        for n in sizes:
            b = server[n]["views"][name]["bytes"]
            cell = fmt_bytes(b)
            if n in PAYLOAD_TARGETS:
                cell += " met" if b <= PAYLOAD_TARGETS[n] else " **MISSED**"
            cells.append(cell)
        w(f"| {name} | " + " | ".join(cells) + " |")
    w("")


def _view_times(w: Write, server: dict) -> None:
    w("## 2c. Time to build each view's figure (medians; ms)")
    w("")
    w(
        "source = what the view draws computed from the attention (rollout: `rollout_view(ta, "
        "causal_normalised=True)`; sinks: `attention_sinks(ta)`; the others draw the `make_view` view, whose time is "
        "in the first row); figure = the `attnviz.figures` function; to_json = `fig.to_json()`. total = source + "
        "figure + to_json: what switching to that view costs the server on a cache miss."
    )
    w("")
    sizes = list(server)
    w("| view | " + " | ".join(f"{n}: source / figure / to_json = total" for n in sizes) + " |")
    w("|---|" + "---:|" * len(sizes))
    w("| make_view | " + " | ".join(fmt_ms(server[n]["make_view"]) for n in sizes) + " |")
    for name in _view_names(server):
        cells = []
        for n in sizes:
            v = server[n]["views"][name]
            src = fmt_ms(v["source"]) if v["source"] else "–"
            cells.append(f"{src} / {fmt_ms(v['build'])} / {fmt_ms(v['to_json'])} = **{fmt_ms(v['total'])}**")
        w(f"| {name} | " + " | ".join(cells) + " |")
    w("")


def _bertviz(w: Write, server: dict, args) -> None:
    w("## 3. BertViz side by side (same attention)")
    w("")
    w(
        "Length of the HTML `bertviz.head_view` / `model_view(attention, tokens, html_action='return')` return, "
        "attention = tuple of 30 per-layer `[1, 9, n, n]` float32 tensors (the same weights as part 2), tokens as "
        "the page labels them; each size in a fresh process (time of each call, and that process's peak RSS). "
        "attnviz columns: the default view's figure JSON, and the seven views' JSON added up (a visitor who opens "
        "every view)."
    )
    w("")
    default = page_views(16)[0].name
    names = [s.name for s in page_views(16)]
    w("| tokens | attnviz default view | attnviz all 7 views | BertViz head_view | BertViz model_view "
      "| model_view / default view | head_view (s) | model_view (s) | BertViz peak RSS (MB) | other CPU |")  # fmt: skip
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in server.items():
        views = r["views"]
        ours = views[default]["bytes"]
        every = sum(views[k]["bytes"] for k in names)
        bv = r.get("bertviz") or {}
        if "error" in bv or not bv:
            why = bv.get("error", "not run")
            w(f"| {n} | {fmt_bytes(ours)} | {fmt_bytes(every)} | {why} | | | | | | |")
            continue
        mv = bv.get("model_view")
        ratio = f"{mv / ours:,.0f}×" if mv else bv.get("model_view_error", "n/a")
        w(
            f"| {n} | {fmt_bytes(ours)} | {fmt_bytes(every)} | {fmt_bytes(bv.get('head_view'))} "
            f"| {fmt_bytes(mv)} | {ratio} | {bv.get('head_view_s', 0):.1f} | {bv.get('model_view_s', 0):.1f} "
            f"| {_mb(bv.get('peak_rss_mb'))} | {fmt_pct(bv.get('other_cpu'))} |"
        )
    w("")
    if args.bertviz_limit_gb > 0:
        w(f"The BertViz process's address space was capped at {args.bertviz_limit_gb:g} GB (`--bertviz-limit-gb`).")
        w("")
