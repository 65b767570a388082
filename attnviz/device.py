"""The one place that decides where models run."""

from __future__ import annotations

import os

import torch

from attnviz.errors import InputError

#: Environment variable that overrides the automatic choice ("cpu", "cuda", "cuda:1", "mps").
DEVICE_ENV = "ATTNVIZ_DEVICE"


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
    return "CPU"
