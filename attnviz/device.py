"""The one place that decides where models run, with how many CPU threads, and what happens
when the GPU runs out of memory.

* :func:`pick_device`: CUDA, then Apple MPS, else the CPU (``ATTNVIZ_DEVICE`` overrides).
* :func:`apply_thread_setting`: PyTorch's CPU threads (``ATTNVIZ_THREADS``, default 1), set once,
  when the first model is created.
* :func:`apply_memory_setting`: glibc returns freed blocks of 128 kB and more to the system
  (``ATTNVIZ_MMAP_THRESHOLD``), set once, when the first model is created.
* :func:`falls_back_to_cpu`: the decorator on every function that runs a model
  (``text_attention``, ``explain_head``, ``token_attributions``, the corpus batches,
  ``image_attention``, ``gradcam``, ``integrated_gradients``). When the GPU runs out of memory the
  model moves to the CPU for good, the call is retried there, and ``model.notice`` says so.
"""

from __future__ import annotations

import functools
import gc
import logging
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from attnviz.errors import InputError

log = logging.getLogger("attnviz")

#: Environment variable that overrides the automatic choice ("cpu", "cuda", "cuda:1", "mps").
DEVICE_ENV = "ATTNVIZ_DEVICE"
#: Environment variable: PyTorch's CPU threads per forward pass; 0 keeps PyTorch's own default.
THREADS_ENV = "ATTNVIZ_THREADS"
#: One thread: on 2 cores shared with other jobs, PyTorch's default (one thread per core) made a
#: 16-token extraction up to 10-30x slower whenever something else took a core, and 8 sessions'
#: extractions at once 1.3-1.7x slower; one thread lost at most ~1.3x, on an idle machine and long
#: inputs (benchmarks/threads.py; benchmarks/README.md, "CPU threads").
DEFAULT_THREADS = 1
_MAX_THREADS = 1024


def pick_device() -> torch.device:
    """CUDA when available, then Apple MPS, else the CPU; ``ATTNVIZ_DEVICE`` overrides."""
    forced = os.environ.get(DEVICE_ENV, "").strip()
    if forced:
        return _checked(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _checked(name: str) -> torch.device:
    """The device named by ``ATTNVIZ_DEVICE``, refused with a clear message if unusable here."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"{DEVICE_ENV}={name!r} is not a device name; use cpu, cuda, cuda:N or mps.") from exc
    usable = {
        "cpu": True,
        "cuda": torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count(),
        "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
    }.get(device.type, False)
    if not usable:
        raise InputError(f"{DEVICE_ENV}={name!r}, but this machine has no such device; unset it or use cpu.")
    return device


def device_label(device: torch.device) -> str:
    """A short human description, e.g. ``"GPU (NVIDIA H200)"`` or ``"CPU"``."""
    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return "CPU" if device.type == "cpu" else str(device)


# ---------------------------------------------------------------- CPU threads

_threads_lock = threading.Lock()
_threads: int | None = None  # the value in force once applied; 0: PyTorch's default is kept
_threads_problem: str | None = None


def thread_setting() -> int:
    """``ATTNVIZ_THREADS`` as a number (unset: :data:`DEFAULT_THREADS`; 0: keep PyTorch's default).

    Raises:
        InputError: the value is not a whole number from 0 to 1024.
    """
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return DEFAULT_THREADS
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= _MAX_THREADS:
        raise InputError(
            f"{THREADS_ENV}={raw!r} is not a number of CPU threads: use a whole number such as 1 (the default) "
            f"or 4, or 0 to keep PyTorch's default of one thread per core."
        )
    return value


def apply_thread_setting() -> int:
    """Give PyTorch the CPU threads ``ATTNVIZ_THREADS`` asks for, once; returns the number in force.

    Called when a model is created (TextModel, ImageModel): the first time, the setting is read
    and ``torch.set_num_threads`` called (not with 0, which leaves PyTorch alone); later calls do
    nothing, so a later ``torch.set_num_threads`` of the user's stands. PyTorch keeps the count
    per thread once a thread has run an operation: threads started later (each Streamlit script
    run is one) get the new count. A bad value is reported once with a warning (and by
    :func:`thread_setting_problem`, which the app shows) and the default is used instead.
    """
    global _threads, _threads_problem
    with _threads_lock:
        if _threads is None:
            try:
                value = thread_setting()
            except InputError as exc:
                value = DEFAULT_THREADS
                _threads_problem = f"{exc} Using {DEFAULT_THREADS}."
                warnings.warn(_threads_problem, RuntimeWarning, stacklevel=2)
                log.warning("%s", _threads_problem)
            if value:
                torch.set_num_threads(value)
            _threads = value
    return torch.get_num_threads()


#: Environment variable: glibc's mmap threshold in bytes; 0 leaves glibc's own (dynamic) threshold.
MMAP_THRESHOLD_ENV = "ATTNVIZ_MMAP_THRESHOLD"
DEFAULT_MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's <malloc.h>
_memory_value: int | None = None  # the threshold in force once set (0: glibc's own)


def apply_memory_setting() -> int:
    """Fix glibc's mmap threshold (``ATTNVIZ_MMAP_THRESHOLD``, default 128 kB), once; returns it (0: unchanged).

    By default glibc raises its threshold each time a large block is freed, up to 32 MB: a long
    input's blocks of weights (tens of MB each, one per view) then come from its heaps, and what
    they free stays resident. At 8,192 tokens that kept ~470 MB more after the views had run
    (``benchmarks/results-long-prompts.md``). With the threshold fixed, every block of 128 kB or
    more is mapped on its own and returned when freed, for ~10 % more time per view. Only on Linux
    with glibc; elsewhere nothing changes.
    """
    global _memory_value
    with _threads_lock:
        if _memory_value is None:
            _memory_value = _set_mmap_threshold()
        return _memory_value


def _set_mmap_threshold() -> int:
    try:
        value = int(os.environ.get(MMAP_THRESHOLD_ENV, DEFAULT_MMAP_THRESHOLD))
    except ValueError:
        log.warning("%s must be a number of bytes; using %d.", MMAP_THRESHOLD_ENV, DEFAULT_MMAP_THRESHOLD)
        value = DEFAULT_MMAP_THRESHOLD
    if value <= 0:
        return 0
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        if libc.mallopt(_M_MMAP_THRESHOLD, value) != 1:
            return 0
    except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
        return 0
    return value


def thread_setting_problem() -> str | None:
    """What was wrong with ``ATTNVIZ_THREADS`` when it was applied, or None."""
    return _threads_problem


# ---------------------------------------------------------------- GPU out of memory -> CPU

F = TypeVar("F", bound=Callable)

#: Kept on the model (``model.notice``) and shown by the pages.
FALLBACK_NOTICE = (
    "The GPU ({device}) ran out of memory while {what} with {name}; this model now runs on the CPU, "
    "which is slower. Its results are the same up to float rounding."
)


def is_out_of_memory(exc: BaseException, device: torch.device) -> bool:
    """A GPU allocation failed: ``torch.OutOfMemoryError`` (``torch.cuda.OutOfMemoryError`` is the
    same class), or a RuntimeError saying "out of memory" (MPS; CUDA libraries such as cuBLAS).
    Failures of a model that is on the CPU already are not retried."""
    if device.type == "cpu":
        return False
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@dataclass(eq=False, kw_only=True)
class SharedModel:
    """What every loaded model (TextModel, ImageModel) carries to be shared by many sessions.

    Subclasses declare ``device``. Only :func:`move_to_cpu` changes an instance, under ``lock``:
    when the GPU runs out of memory, ``device`` becomes the CPU (for good) and ``notice`` says
    so. Compared and hashed by identity.
    """

    #: Held around every forward pass and every attribution. captum installs hooks on the
    #: shared module; without the lock they corrupted other threads' forward passes.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    #: Set when the model moved to the CPU after the GPU ran out of memory; pages show it.
    notice: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        apply_thread_setting()  # when the first model loads (ATTNVIZ_THREADS)
        apply_memory_setting()  # and glibc's mmap threshold (ATTNVIZ_MMAP_THRESHOLD)


def move_to_cpu(model, what: str) -> bool:
    """Move a :class:`SharedModel` (a TextModel or ImageModel) to the
    CPU for good, free the GPU's cached memory and set ``notice``. False if it was already there."""
    with model.lock:  # no forward pass of another thread is running while the weights move
        old = torch.device(model.device)
        if old.type == "cpu":
            return False
        model.model.to("cpu")
        model.device = torch.device("cpu")
        model.notice = FALLBACK_NOTICE.format(
            what=what, name=getattr(model, "name", "the model"), device=_gpu_name(old)
        )
    gc.collect()  # activations of the failed call, before the cache is emptied
    if old.type == "cuda":
        torch.cuda.empty_cache()
    elif old.type == "mps":
        torch.mps.empty_cache()
    log.warning("%s: %s", getattr(model, "name", "model"), model.notice)
    return True


def falls_back_to_cpu(what: str) -> Callable[[F], F]:
    """Decorator for a function whose first argument is the model it runs.

    If the call runs out of GPU memory, the model moves to the CPU (:func:`move_to_cpu`) and the
    call is run again there; from then on the model stays on the CPU. A call that fails in another
    way after another thread moved the model meanwhile (its inputs were made for the old device)
    is also run again. ``what`` completes the notice: "while {what}".
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def guarded(model, *args, **kwargs):
            if not isinstance(model, SharedModel):  # not a model: let func say so
                return func(model, *args, **kwargs)
            device = model.device
            try:
                return func(model, *args, **kwargs)
            except Exception as exc:
                if is_out_of_memory(exc, device):
                    oom = True
                elif torch.device(model.device) != device:
                    oom = False  # moved by another thread during the call
                else:
                    raise
            # Outside the except block: the failed call's frames (and their GPU tensors) are gone.
            if oom:
                move_to_cpu(model, what)
            return func(model, *args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorate


def _gpu_name(device: torch.device) -> str:
    """``"NVIDIA H200, cuda:0"``; just the device's name if the driver cannot be asked."""
    try:
        if device.type == "cuda":
            return f"{torch.cuda.get_device_name(device)}, {device}"
    except Exception:  # noqa: BLE001 - only a label, after a failure
        pass
    return "Apple MPS" if device.type == "mps" else str(device)
