#!/usr/bin/env python
"""Long prompts on the bundled decoder (issue 13): memory, forward passes and every long view, CPU.

Run from the repository root::

    python benchmarks/long_prompts.py                         # 512, 2,048, 4,096 and 8,192 tokens
    python benchmarks/long_prompts.py --quick                 # 512 and 2,048 only
    python benchmarks/long_prompts.py --lengths 1024 --no-eager

Each length runs in fresh processes (``--child``, this file again), so every peak is clean:

1. **attnviz** (``--child attnviz N``): ``attnviz.load_text_model("SmolLM2-135M-Instruct")``,
   torch threads 2, an input of exactly N tokens (README.md repeated, cut at a token and
   checked), then the peak resident set above what the process held right after loading and
   tokenizing (the kernel's peak, ``VmHWM`` / ``ru_maxrss``, reset through
   ``/proc/self/clear_refs`` at that point, so the load's own peak does not count) while
   ``attnviz.text_attention`` runs, while the views run, and while the sweep runs. Then every view
   a long input offers, each computed, drawn and serialised (``fig.to_json()``, what
   ``st.plotly_chart`` sends) ``--repeats`` times: server time (median) and bytes. Last, the
   forward pass with recording (``text_attention``) and plain SDPA (``tm.model.base_model`` with
   ``set_attn_implementation("sdpa")``, ``use_cache=False``, attention restored after) take turns
   ``--forward-repeats`` times, so load from other processes falls on both alike.
2. **eager** (``--child eager N``): the same model with its eager attention and
   ``output_attentions=True`` (every layer's and head's ``[n, n]`` weights at once), in a process
   whose address space is capped (``RLIMIT_AS``, ``--eager-limit-gb``), so that running out is a
   clean allocation error there and not the kernel's OOM killer picking someone's process. The
   first length that fails stops the eager runs.

Prints markdown and writes it to ``benchmarks/results-long-prompts.md`` (``--out``); progress goes
to stderr. Targets (issue 13) are printed next to the results (met / MISSED), never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
for _p in (REPO, BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

MODEL = "SmolLM2-135M-Instruct"
OUT_MD = BENCH / "results-long-prompts.md"
DEFAULT_LENGTHS = [512, 2048, 4096, 8192]
QUICK_LENGTHS = [512, 2048]
THREADS = 2
MB = 1_000_000  # payload: 1 MB = 10^6 bytes
MIB = 2**20  # resident memory: MB = 2^20 bytes, as /proc reports it
#: Issue 13's targets: peak RSS above the loaded model (MiB), bytes per view, server time per switch (s).
RSS_TARGET = {512: 300, 2048: 500, 4096: 800, 8192: 1500}
PAYLOAD_TARGET = 3 * MB
SWITCH_TARGET = {512: 0.3, 2048: 0.5, 4096: 1.0, 8192: 1.0}
#: A sustained GPU rate for the "what a GPU user should expect" line (FLOP/s).
GPU_RATE = 50e12
ZOOM = 256
#: The second memory measurement: glibc's own dynamic mmap threshold instead of the one attnviz sets
#: (``attnviz.device.apply_memory_setting``, 128 kB unless ``ATTNVIZ_MMAP_THRESHOLD`` says otherwise).
GLIBC_OWN = {"ATTNVIZ_MMAP_THRESHOLD": "0"}
#: The code measured: fingerprinted at the start and the end of a run (other people edit it meanwhile).
CODE_GLOBS = ["attnviz/**/*.py"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- in the child process


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> bool:
    """Reset the kernel's peak RSS of this process to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


class Peak:
    """Peak RSS above ``base`` (MiB) while a block runs; the peak is reset when it starts."""

    def __init__(self, base: float):
        self.base = base
        self.above = None

    def __enter__(self):
        gc.collect()
        _reset_peak()
        return self

    def __exit__(self, *exc):
        self.above = _peak_mib() - self.base
        return False


def _text_of(tokenizer, n: int) -> str:
    """README.md repeated and cut to a text the tokenizer counts as exactly ``n`` tokens."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ids: list[int] = []
    text = ""
    while len(ids) < n + 64:
        text += readme + "\n\n"
        ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    added = len(tokenizer("a", verbose=False)["input_ids"]) - 1  # SmolLM2's tokenizer adds none
    want = n - added
    # Decoding a prefix of ids and tokenizing it again can merge pieces at the cut: count again.
    for delta in range(16):
        for k in sorted({want - delta, want + delta}):
            candidate = tokenizer.decode(ids[:k])
            if len(tokenizer(candidate, verbose=False)["input_ids"]) == n:
                return candidate
    raise SystemExit(f"could not build an input of exactly {n} tokens")


def _load():
    import torch

    import attnviz

    t0 = time.perf_counter()
    tm = attnviz.load_text_model(MODEL)
    load_s = time.perf_counter() - t0
    torch.set_num_threads(THREADS)
    return tm, load_s


def _median(xs):
    return statistics.median(xs) if xs else None


def _figure_only(make_figure, repeats: int) -> dict:
    """A view drawn from numbers already computed: the figure and its JSON, timed ``repeats`` times."""
    rows = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        payload = len(make_figure().to_json().encode())
        rows.append((time.perf_counter() - t0, payload))
    times = [r[0] for r in rows]
    median = _median(times)
    return {"compute_s": 0.0, "figure_s": median, "total_s": median, "all_s": times, "bytes": rows[-1][1]}


def _views(tm, ta, repeats: int, sweep_repeats: int, base: float) -> dict:
    """Every long view: compute, figure, ``to_json``; medians of ``repeats`` and bytes."""
    import pandas as pd

    from attnviz.figures import pooled as pf
    from attnviz.figures.matrix import head_matrix
    from attnviz.text import long_views as lv

    n, layers = ta.n_tokens, ta.n_layers
    layer, head = layers // 2, 0
    title = f"{ta.model_name} · layer {{}} · head {{}}"

    def pooled(l, h):
        ph = lv.pooled_head(ta, l, h, how="max")
        return lambda: pf.pooled_head(ph.pooled, ph.tokens, title=title.format(l, h), causal=ta.causal)

    def zoom():
        view = lv.zoom_window(ta, layer, head, slice(n - ZOOM, n), slice(n - ZOOM, n))
        return lambda: head_matrix(view, 0, 0, scale="fixed")

    def strongest():
        q = n - 1
        sk = lv.strongest_from(ta, layer, head, q, k=20)
        return lambda: pf.strongest_keys_figure(ta.tokens, q, *sk, title=title.format(layer, head))

    class _Table:  # what the page shows for the strongest edges: a 50-row table, sent as JSON
        def __init__(self, frame):
            self.frame = frame

        def to_json(self):
            return self.frame.to_json(orient="split")

    def edges():
        se = lv.strongest_edges(ta, layer, head, k=50, skip_first=True)
        frame = pd.DataFrame(
            {
                "query": se.queries,
                "query token": [ta.tokens[i] for i in se.queries],
                "key": se.keys,
                "key token": [ta.tokens[i] for i in se.keys],
                "weight": se.weights,
            }
        )
        return lambda: _Table(frame)

    def mosaic():
        pm = lv.pooled_layer(ta, layer, how="max")
        return lambda: pf.pooled_layer(
            pm.values, pm.query_edges, key_edges=pm.key_edges, layer=layer, how=pm.how, causal=ta.causal,
            model_name=ta.model_name,
        )  # fmt: skip

    cases = {
        "pooled head": lambda: pooled(layer, head),
        "another head": lambda: pooled(layer, head + 1),
        "another layer": lambda: pooled(layer + 1, head),
        f"zoom {ZOOM}×{ZOOM}": zoom,
        "strongest keys of one token": strongest,
        "strongest edges (table)": edges,
        "pooled layer (mosaic)": mosaic,
    }
    out: dict = {"views": {}}
    with Peak(base) as peak:
        for name, compute in cases.items():
            rows = []
            for _ in range(repeats):
                gc.collect()
                t0 = time.perf_counter()
                draw = compute()
                t1 = time.perf_counter()
                payload = len(draw().to_json().encode())
                t2 = time.perf_counter()
                rows.append((t1 - t0, t2 - t1, t2 - t0, payload))
            out["views"][name] = {
                "compute_s": _median([r[0] for r in rows]),
                "figure_s": _median([r[1] for r in rows]),
                "total_s": _median([r[2] for r in rows]),
                "all_s": [r[2] for r in rows],
                "bytes": rows[-1][3],
            }
            log(f"  {name}: {out['views'][name]['total_s']:.3f} s, {rows[-1][3] / MB:.3f} MB")
    out["views_peak_mib"] = peak.above

    sweeps, sw = [], None
    with Peak(base) as peak:
        for _ in range(sweep_repeats):
            sw = None
            gc.collect()
            t0 = time.perf_counter()
            sw = lv.sweep(ta)
            sweeps.append(time.perf_counter() - t0)
            log(f"  sweep: {sweeps[-1]:.1f} s")
    out["sweep_peak_mib"] = peak.above
    out["sweep_s"] = _median(sweeps)
    out["sweep_all_s"] = sweeps
    out["statistics_rows"] = len(sw.statistics)
    ov = sw.overview
    out["views"]["overview (from the sweep)"] = _figure_only(
        lambda: pf.pooled_overview(
            ov.values, ov.query_edges, key_edges=ov.key_edges, how=ov.how, causal=ta.causal, model_name=ta.model_name
        ),
        repeats,
    )
    # The page's "every head of a layer" once the sweep has run: no computing.
    out["views"]["pooled layer, read from the sweep"] = _figure_only(
        lambda: pf.pooled_layer(
            ov.values[layer], ov.query_edges, key_edges=ov.key_edges, layer=layer, how=ov.how, causal=ta.causal,
            model_name=ta.model_name,
        ),  # fmt: skip
        repeats,
    )
    out["sweep_bins"] = int(ov.values.shape[-1])
    log(f"  overview figure: {_median([r[0] for r in rows]):.3f} s, {rows[-1][1] / MB:.3f} MB")
    del sw
    return out


def _warm_up(tm, eager: bool) -> None:
    """One short forward pass of each kind measured, before the baseline: the model's weights are
    mapped from their safetensors file and become resident only when a forward pass first reads
    them (~400 MB here), and the first call of a kernel pays its set-up."""
    import torch

    import attnviz

    short = _text_of(tm.tokenizer, 64)
    if eager:
        with tm.lock, torch.inference_mode():
            tm.model.base_model(**tm.tokenizer(short, return_tensors="pt"), output_attentions=True, use_cache=False)
    else:
        attnviz.text_attention(tm, short)
        _plain_forward(tm, dict(tm.tokenizer(short, return_tensors="pt")))
    gc.collect()


def _plain_forward(tm, inputs) -> float:
    """The same forward pass with transformers' SDPA and nothing recorded; the attention restored."""
    import torch

    model = tm.model.base_model
    with tm.lock, torch.inference_mode():
        before = model.config._attn_implementation
        model.set_attn_implementation("sdpa")
        try:
            t0 = time.perf_counter()
            model(**inputs, use_cache=False)
            return time.perf_counter() - t0
        finally:
            model.set_attn_implementation(before)


def child_attnviz(n: int, repeats: int, sweep_repeats: int, forward_repeats: int) -> dict:
    import attnviz
    from attnviz.text import forward_cost

    tm, load_s = _load()
    text = _text_of(tm.tokenizer, n)
    inputs = {k: v for k, v in tm.tokenizer(text, return_tensors="pt").items() if k in ("input_ids", "attention_mask")}
    assert inputs["input_ids"].shape[1] == n, inputs["input_ids"].shape
    out: dict = {"n": n, "load_s": load_s, "rss_load_cold_mib": _status_mib("VmRSS")}
    _warm_up(tm, eager=False)
    gc.collect()
    _reset_peak()
    base = _status_mib("VmRSS")
    from attnviz.device import apply_memory_setting

    out.update(rss_loaded_mib=base, threads=__import__("torch").get_num_threads())
    out["mmap_threshold"] = apply_memory_setting()  # set when the model was created; 0: glibc's own
    out["flops"] = forward_cost.forward_flops(tm, n)
    out["flops_by_n"] = {str(m): forward_cost.forward_flops(tm, m) for m in DEFAULT_LENGTHS}
    log(f"n={n}: model loaded ({load_s:.1f} s, RSS {base:.0f} MB); forward with recording")

    with Peak(base) as peak:
        t0 = time.perf_counter()
        ta = attnviz.text_attention(tm, text)
        out["record_first_s"] = time.perf_counter() - t0
    out["forward_peak_mib"] = peak.above
    gc.collect()
    out["held_after_forward_mib"] = _status_mib("VmRSS") - base
    out["recorded_mib"] = ta.recorded.nbytes / MIB
    out["holds_weights"] = ta.holds_weights
    if ta.n_tokens != n:
        raise SystemExit(f"text_attention saw {ta.n_tokens} tokens, not {n}")
    log(f"  forward {out['record_first_s']:.1f} s, peak +{peak.above:.0f} MB, q/k {out['recorded_mib']:.0f} MB")

    out.update(_views(tm, ta, repeats, sweep_repeats, base))
    out["peak_above_model_mib"] = max(out["forward_peak_mib"], out["views_peak_mib"], out["sweep_peak_mib"])

    # Forward passes, taking turns: plain SDPA, then with recording (one result alive at a time).
    del ta
    gc.collect()
    plain, record = [], []
    for i in range(forward_repeats):
        plain.append(_plain_forward(tm, inputs))
        t0 = time.perf_counter()
        ta = attnviz.text_attention(tm, text)
        record.append(time.perf_counter() - t0)
        del ta
        gc.collect()
        log(f"  forward {i + 1}/{forward_repeats}: plain SDPA {plain[-1]:.2f} s, with recording {record[-1]:.2f} s")
    out.update(plain_s=_median(plain), plain_all_s=plain, record_s=_median(record), record_all_s=record)
    return out


def child_eager(n: int, limit_gb: float, forward_repeats: int) -> dict:
    import torch

    tm, load_s = _load()
    text = _text_of(tm.tokenizer, n)
    inputs = {k: v for k, v in tm.tokenizer(text, return_tensors="pt").items() if k in ("input_ids", "attention_mask")}
    assert inputs["input_ids"].shape[1] == n
    model = tm.model.base_model
    out: dict = {"n": n, "attn": model.config._attn_implementation, "limit_gb": limit_gb}
    _warm_up(tm, eager=True)
    if limit_gb > 0:
        cap = int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    _reset_peak()
    base = _status_mib("VmRSS")
    out["rss_loaded_mib"] = base
    times = []
    log(f"n={n}: eager output_attentions (address space capped at {limit_gb:g} GB)")
    try:
        for _ in range(forward_repeats):
            with tm.lock, torch.inference_mode():
                t0 = time.perf_counter()
                result = model(**inputs, output_attentions=True, use_cache=False)
                times.append(time.perf_counter() - t0)
            out["attentions_mib"] = sum(a.numel() * a.element_size() for a in result.attentions) / MIB
            del result
            gc.collect()
            log(f"  eager forward {times[-1]:.2f} s")
    except (MemoryError, RuntimeError) as exc:
        text = str(exc)
        if not isinstance(exc, MemoryError) and "alloc" not in text.lower() and "memory" not in text.lower():
            raise
        out["error"] = f"out of memory ({type(exc).__name__}: {text.splitlines()[0][:160]})"
        log(f"  eager: {out['error']}")
    out["eager_s"] = _median(times)
    out["eager_all_s"] = times
    out["peak_above_model_mib"] = _peak_mib() - base
    return out


# ---------------------------------------------------------------- the parent


def run_child(args: list[str], timeout: float, env: dict[str, str] | None = None) -> dict:
    """One child's RESULT dict, plus the wall time, the load average and other processes' CPU share."""
    from textbench.cpu import CPU

    mark = CPU.start()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    env = {**os.environ, "ATTNVIZ_THREADS": str(THREADS), "PYTHONUNBUFFERED": "1", **(env or {})}
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=None,  # the child's progress goes straight to our stderr
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s", "wall_s": time.perf_counter() - t0, "load": load}
    extra = {"wall_s": time.perf_counter() - t0, "other_cpu": CPU.share(mark), "load": load}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**json.loads(line[len("RESULT ") :]), **extra}
    if proc.returncode < 0:
        why = f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
    else:
        why = f"exit status {proc.returncode}"
    return {"error": why, **extra}


def code_fingerprint() -> dict:
    """The commit, and a hash of attnviz's code as the working tree holds it now (with uncommitted edits)."""
    import hashlib

    digest = hashlib.sha256()
    for f in sorted(p for g in CODE_GLOBS for p in REPO.glob(g)):
        digest.update(str(f.relative_to(REPO)).encode())
        digest.update(f.read_bytes())
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "attnviz"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", ""
    return {"commit": commit, "attnviz_edited": bool(dirty), "hash": digest.hexdigest()[:12]}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_total_gib() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _s(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _ms(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 1000:,.0f}"


def _mark(ok: bool) -> str:
    return "met" if ok else "**MISSED**"


def report(
    args, started: str, results: dict, eager: dict, fixed: dict, total_s: float, code: dict | None = None
) -> str:
    import torch

    lines: list[str] = []
    w = lines.append
    lengths = [n for n in args.lengths if n in results]
    w("# Long prompts on the bundled decoder (issue 13)")
    w("")
    w(
        f"Run {started} UTC, {total_s / 60:.1f} min · {os.cpu_count()} CPU cores ({_cpu_name()}), "
        f"{_mem_total_gib():.0f} GiB memory · torch {torch.__version__}, threads {THREADS} · "
        f"`python benchmarks/long_prompts.py {' '.join(args.argv)}`".rstrip()
    )
    if code:
        a, b = code["start"], code["end"]
        w("")
        if a["hash"] == b["hash"]:
            moved = (
                ""
                if a["commit"] == b["commit"]
                else f" (commits elsewhere in the repository meanwhile: `{b['commit']}`)"
            )
            after = f"`attnviz/` unchanged during the run{moved}."
        else:
            after = f"**`attnviz/` changed during the run** (`{b['commit']}`, hash `{b['hash']}`)."
        w(
            f"Code measured: commit `{a['commit']}`"
            + (" with uncommitted edits in `attnviz/`" if a["attnviz_edited"] else "")
            + f" (attnviz hash `{a['hash']}`); "
            + after
        )
    w("")
    w(
        f"Model: **{MODEL}** (Llama, 30 layers × 9 query heads, 3 key heads), float32 on the CPU. Inputs: "
        "README.md repeated and cut to exactly n tokens (checked). **The machine is shared: other jobs "
        "(other agents' tests and benchmarks) ran during this run**, so times are inflated by an amount "
        "that varies from row to row; the load average and other processes' CPU share are given per "
        "length. Bytes and memory are not affected. Payload 1 MB = 10^6 bytes; memory MB = 2^20 bytes."
        + (f" {args.note}" if args.note else "")
    )
    w("")
    w("## The issue's table")
    w("")
    w("| tokens | " + " | ".join(f"{n:,}" for n in lengths) + " |")
    w("|---|" + "---:|" * len(lengths))
    row = []
    for n in lengths:
        r = results[n]
        if "error" in r:
            row.append(r["error"])
            continue
        peak, target = r["peak_above_model_mib"], RSS_TARGET.get(n)
        row.append(f"{peak:,.0f} MB" + (f" (≤ {target:,} MB: {_mark(peak <= target)})" if target else ""))
    w("| peak RSS above the loaded model | " + " | ".join(row) + " |")
    row = []
    for n in lengths:
        r = results[n]
        if "error" in r:
            row.append("n/a")
            continue
        name, v = max(r["views"].items(), key=lambda kv: kv[1]["bytes"])
        row.append(f"{v['bytes'] / MB:.3f} MB, {name} (≤ 3 MB: {_mark(v['bytes'] <= PAYLOAD_TARGET)})")
    w("| bytes sent, largest view | " + " | ".join(row) + " |")
    row = []
    for n in lengths:
        r = results[n]
        if "error" in r:
            row.append("n/a")
            continue
        name, v = max(r["views"].items(), key=lambda kv: kv[1]["total_s"])
        target = SWITCH_TARGET.get(n)
        row.append(
            f"{v['total_s']:.2f} s, {name}" + (f" (≤ {target:g} s: {_mark(v['total_s'] <= target)})" if target else "")
        )
    w("| switch layer/head/view, slowest view, server time | " + " | ".join(row) + " |")
    row = []
    for n in lengths:
        r = results[n]
        if "error" in r:
            row.append("n/a")
            continue
        fast = {k: v for k, v in r["views"].items() if k not in ("pooled layer (mosaic)",)}
        name, v = max(fast.items(), key=lambda kv: kv[1]["total_s"])
        row.append(f"{v['total_s']:.2f} s, {name}")
    w("| … slowest apart from the pooled layer | " + " | ".join(row) + " |")
    w("| load average / other processes' CPU | " + " | ".join(
        "n/a" if "error" in results[n] else f"{results[n]['load']:.1f} / {results[n]['other_cpu']:.0%}" for n in lengths
    ) + " |")  # fmt: skip
    w("")
    w(
        "Peak RSS: the kernel's peak resident set of the length's fresh process (`ru_maxrss`), reset with "
        "`/proc/self/clear_refs` once the model was loaded and the text tokenized, minus the RSS at that "
        "point; the largest of the three phases below (forward, views, sweep). *Loaded* includes one 64-token "
        "forward pass of each kind: the weights are mapped from their safetensors file and only become "
        "resident when a forward pass first reads them (RSS 436 → ~870 MB, all of it file-backed pages), which "
        "would otherwise be counted against the first long input. Server time: compute + "
        "figure + `to_json()`, median of "
        f"{args.repeats}, from attention already recorded (the forward pass is not repeated)."
    )
    w("")

    w("## Forward passes, side by side")
    w("")
    w(
        "Same process and model, taking turns (plain, recording, plain, …), "
        f"{args.forward_repeats} of each, medians; the first `text_attention` (cold, the one whose memory "
        "is measured) separately. Eager `output_attentions` runs in its own process with its address space "
        f"capped at {args.eager_limit_gb:g} GB (`RLIMIT_AS`), median of {args.forward_repeats}."
    )
    w("")
    w(
        "| tokens | FLOPs (`forward_flops`) | plain SDPA (s) | with recording (s) | recording / plain | "
        "first `text_attention` (s) | CPU rate (GFLOP/s) | eager `output_attentions` (s) | eager peak above model "
        "| eager weights held (30·9·n²·4 B) |"
    )
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in lengths:
        r = results[n]
        e = eager.get(n)
        theory = 30 * 9 * n * n * 4
        if "error" in r:
            w(f"| {n:,} | | {r['error']} | | | | | | | {theory / 2**30:.2f} GiB |")
            continue
        if e is None:
            ecell, epeak = (
                "not run"
                + (f" (stopped: out of memory at {eager['stopped_at']:,})" if eager.get("stopped_at") else ""),
                "",
            )
        elif "error" in e:
            ecell, epeak = (
                f"**{e['error'].split(' (')[0]}**",
                (f"{e['peak_above_model_mib']:,.0f} MB when it failed" if "peak_above_model_mib" in e else ""),
            )
        else:
            ecell, epeak = _s(e["eager_s"]), f"{e['peak_above_model_mib']:,.0f} MB"
        ratio = r["record_s"] / r["plain_s"] if r["plain_s"] else None
        rate = r["flops"] / r["plain_s"] / 1e9 if r["plain_s"] else None
        w(
            f"| {n:,} | {r['flops'] / 1e12:.2f} T | {_s(r['plain_s'])} | {_s(r['record_s'])} | {_s(ratio)}× | "
            f"{_s(r['record_first_s'])} | {_s(rate, 0)} | {ecell} | {epeak} | {theory / 2**30:.2f} GiB |"
        )
    w("")
    if eager.get("stopped_at"):
        e = eager[eager["stopped_at"]]
        w(
            f"Eager attention ran out of memory at **{eager['stopped_at']:,} tokens** under the "
            f"{args.eager_limit_gb:g} GB cap: {e['error']}. Longer lengths were not tried."
        )
        w("")
    w(
        "Two torch threads on two cores that other processes also use wait for each other at every operation, "
        "so one forward pass can take several times another of the same length (the medians are of 3). Where "
        "*recording / plain* is below 1, or the first pass beats the median, the load moved between the turns: "
        "recording runs the same SDPA kernel and only copies each layer's q and k."
    )
    w("")

    w("## Memory per phase (MB above the loaded model)")
    w("")
    w(
        "| tokens | RSS after load → after warm-up (the baseline) | forward (peak) | held after the forward "
        "| recorded q and k (`nbytes`) | views (peak) | sweep (peak) | target "
        "| with glibc's own threshold (`ATTNVIZ_MMAP_THRESHOLD=0`): forward / views / sweep |"
    )
    w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in lengths:
        r = results[n]
        if "error" in r:
            continue
        f = fixed.get(n)
        if f is None:
            fcell = "not run"
        elif "error" in f:
            fcell = f["error"]
        else:
            fcell = f"{f['forward_peak_mib']:,.0f} / {f['views_peak_mib']:,.0f} / {f['sweep_peak_mib']:,.0f}"
        w(
            f"| {n:,} | {r['rss_load_cold_mib']:,.0f} → {r['rss_loaded_mib']:,.0f} | {r['forward_peak_mib']:,.0f} "
            f"| {r['held_after_forward_mib']:,.0f} | {r['recorded_mib']:,.0f} | {r['views_peak_mib']:,.0f} "
            f"| {r['sweep_peak_mib']:,.0f} | {f'≤ {RSS_TARGET[n]:,}' if n in RSS_TARGET else '—'} | {fcell} |"
        )
    w("")
    w(
        "Views and sweep run after the forward pass, so their peaks include the recorded queries and keys held "
        "from it. attnviz fixes glibc's mmap threshold at 128 kB when a model is created "
        "(`attnviz.device.apply_memory_setting`; the main columns, as the app runs). The last column is a second "
        "fresh process per length with `ATTNVIZ_MMAP_THRESHOLD=0`, which leaves glibc's own dynamic threshold: "
        "once a large block (a view's float32 rows, numpy's temporaries) is freed, glibc raises the threshold "
        "up to 32 MB, later blocks of that size come from its heaps, and what they free stays resident. The "
        "difference between the two is memory glibc keeps after it was freed."
    )
    w("")

    sweep_bins = next((r["sweep_bins"] for r in results.values() if "sweep_bins" in r), "?")
    w("## Every view after the forward pass")
    w("")
    w(
        f"Layer 15, head 0 (the model's middle layer) unless said: *another head* is layer 15 head 1, *another "
        f"layer* layer 16 head 0. Pooled head: 256 × 256 bins, max; zoom: the last {ZOOM} queries × the last "
        f"{ZOOM} keys, exact, drawn by `figures.matrix.head_matrix`; strongest keys: the last token's 20; "
        "strongest edges: 50, first key skipped (no figure: the bytes are the table as JSON); pooled layer: "
        "9 heads, 128 × 128 bins, computed (`long_views.pooled_layer`) and drawn as one PNG mosaic; after the "
        "sweep the page reads a layer's heads from it instead (*pooled layer, read from the sweep*: the figure "
        f"only); overview: `pooled_overview` of the sweep's 30 × 9 heads of {sweep_bins} × {sweep_bins} bins, "
        "pooled again to its thumbnails (the sweep itself is the last row). Cells: server time in ms, median "
        "(compute part in brackets) · bytes."
    )
    w("")
    names = []
    for n in lengths:
        if "error" not in results[n]:
            names += [k for k in results[n]["views"] if k not in names]
    w("| view | " + " | ".join(f"{n:,} tokens" for n in lengths) + " |")
    w("|---|" + "---:|" * len(lengths))
    for name in names:
        cells = []
        for n in lengths:
            v = results[n].get("views", {}).get(name)
            if v is None:
                cells.append("n/a")
                continue
            t = SWITCH_TARGET.get(n)
            mark = "" if t is None or v["total_s"] <= t else " ⚠"
            cells.append(f"{_ms(v['total_s'])}{mark} ({_ms(v['compute_s'])}) · {v['bytes'] / MB:.3f} MB")
        w(f"| {name} | " + " | ".join(cells) + " |")
    cells = []
    for n in lengths:
        r = results[n]
        cells.append(
            "n/a" if "error" in r else f"{_s(r['sweep_s'], 1)} s ({', '.join(f'{x:.1f}' for x in r['sweep_all_s'])})"
        )
    w("| sweep: every head's statistics and the pooled overview | " + " | ".join(cells) + " |")
    w("")
    w(f"⚠: over the switch target ({', '.join(f'{t:g} s at {n:,}' for n, t in SWITCH_TARGET.items())}).")
    w("")

    w("## What a GPU user should expect")
    w("")
    flops: dict[int, float] = {}
    for r in results.values():
        flops.update({int(k): v for k, v in r.get("flops_by_n", {}).items()})
        if "flops" in r:
            flops[r["n"]] = r["flops"]
    parts = [f"{f / 1e12:.2f} TFLOP at {n:,} tokens ({f / GPU_RATE:.3f} s)" for n, f in sorted(flops.items())]
    w(
        "`forward_cost.forward_flops` counts one forward pass (2 × layer parameters × n for the products, plus "
        "half of 4 × layers × heads × d_head × n² for the causal attention): " + "; ".join(parts) + ", the seconds "
        f"at a sustained {GPU_RATE / 1e12:.0f} TFLOP/s (an H100's float32 peak is ~67 TFLOP/s; in TF32 or bf16 it "
        "does far more). A model this small keeps a GPU well below its peak, but even at a tenth of that rate "
        "the 8,192-token pass takes under a second, against the tens of seconds to minutes measured on these two "
        "shared cores. The recording adds no FLOPs (it keeps q and k); a view's per-head softmax is "
        "~2·n²·d_head FLOPs per head (8.6 GFLOP at 8,192), milliseconds on a GPU. Not measured here: this task "
        "had no GPU."
    )
    w("")
    w("## BertViz, for comparison (from the issue's facts; not installed or run here)")
    w("")
    w(
        "- BertViz fails at 512 tokens (its issue #82); inside Streamlit its HTML passes Streamlit's 200 MB "
        "message limit near 250 tokens (`benchmarks/decoder.py` measured its model_view HTML at 123 MB for 128 "
        "tokens and 1,993 MB for 512 with this model)."
    )
    w(
        "- Like any viewer built on `output_attentions`, it needs the eager weights of every layer and head at "
        "once: 30 · 9 · n² · 4 bytes, 1.1 GB at 1,024 tokens, 18 GB at 4,096, 72 GB at 8,192 (column *eager "
        "weights held* above; the eager runs here show where that stops)."
    )
    largest = max((v["bytes"] for r in results.values() for v in r.get("views", {}).values()), default=0)
    w(
        "- attnviz keeps the queries and keys (30 · n · (9 + 3) · 64 · 4 bytes: 755 MB at 8,192) and computes a "
        f"head when a view asks for it; the largest view above sends {largest / MB:.2f} MB, and a view's size "
        "depends on its bins, not on the length."
    )
    w("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lengths", type=int, nargs="+", default=None, help="token counts (default 512 2048 4096 8192)")
    ap.add_argument("--quick", action="store_true", help="512 and 2,048 tokens only")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs of each view (median)")
    ap.add_argument("--sweep-repeats", type=int, default=None, help="timed sweeps (default: --repeats)")
    ap.add_argument("--forward-repeats", type=int, default=3, help="forward passes of each kind (median)")
    ap.add_argument("--no-eager", action="store_true", help="skip eager output_attentions")
    ap.add_argument(
        "--no-glibc-own", dest="glibc_own", action="store_false",
        help="skip the second memory measurement with glibc's own mmap threshold (ATTNVIZ_MMAP_THRESHOLD=0)",
    )  # fmt: skip
    ap.add_argument("--eager-limit-gb", type=float, default=12.0, help="address-space cap of the eager process")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per child process")
    ap.add_argument("--wait-quiet", type=float, default=10.0, help="wait up to S s for an idle CPU before each length")
    ap.add_argument("--out", type=Path, default=OUT_MD, help="markdown file written (default results-long-prompts.md)")
    ap.add_argument(
        "--report-from", type=Path, default=None,
        help="write the markdown again from a run's raw results (the JSON written next to --out), without running",
    )  # fmt: skip
    ap.add_argument("--note", default="", help="a sentence added to the run's conditions in the markdown")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.lengths = sorted(set(args.lengths or (QUICK_LENGTHS if args.quick else DEFAULT_LENGTHS)))
    if args.sweep_repeats is None:
        args.sweep_repeats = args.repeats
    if any(n < ZOOM + 1 or n > 8192 for n in args.lengths):
        raise SystemExit(f"lengths must be between {ZOOM + 1} and 8,192 tokens (the bundled decoder's limit)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        mode, n = args.child[0], int(args.child[1])
        if mode == "attnviz":
            out = child_attnviz(n, args.repeats, args.sweep_repeats, args.forward_repeats)
        elif mode == "eager":
            out = child_eager(n, args.eager_limit_gb, args.forward_repeats)
        else:
            raise SystemExit(f"unknown child mode {mode!r}")
        print("RESULT " + json.dumps(out), flush=True)
        return

    if args.report_from:
        raw = json.loads(args.report_from.read_text(encoding="utf-8"))

        def keyed(d):
            return {(int(k) if k.isdigit() else k): v for k, v in d.items()}

        run = parse_args(raw["argv"])
        run.note = args.note or run.note
        md = report(
            run,
            raw["started"],
            keyed(raw["results"]),
            keyed(raw["eager"]),
            keyed(raw["fixed"]),
            raw["total_s"],
            raw.get("code"),
        )
        print(md)
        args.out.write_text(md + "\n", encoding="utf-8")
        return

    from textbench.cpu import wait_for_quiet_cpu

    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    code_start = code_fingerprint()
    t_start = time.perf_counter()
    log(f"{os.cpu_count()} CPU cores, torch threads {THREADS}; other jobs may be running on this machine")
    common = ["--repeats", str(args.repeats), "--sweep-repeats", str(args.sweep_repeats),
              "--forward-repeats", str(args.forward_repeats), "--eager-limit-gb", str(args.eager_limit_gb)]  # fmt: skip
    results: dict = {}
    eager: dict = {}
    fixed: dict = {}
    for n in args.lengths:
        wait_for_quiet_cpu(args.wait_quiet)
        log(f"--- {n:,} tokens: attnviz (recording, views, sweep, forward passes)")
        results[n] = run_child(["attnviz", str(n), *common], args.timeout)
        if "error" in results[n]:
            log(f"  attnviz child failed: {results[n]['error']}")
        if args.glibc_own:
            log(f"--- {n:,} tokens: memory again, with glibc's own mmap threshold (ATTNVIZ_MMAP_THRESHOLD=0)")
            once = ["--repeats", "1", "--sweep-repeats", "1", "--forward-repeats", "0"]
            fixed[n] = run_child(["attnviz", str(n), *once], args.timeout, GLIBC_OWN)
        if args.no_eager or eager.get("stopped_at"):
            continue
        log(f"--- {n:,} tokens: eager output_attentions")
        eager[n] = run_child(["eager", str(n), *common], args.timeout)
        if "error" in eager[n]:
            eager["stopped_at"] = n
    raw = {"started": started, "total_s": time.perf_counter() - t_start, "argv": args.argv}
    raw["code"] = {"start": code_start, "end": code_fingerprint()}
    raw.update(results=results, eager=eager, fixed=fixed)
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")
    md = report(args, started, results, eager, fixed, raw["total_s"], raw["code"])
    print(md)
    args.out.write_text(md + "\n", encoding="utf-8")
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
