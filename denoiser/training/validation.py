"""Validation of supervised training: fixed, seeded noisy crops and the PSNR of the model on them."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.archs import DenoiserNet
from denoiser.data import (
    real_validation_crops,
    validation_crops,
)
from denoiser.noise import quantize_8bit
from denoiser.raw import raw_training_pair
from denoiser.training.config import NoiseConfig, TrainConfig
from denoiser.training.synthesis import make_noisy, real_sigma


def validation_pairs(files: list[Path], cfg: TrainConfig,
                     real: list[tuple[Path, Path]] | None = None) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Fixed (clean, noisy, σ) validation crops, seeded so every validation sees the same noise; crops
    of the held-out real scenes join them when the run trains on real pairs, and are all of them with
    `val_on = "real"` (so the best checkpoint is the one best on real camera noise)."""
    real_pairs = [(clean, noisy, real_sigma(noisy, clean, cfg.noise)) for clean, noisy in
                  real_validation_crops(real or [], cfg.channels, match_radius=cfg.match_radii())]
    if cfg.val_on == "real":
        return real_pairs
    pairs = []
    if cfg.noise.name == "raw":
        level = cfg.noise.val_sigma / 100.0
        for i, crop in enumerate(validation_crops(files, 3)):
            clean, noisy, sigma = raw_training_pair(crop, (level, level), 0.0, torch.Generator().manual_seed(1000 + i))
            pairs.append((clean, noisy, sigma))
        return pairs
    noise = NoiseConfig(**{**asdict(cfg.noise), "clip_prob": 0.0, "clean_prob": 0.0})
    if noise.name == "gaussian":
        noise.sigma_range = (noise.val_sigma, noise.val_sigma)
    elif noise.name == "camera":
        noise.level_range = (noise.val_sigma / 100.0, noise.val_sigma / 100.0)
        noise.jpeg_prob = 0.0
    for i, crop in enumerate(validation_crops(files, cfg.channels)):
        noisy, sigma = make_noisy(crop, noise, torch.Generator().manual_seed(1000 + i))
        pairs.append((crop, quantize_8bit(noisy) if noise.name == "camera" else noisy, sigma))
    return pairs + real_pairs


@torch.no_grad()
def run_padded(net: DenoiserNet, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """`net(x, sigma)` on an image of any size: padded at the bottom and right to the network's size
    multiple (mirrored, or repeated where the image is too small to mirror), then cropped back."""
    mult = max(1, net.size_multiple)
    h, w = x.shape[-2:]
    ph, pw = -h % mult, -w % mult
    if not ph and not pw:
        return net(x, sigma)
    mode = "reflect" if ph < h and pw < w else "replicate"
    if sigma.dim() == 4:  # a per-pixel noise map is padded with the image
        sigma = F.pad(sigma, (0, pw, 0, ph), mode="replicate")
    return net(F.pad(x, (0, pw, 0, ph), mode=mode), sigma)[..., :h, :w]


def validate(net: DenoiserNet, pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], device: torch.device,
             levels: int = 255) -> float:
    """Mean PSNR (dB) of the model's output on the validation pairs, rounded to `levels` (8 bits as a
    saved photo is; a raw model's linear planes are kept at 16 bits, where 8-bit rounding would swamp
    the shadows)."""
    if not pairs:
        return float("nan")
    was = net.training
    net.eval()
    scores = []
    for clean, noisy, sigma in pairs:
        out = run_padded(net, noisy.to(device), sigma.to(device)).float().cpu()
        out = (out.clamp(0, 1) * levels).round()
        mse = torch.mean((out - clean * levels) ** 2).item()
        scores.append(10 * math.log10(levels**2 / max(mse, 1e-10)))
    net.train(was)
    return float(np.mean(scores))


def validation_levels(cfg: TrainConfig) -> int:
    """The rounding `validate` scores at: 16 bits for a raw model's linear planes, else 8 bits."""
    return 65535 if cfg.noise.name == "raw" else 255
