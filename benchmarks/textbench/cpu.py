"""How busy the machine is: load average per phase, and the CPU share of *other* processes.

Other processes = anything but this script and its descendants (the Streamlit server, Playwright
and Chromium), read from ``/proc``. Times taken on a busy machine are inflated; payloads are not.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from .common import log

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

LOAD: dict[str, float] = {}  # phase -> 1-minute load average when it started


def _machine_busy_s() -> float:
    """CPU seconds all processes have used since boot (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICK


def _own_tree_s() -> float:
    """CPU seconds used by this process and its descendants (streamlit, playwright, chromium)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(rest[1])
        # utime, stime, cutime, cstime (reaped children count in their parent)
        times[pid] = sum(int(x) for x in rest[11:15]) / _TICK
    me, total = os.getpid(), 0.0
    for pid, t in times.items():
        p, seen = pid, 0
        while p and p != me and seen < 64:
            p, seen = parents.get(p, 0), seen + 1
        if p == me:
            total += t
    return total


class CpuShare:
    """How much of the machine other processes used while a phase ran."""

    def __init__(self):
        self.phases: dict[str, float] = {}

    def start(self):
        return time.perf_counter(), _machine_busy_s(), _own_tree_s()

    @staticmethod
    def share(start) -> float:
        """Share of the machine (0..1) other processes used since ``start``."""
        t0, busy0, own0 = start
        wall = time.perf_counter() - t0
        foreign = (_machine_busy_s() - busy0) - (_own_tree_s() - own0)
        return max(0.0, foreign) / max(wall * (os.cpu_count() or 1), 1e-9)

    def stop(self, name: str, start) -> None:
        self.phases[name] = self.share(start)


CPU = CpuShare()


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Record in ``CPU.phases[name]`` the share other processes used while the block ran."""
    mark = CPU.start()
    yield
    CPU.stop(name, mark)


def note_load(name: str) -> None:
    """Record the 1-minute load average as phase ``name`` starts."""
    LOAD[name] = os.getloadavg()[0]


def wait_for_quiet_cpu(max_wait: float, threshold: float = 0.15) -> float:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` of the machine; returns it."""
    deadline = time.perf_counter() + max_wait
    while True:
        start = CPU.start()
        time.sleep(1.0)
        share = CPU.share(start)
        if share < threshold or time.perf_counter() >= deadline:
            return share
        log(f"other processes use {share:.0%} of the CPU; waiting for a quieter machine")
