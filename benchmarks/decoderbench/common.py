"""What every part shares: the model, sizes, targets and the text page's views with its defaults."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textbench.common import MB, fmt_bytes, fmt_ms, fmt_pct, log, median, timed  # noqa: F401 (re-exported)

import attnviz

MODEL = "SmolLM2-135M-Instruct"
DEFAULT_SIZES = [16, 128, 512]
PAYLOAD_TARGETS = {128: 1 * MB, 512: 3 * MB}  # each view's figure JSON
SERVER_TARGET_MS = 300  # new text -> default view: <= forward + 300 ms


def rss_mb() -> dict[str, float]:
    """VmRSS and VmHWM (peak) of this process in MB, from /proc/self/status (0 where absent)."""
    out = {"VmRSS": 0.0, "VmHWM": 0.0}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                m = re.match(r"(VmRSS|VmHWM):\s+(\d+) kB", line)
                if m:
                    out[m.group(1)] = int(m.group(2)) / 1024
    except OSError:
        pass
    return out


@dataclass(frozen=True)
class ViewSpec:
    """One entry of the text page's view table (attnviz/ui/text_views.py), with the page's defaults.

    ``source``: what the view draws when it is not the chosen view itself (rollout, sinks), from
    the TextAttention; ``figure``: the figure from the view (or the source).
    """

    name: str
    figure: Callable[[Any], Any]
    source: Callable[[Any], Any] | None = None


def page_views(n_tokens: int) -> list[ViewSpec]:
    """The seven views as the page first draws them: layer 0, head 0, colour scale 'fixed' (the
    first radio option), no query selected, head lines with the chosen head at threshold 0.05,
    'From one token' on its default query (token 1), rollout mean-fused, nothing discarded,
    relative to position (the toggle's default for a decoder), sinks over every token."""
    figures = attnviz.figures
    from attnviz.figures.rollout import rollout_matrix
    from attnviz.text.sinks import attention_sinks
    from attnviz.text.views import rollout_view

    query = min(1, n_tokens - 1)
    return [
        ViewSpec("Single head", lambda v: figures.head_matrix(v, 0, 0, scale="fixed", selected_query=None)),
        ViewSpec("All heads of a layer", lambda v: figures.layer_heads(v, 0, scale="fixed")),
        ViewSpec("Model overview", lambda v: figures.model_overview(v, scale="fixed")),
        ViewSpec("Head lines", lambda v: figures.head_lines(v, 0, [0], threshold=0.05, query=None)),
        ViewSpec("From one token", lambda v: figures.token_heads(v, query, scale="fixed")),
        ViewSpec(
            "Rollout",
            source=lambda ta: rollout_view(ta, head_fusion="mean", discard_ratio=0.0, causal_normalised=True),
            figure=lambda r: rollout_matrix(r, scale="fixed"),
        ),
        ViewSpec("Attention sinks", source=attention_sinks, figure=lambda s: figures.sink_map(s)),
    ]


#: Not a page default: 'Head lines' with every head of layer 0 added, the largest that view gets.
HEAD_LINES_ALL = ViewSpec(
    "Head lines, all 9 heads (worst case)",
    lambda v: attnviz.figures.head_lines(v, 0, list(range(v.n_heads)), threshold=0.05, query=None),
)
