"""The bundled-decoder benchmark, one module per part; ``benchmarks/decoder.py`` is its command line.

Modules: ``common`` (constants, targets, the views as the page draws them), ``inputs`` (token-exact
texts), ``loading`` (1: first and warm load in fresh processes), ``server`` (2: forward pass,
default view, every view's figure), ``bertviz_side`` (3: BertViz HTML for the same attention),
``child`` (what runs in those fresh processes), ``report`` (markdown) and ``run`` (the phases).
The load average and other processes' CPU share come from ``textbench.cpu``.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks"
for _p in (REPO, BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
