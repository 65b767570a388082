"""1. BertViz payload: the HTML BertViz returns for the same attention, to compare with the page's."""

from __future__ import annotations

import gc
import time

import torch

from .common import fmt_bytes, log
from .inputs import ModelCase, encode


def bertviz_sizes(case: ModelCase, sizes: list[int]) -> dict:
    """Length in bytes of the HTML BertViz returns for the same attention (head_view, model_view)."""
    import bertviz

    tm = case.tm
    out = {}
    for n in sizes:
        inputs, enc = encode(tm, case.texts[n])
        with torch.inference_mode():
            attention = tm.model(**inputs, output_attentions=True).attentions  # tuple of [1, H, n, n]
        tokens = list(enc.encodings[0].tokens)
        row = {}
        for name, fn in (("head_view", bertviz.head_view), ("model_view", bertviz.model_view)):
            t0 = time.perf_counter()
            html = fn(attention, tokens, html_action="return").data
            row[name] = len(html) if html.isascii() else len(html.encode("utf-8"))
            row[name + "_s"] = time.perf_counter() - t0
            del html
            gc.collect()
        out[n] = row
        log(
            f"  {case.key} n={n}: BertViz head_view {fmt_bytes(row['head_view'])}, "
            f"model_view {fmt_bytes(row['model_view'])}"
        )
    return out
