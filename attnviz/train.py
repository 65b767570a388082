"""``python -m attnviz.train``: the short name of ``python -m attnviz.image.train``.

    python -m attnviz.train --data my_photos/ --out my-model/ --size 128 --time-budget 120

The same training the app's "Train on your images" page runs; see
:mod:`attnviz.image.train` for every option.
"""

from __future__ import annotations

import sys

from attnviz.image.train import main

if __name__ == "__main__":
    sys.exit(main())
