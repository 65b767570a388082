"""The one place that decides where models run."""

from __future__ import annotations

import os

import torch

#: Environment variable that overrides the automatic choice ("cpu", "cuda", "cuda:1", "mps").
DEVICE_ENV = "ATTNVIZ_DEVICE"


def pick_device() -> torch.device:
    """CUDA when available, then Apple MPS, else the CPU; ``ATTNVIZ_DEVICE`` overrides."""
    forced = os.environ.get(DEVICE_ENV, "").strip()
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_label(device: torch.device) -> str:
    """A short human description, e.g. ``"GPU (NVIDIA H200)"`` or ``"CPU"``."""
    if device.type == "cuda":
        return f"GPU ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return "CPU"
