"""Where tensors live, and how runs are made reproducible."""
from __future__ import annotations

import os
import random

import numpy as np
import torch

from ._validation import check_positive_int

__all__ = ["get_device", "seed_everything"]

_KNOWN = ("cpu", "cuda", "mps")


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return kind == "cpu"


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Return the device to compute on: ``device`` if given, else ``$VAELAB_DEVICE``, else cuda > mps > cpu.

    >>> get_device("cpu")
    device(type='cpu')
    """
    source = "device"
    if device is None:
        device = os.environ.get("VAELAB_DEVICE") or None
        source = "VAELAB_DEVICE"
    if device is None:
        for kind in ("cuda", "mps"):
            if _available(kind):
                return torch.device(kind)
        return torch.device("cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip().lower())
        except RuntimeError:
            dev = None
        if dev is None or dev.type not in _KNOWN:
            raise ValueError(f"`{source}` must name one of {', '.join(_KNOWN)} (e.g. 'cuda:0'), got {device!r}")
    else:
        raise TypeError(f"`{source}` must be a string or torch.device, got {type(device).__name__}")
    if dev.type not in _KNOWN:
        raise ValueError(f"`{source}` must name one of {', '.join(_KNOWN)}, got {str(dev)!r}")
    if not _available(dev.type):
        raise ValueError(f"`{source}` asks for {str(dev)!r}, but no {dev.type} device is available here; use 'cpu'")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"`{source}` asks for {str(dev)!r}, but only {torch.cuda.device_count()} cuda device(s) exist")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (every device) with ``seed``."""
    seed = check_positive_int(seed, "seed", minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
