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


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' → fp16 on CUDA, bf16 on a CPU with native bf16, else fp32; fp16 on the CPU is refused."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (use {', '.join(PRECISIONS)})")
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 inference needs CUDA; on the CPU use fp32 or bf16")
    return precision


def emulated_bf16_warning(precision: str, device: str | torch.device = "auto") -> str | None:
    """The warning for bf16 asked for by name on a CPU without native bf16, where PyTorch emulates it: training runs
    about 10× slower than fp32 there (2 against 19 images/s on a 2-core AVX2 CPU). None when bf16 is not asked for,
    runs on CUDA, or the CPU has it in hardware."""
    if precision != "bf16":
        return None
    try:
        if resolve_device(device).type != "cpu" or cpu_has_native_bf16():
            return None
    except ValueError:
        return None
    return ("bf16 is emulated on this CPU (no AVX-512 BF16 or AMX) and far slower than fp32 (training: about 10×); "
            "--precision auto picks fp32 here")
