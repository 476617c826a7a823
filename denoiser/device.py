"""Device choice shared by inference and training: CUDA when present, else the CPU."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' → CUDA if available else CPU; 'cuda' without a GPU raises a clear error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no CUDA GPU is available (use --device cpu or auto)")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"unknown device '{device}' (use auto, cpu or cuda)")
    return torch.device(device)


def available_devices() -> list[str]:
    """Devices a user can pick: always 'cpu', plus 'cuda' when a GPU is present."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
