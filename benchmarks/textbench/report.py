"""The markdown report: run conditions, then one table per measurement."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Callable, Iterator

import torch

from .common import (
    CODE,
    DRAW_TARGET_MS,
    MB,
    PAYLOAD_TARGETS,
    SERVER_TARGET_MS,
    VIEW_SIZE,
    VIEWS,
    fmt_bytes,
    fmt_ms,
    fmt_pct,
    median,
)
from .cpu import CPU, LOAD
from .server_time import FIGURE_STEPS

Write = Callable[[str], None]


def report(args, cases, server, bv, br, started: float, total_s: float | None) -> str:
    lines: list[str] = []
    w = lines.append
    _conditions(w, args, cases, started)
    _payload(w, args, cases, bv, br)
    if br and br.get("views"):
        _views(w, cases, br["views"])
    if server:
        _server_time(w, args, cases, server)
    if br and br.get("click"):
        _click(w, br["click"])
    if total_s is not None:
        w(f"Total benchmark runtime: {total_s / 60:.1f} min.")
        w("")
    return "\n".join(lines)


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def _conditions(w: Write, args, cases, started: float) -> None:
    w("# attnviz text page benchmark")
    w("")
    w(
        f"Run {_dt.datetime.fromtimestamp(started).strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} CPU cores "
        f"(torch threads {torch.get_num_threads()}) · python {platform.python_version()} · torch {torch.__version__} "
        f"· transformers {_version('transformers')} · streamlit {_version('streamlit')} · plotly {_version('plotly')} "
        f"· bertviz {_version('bertviz')} · Chromium headless · sizes {','.join(map(str, args.sizes))}"
    )
    w("")
    w(
        "1-minute load average when each phase started: "
        + ", ".join(f"{k} {v:.2f}" for k, v in LOAD.items())
        + f" (on {os.cpu_count()} cores)."
    )
    w("")
    w(
        "Share of the machine's CPU used by *other* processes (not this benchmark, its Streamlit server or its "
        "Chromium) during each phase: "
        + ", ".join(f"{k} {v:.0%}" for k, v in CPU.phases.items())
        + ". Anything above a few % inflates the times below; the payloads are unaffected."
    )
    w("")
    if CODE.get("start") == CODE.get("end"):
        w(f"App code (attnviz/, pages/, app.py) fingerprint {CODE.get('start')}, unchanged during the run.")
    else:
        w(
            f"**WARNING: the app code changed during the run** (fingerprint {CODE.get('start')} → "
            f"{CODE.get('end')}): phases may have measured different code. Run again."
        )
    w("")
    w("Models: " + "; ".join(f"**{c.key}** = {c.label}" for c in cases) + ". 1 MB = 10^6 bytes.")
    w("")


def _payload(w: Write, args, cases, bv, br) -> None:
    w("## 1. Payload: bytes the text page sends to the browser (default view 'Single head')")
    w("")
    w(
        "Websocket bytes received from pressing Ctrl+Enter on a new sentence until the rerun finished and the "
        "chart was drawn (everything the rerun sends: the chart and every other element). *page updated* = "
        "Ctrl+Enter → last DOM mutation of the new chart (model run + figures + transfer + Plotly drawing). "
        "BertViz = length of the HTML `head_view`/`model_view(attention, tokens, html_action='return')` return "
        "for the same attention."
    )
    w("")
    w(
        "| model | tokens | text page (default view) | target | page updated (ms) | other CPU | BertViz head_view "
        "| BertViz model_view |"
    )
    w("|---|---:|---:|---|---:|---:|---:|---:|")
    for c in cases:
        for n in args.sizes:
            m = br.get("payload", {}).get((c.key, n)) if br else None
            target = PAYLOAD_TARGETS.get(n)
            if m is None:
                page_b, verdict, drawn, other = "not run", "", "", ""
            else:
                page_b = fmt_bytes(m.bytes) + ("" if m.ok else " (TIMEOUT)")
                verdict = "" if target is None else f"≤ {target // MB} MB: {'met' if m.bytes <= target else 'MISSED'}"
                drawn = fmt_ms(m.drawn_s)
                other = fmt_pct(m.other_cpu)
            b = bv.get(c.key, {}).get(n, {}) if bv else {}
            w(
                f"| {c.key} | {n} | {page_b} | {verdict} | {drawn} | {other} | {fmt_bytes(b.get('head_view'))} | "
                f"{fmt_bytes(b.get('model_view'))} |"
            )
    w("")
    if br and br.get("open_bytes") is not None:
        w(
            f"Opening /text in a new session (default sentence, 16 tokens): {fmt_bytes(br['open_bytes'])} "
            "over the websocket."
        )
        w("")
    if br and br.get("router"):
        r = br["router"]
        ok = r["title"] == "attnviz" and "Text attention" in r["nav"]
        w(
            f"First visit to /text on a fresh server: page title {r['title']!r}, sidebar navigation {r['nav']!r} → "
            + ("went through app.py's router." if ok else "DID NOT go through app.py (legacy pages/ mode).")
        )
        w("")


def _views(w: Write, cases, views: dict) -> None:
    """1b + 3: each view's payload and draw time."""
    rounds = len(next(iter(views.values())))
    w(f"## 1b + 3. Each view at {VIEW_SIZE} tokens ({cases[0].key}): payload and browser draw time")
    w("")
    w(
        "The page shows the sentence already; each view's radio label is clicked in turn (All heads → Overview → "
        f"Head lines → From one token → Single head), {rounds} rounds. Payload = websocket bytes of the rerun the "
        "click causes (first round). Drawn = click → last DOM mutation inside the new Plotly chart, where the "
        "run counts as finished when Streamlit has sent `script_finished`, shows no running indicator and no "
        "stale element, the chart with the view's title has its main layer (heatmap image, mosaic image or "
        "line paths), and neither the websocket nor the chart changed for 0.7 s. It includes the server rerun "
        "(cache hit), the transfer and Plotly's drawing, not the final paint."
    )
    w("")
    w("| view | payload | drawn (ms), median [first] | target ≤ 1 s | other CPU (max) |")
    w("|---|---:|---:|---|---:|")
    for v in VIEWS:
        ms = views.get(v, [])
        first = ms[0] if ms else None
        draw_med = median([m.drawn_s for m in ms if m.ok])
        verdict = "n/a" if draw_med is None else ("met" if draw_med * 1000 <= DRAW_TARGET_MS else "MISSED")
        w(
            f"| {v} | {fmt_bytes(first.bytes) if first else 'n/a'} | "
            f"{fmt_ms(draw_med)} [{fmt_ms(first.drawn_s if first and first.ok else None)}] | {verdict} | "
            f"{fmt_pct(max((m.other_cpu for m in ms if m.other_cpu is not None), default=None))} |"
        )
    w("")
    w(
        "Note: the page's 'Head lines' view opens with only the chosen head (head 0); section 2 times "
        "`head_lines` with all heads, as a worst case."
    )
    w("")


def _server_rows(args, cases, server) -> Iterator[tuple[str, int, dict]]:
    """(model key, tokens, result) for every size measured in-process, in table order."""
    for c in cases:
        for n in args.sizes:
            r = server.get(c.key, {}).get(n)
            if r:
                yield c.key, n, r


def _server_time(w: Write, args, cases, server) -> None:
    """2: in-process times, their breakdown and the figures' JSON sizes."""
    w("## 2. Server time, in-process (no Streamlit): new sentence → figures")
    w("")
    w(
        "forward = `model(**inputs, output_attentions=True)` on the tokenized input; default = `text_attention` + "
        "`make_view` + `head_matrix` + `to_json`; all views = `text_attention` + `make_view` + the five figures + "
        "`to_json` of each. Medians of 5 runs (3 at > 128 tokens), times in ms. An input whose weights are not held "
        "(bert-base at 512 tokens) is drawn by the long-input views: its default view is `text_attention` + the pooled "
        "head 0 of layer 0 + its figure, and the five short views are n/a."
    )
    w("")
    w(
        "| model | tokens | forward | default view | default − forward | target ≤ forward + 150 | all five views "
        "| other CPU |"
    )
    w("|---|---:|---:|---:|---:|---|---:|---:|")
    for key, n, r in _server_rows(args, cases, server):
        over = r["default"] - r["forward"]
        verdict = "met" if over * 1000 <= SERVER_TARGET_MS else "MISSED"
        w(
            f"| {key} | {n} | {fmt_ms(r['forward'])} | {fmt_ms(r['default'])} | {fmt_ms(over)} | {verdict} | "
            f"{fmt_ms(r['full'])} | {fmt_pct(r.get('other_cpu'))} |"
        )
    w("")
    w("### Breakdown of 'all five views' (ms, medians) and the Streamlit cache copy")
    w("")
    w(
        "Each figure column = build + `to_json`. *cache hit copy* = `pickle.loads` of the `TextAttention` the "
        "page keeps in `st.cache_data`, which Streamlit unpickles on every rerun (every widget click); "
        "*pickled* = its size (the cache holds up to 8 of them)."
    )
    w("")
    w(
        "| model | tokens | text_attention | make_view | head_matrix | layer_heads | model_overview | head_lines | "
        "token_heads | cache hit copy | pickled |"
    )
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, n, r in _server_rows(args, cases, server):
        s = r["steps"]
        w(
            f"| {key} | {n} | {fmt_ms(s['text_attention'])} | {fmt_ms(s['make_view'])} | "
            + " | ".join(fmt_ms(s[k]) for k in FIGURE_STEPS)
            + f" | {fmt_ms(r['unpickle'])} | {r['pickle_bytes'] / MB:,.1f} MB |"
        )
    w("")
    w("Figure JSON sizes (`to_json`, bytes), for reference:")
    w("")
    w("| model | tokens | " + " | ".join(FIGURE_STEPS) + " |")
    w("|---|---:|" + "---:|" * len(FIGURE_STEPS))
    for key, n, r in _server_rows(args, cases, server):
        sizes = r["json_bytes"]
        w(f"| {key} | {n} | " + " | ".join("n/a" if sizes[k] is None else f"{sizes[k]:,}" for k in FIGURE_STEPS) + " |")
    w("")


def _click(w: Write, k: dict) -> None:
    """The click-on-cell smoke check, in a fresh session and after 'From one token' was opened."""
    w(f"## Click on a matrix cell ('Single head', {k['n']} tokens)")
    w("")
    for tag, label in (("a", "fresh session"), ("b", "after 'From one token' was opened once")):
        row = k[f"{tag}_row"]
        expected = f"{row}: {k['tokens'][row]}"
        got = k.get(f"{tag}_query")
        outline = [s for s in k.get(f"{tag}_shapes", []) if abs(float(s[0]) - (row - 0.5)) < 1e-6]
        w(
            f"- {label}: clicked row {row} ({k['tokens'][row]!r}); rerun after click: "
            f"{'yes' if k.get(f'{tag}_rerun') else 'NO'}; row outlined in the matrix: "
            f"{'yes' if outline else 'NO'}; 'Query token' in 'From one token': {got!r} → "
            + ("follows the click" if got == expected else f"DOES NOT follow the click (expected {expected!r})")
        )
    w("")
