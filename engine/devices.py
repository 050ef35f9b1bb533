"""Where torch work runs: the one place that decides "CUDA when there is one"."""

from __future__ import annotations

from .errors import BadOption, check_choice

DEVICES = ("cpu", "cuda")


def pick_device(device: str | None = None) -> str:
    """`device` checked ("cpu" or "cuda"); None: CUDA when this torch and machine have it, else
    the CPU. Imports torch."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    check_choice("--device", device, DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise BadOption("--device cuda: no CUDA device here (this torch build or machine has none)")
    return device
