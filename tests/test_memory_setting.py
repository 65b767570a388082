"""glibc's mmap threshold (attnviz.device.apply_memory_setting): fixed once, or left alone with 0."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = "import attnviz.device as d; print(d.apply_memory_setting(), d.apply_memory_setting())"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
@pytest.mark.parametrize(
    ("setting", "expected"), [(None, "131072 131072"), ("0", "0 0"), ("1048576", "1048576 1048576")]
)
def test_the_threshold_is_set_once_as_asked(setting, expected):
    env = {"PYTHONPATH": "."}
    if setting is not None:
        env["ATTNVIZ_MMAP_THRESHOLD"] = setting
    result = subprocess.run(
        [sys.executable, "-c", CODE], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == expected.split()
