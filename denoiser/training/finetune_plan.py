"""How much a fine-tuning run will take: its peak memory, and the steps that fit its time budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from denoiser.archs import DenoiserNet, build_arch
from denoiser.checkpoint import (
    read_info,
    resolve_model,
)
from denoiser.data import find_images, split_train_val
from denoiser.errors import DenoiserError
from denoiser.imageio import read_header
from denoiser.selfsupervised import full_resolution_pass, self_supervised_loss
from denoiser.training.finetune_setup import DEFAULT_MINUTES, FinetuneConfig


@torch.no_grad()
def _activation_bytes_per_pixel(net: DenoiserNet) -> float:
    """Bytes autograd keeps per input pixel: the leaf modules' outputs, plus a quarter for sums and reshapes.

    Checked against the resident-memory growth of a training step of the bundled UNet (within ~10 %).
    """
    size = max(64, net.size_multiple * 4)
    total = 0

    def hook(_m: torch.nn.Module, _i: Any, out: Any) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out.numel()

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        net(torch.zeros(1, net.in_channels, size, size), torch.zeros(1))
    finally:
        for h in handles:
            h.remove()
    return 1.25 * 4 * total / (size * size)


def _decoded_mb(files: list[Path], channels: int, sample: int = 200) -> float:
    """Size of the images decoded as the sampler stores them (headers only; a sample, scaled)."""
    if not files:
        return 0.0
    step = max(1, len(files) // sample)
    sizes = []
    for f in files[::step][:sample]:
        try:
            w, h, _c = read_header(f)
        except DenoiserError:
            continue
        sizes.append(w * h * channels)
    return float(np.mean(sizes)) * len(files) / 1e6 if sizes else 0.0


def estimate_memory_mb(cfg: FinetuneConfig) -> dict[str, float]:
    """Rough peak memory of a run beyond the Python/PyTorch runtime, in MB, with its parts.

    Model: weights, gradients and Adam's two moments (plus the frozen base in noisy mode); activations
    of the batch kept for the backward pass; the decoded-image cache (bounded by `cache_mb`); the
    validation crops.
    """
    info = read_info(resolve_model(cfg.base))
    net = build_arch(info.arch, **info.arch_config).eval()
    channels = info.in_channels
    patch, batch = cfg.setting("patch"), cfg.setting("batch")
    params_mb = net.parameter_count() * 4 / 1e6
    model = params_mb * (4 + (1 if cfg.mode == "noisy" else 0))
    full_res = full_resolution_pass(cfg.anchor, cfg.distill, cfg.pd)
    grad_pixels = batch * patch * patch * ((0.25 + (1.0 if full_res else 0.0)) if cfg.mode == "noisy" else 1.0)
    activations = _activation_bytes_per_pixel(net) * grad_pixels / 1e6
    files = find_images(cfg.data)
    if not files:
        raise DenoiserError(f"no images found in {', '.join(map(str, cfg.data))}")
    n_val = len(split_train_val(files, cfg.val_fraction, cfg.seed)[1])
    images = min(cfg.cache_mb, _decoded_mb(files, channels))
    validation = min(n_val, 16) * 256 * 256 * channels * 4 * (2 if cfg.mode == "clean" else 3) / 1e6
    parts = {"model": model, "activations": activations, "images": images, "validation": validation}
    parts["total"] = sum(parts.values())
    return parts


def _seconds_per_step(step: Callable[[], None], reps: int = 2) -> float:
    step()  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t) / reps


def plan_steps(cfg: FinetuneConfig, net: DenoiserNet, base: DenoiserNet, device: torch.device,
               channels: int, sigma_per_input: bool) -> int:
    """Steps that fit the time budget, from a timed step on random data (15 % kept for validation)."""
    patch, batch = cfg.setting("patch"), cfg.setting("batch")
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        x = torch.rand(batch, channels, patch, patch, generator=gen).to(device)
        sigma = torch.full((batch,), 0.05, device=device)
        if cfg.mode == "clean":
            loss = net.encode_decode(x, sigma).image.float().abs().mean()
        else:
            loss = self_supervised_loss(net, x, None if sigma_per_input else sigma, gen=gen, gamma=cfg.gamma,
                                        pd=cfg.pd, base=base, anchor=cfg.anchor, distill=cfg.distill).total
        loss.backward()
        net.zero_grad(set_to_none=True)

    minutes = cfg.minutes if cfg.minutes is not None else DEFAULT_MINUTES
    return max(1, int(minutes * 60 * 0.85 / max(_seconds_per_step(step), 1e-6)))
