"""The text-page benchmark, one module per part; ``benchmarks/text_page.py`` is its command line.

Modules: ``common`` (the attnviz API used, constants, formatting), ``cpu`` (load average and the
CPU share of other processes), ``inputs`` (corpus, token-exact inputs, models), ``server_time``
(in-process timings), ``bertviz_size``, ``app_server`` (``streamlit run app.py``), ``page_js``
(scripts run in the page), ``measure`` (websocket bytes and draw time of one rerun), ``browser``
(payload and view draw times), ``click_check`` (click on a matrix cell), ``report`` (markdown)
and ``run`` (the phases in order).
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
