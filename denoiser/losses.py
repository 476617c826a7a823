"""Losses of the autoencoder family.

- reconstruction: L2, L1 or Charbonnier between the restoration and the clean image, plus optionally
  w·(1 − SSIM), the structural term of the L1 + SSIM mix (Zhao et al., "Loss Functions for Image
  Restoration with Neural Networks", 2017) that keeps texture an L1 loss alone smooths away;
- encoder robustness, the extra term of the modified denoising objective:
  (1/λ)·D_enc(G(x̃), G(x)), the distance between the codes of the corrupted and the clean input,
  normalised by the clean code's energy, with no gradient through the clean branch;
- KL sparsity of the sparse autoencoder: β·Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the mean activation of code unit j.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from denoiser.config_dict import config_from_dict
from denoiser.errors import DenoiserError


def l2_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error."""
    return torch.mean((pred - target) ** 2)


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    return torch.mean(torch.abs(pred - target))


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Smooth L1: mean of sqrt((pred − target)² + ε²)."""
    return torch.mean(torch.sqrt((pred - target) ** 2 + eps * eps))


RECONSTRUCTION_LOSSES = {"l2": l2_loss, "l1": l1_loss, "charbonnier": charbonnier_loss}


def reconstruction_loss(name: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Reconstruction loss by name (l2, l1, charbonnier)."""
    try:
        fn = RECONSTRUCTION_LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss '{name}' (known: {', '.join(RECONSTRUCTION_LOSSES)})") from None
    return fn(pred.float(), target.float())


def _gaussian_window(sigma: float = 1.5, radius: int = 5) -> torch.Tensor:
    """The 11-tap Gaussian of the SSIM window (σ 1.5, as `denoiser.metrics.ssim`), normalised to sum 1."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(x * x) / (2 * sigma * sigma))
    return g / g.sum()


def ssim_map(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-pixel SSIM of (N, C, H, W) images, each channel on its own, over the valid part of an 11×11
    Gaussian window (σ 1.5; constants K1 0.01, K2 0.03): differentiable, so it can train a network.
    Images smaller than the window are measured over a window as large as they are. Computed in float32
    even under autocast: the local variances E[x²] − E[x]² cancel, and in bf16 they are mostly rounding."""
    with torch.autocast(pred.device.type, enabled=False):
        return _ssim_map_fp32(pred.float(), target.float(), data_range)


def _ssim_map_fp32(pred: torch.Tensor, target: torch.Tensor, data_range: float) -> torch.Tensor:
    c = pred.shape[1]
    radius = max(0, min(5, (min(pred.shape[-2:]) - 1) // 2))
    g = _gaussian_window(1.5, radius).to(pred.device)
    gh = g.view(1, 1, 1, -1).expand(c, 1, 1, g.numel())
    gv = g.view(1, 1, -1, 1).expand(c, 1, g.numel(), 1)

    def filt(a: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.conv2d(a, gh, groups=c), gv, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = filt(pred), filt(target)
    vx = filt(pred * pred) - mx * mx
    vy = filt(target * target) - my * my
    cxy = filt(pred * target) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 − mean SSIM of images in [0, 1]: 0 for identical images, up to 2 for anti-correlated ones."""
    return 1.0 - ssim_map(pred, target).mean()


def code_distortion(code_noisy: torch.Tensor, code_clean: torch.Tensor) -> torch.Tensor:
    """D_enc(G(x̃), G(x)): squared code distance normalised by the clean code's mean energy.

    The clean code is detached: the term moves the encoder of the corrupted input towards the code
    of the clean one, not the other way round.
    """
    code_clean = code_clean.detach().float()
    diff = torch.mean((code_noisy.float() - code_clean) ** 2)
    return diff / (torch.mean(code_clean**2) + 1e-8)


def encoder_robustness_loss(code_noisy: torch.Tensor, code_clean: torch.Tensor, lam: float) -> torch.Tensor:
    """(1/λ)·D_enc(G(x̃), G(x)); λ = inf (or ≤ 0) switches the term off."""
    if lam <= 0 or lam == float("inf"):
        return code_noisy.new_zeros(())
    return code_distortion(code_noisy, code_clean) / lam


def mean_code_activation(code: torch.Tensor, in_unit_interval: bool) -> torch.Tensor:
    """ρ̂_j: the mean activation of each code channel j over batch and space, mapped into (0, 1).

    Codes not already in (0, 1) go through a sigmoid first.
    """
    a = code.float() if in_unit_interval else torch.sigmoid(code.float())
    return a.mean(dim=(0, 2, 3))


def kl_sparsity_loss(code: torch.Tensor, rho: float = 0.05, beta: float = 1.0, in_unit_interval: bool = True) -> torch.Tensor:
    """β·Σ_j KL(ρ ‖ ρ̂_j) for Bernoulli units with target mean activation ρ."""
    if beta == 0:
        return code.new_zeros(())
    rho_hat = mean_code_activation(code, in_unit_interval).clamp(1e-6, 1 - 1e-6)
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return beta * kl.sum()


@dataclass
class LossConfig:
    """Which terms make up the training objective, and their weights."""

    reconstruction: str = "l1"
    robustness_lambda: float = 0.0  # 0 = off; else the term is weighted by 1/λ
    sparsity_beta: float = 0.0  # 0 = off
    sparsity_rho: float = 0.05
    ssim_weight: float = 0.0  # 0 = off; else w·(1 − SSIM) is added to the reconstruction loss

    def __post_init__(self) -> None:
        if not self.ssim_weight >= 0:  # also refuses NaN
            raise DenoiserError(f"ssim_weight must be 0 (off) or positive, not {self.ssim_weight}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossConfig:
        """The config a checkpoint stored (or a recipe gives); unknown keys are refused."""
        return config_from_dict(cls, data)


def training_loss(cfg: LossConfig, net: Any, noisy: torch.Tensor, clean: torch.Tensor,
                  sigma: torch.Tensor | None = None) -> torch.Tensor:
    """The whole objective of one batch, composed here once for training, fine-tuning and the lab:
    reconstruction of `clean` from `noisy` (with w·(1 − SSIM) when `ssim_weight` is set), plus
    (1/λ)·‖G(x̃) − G(x)‖² and β·Σ KL(ρ‖ρ̂ⱼ) on the code when their weights are set. `net` is a
    DenoiserNet; the clean code comes from its encoder alone where it has one and takes no noise level
    (the plain autoencoders)."""
    res = net.encode_decode(noisy, sigma)
    loss = reconstruction_loss(cfg.reconstruction, res.image, clean)
    if cfg.ssim_weight > 0:
        loss = loss + cfg.ssim_weight * ssim_loss(res.image, clean)
    if cfg.robustness_lambda > 0:
        encode = getattr(net, "encode", None)
        clean_code = encode(clean) if callable(encode) and sigma is None else net.encode_decode(clean, sigma).code
        loss = loss + encoder_robustness_loss(res.code, clean_code, cfg.robustness_lambda)
    if cfg.sparsity_beta > 0:
        loss = loss + kl_sparsity_loss(res.code, cfg.sparsity_rho, cfg.sparsity_beta, net.code_in_unit_interval)
    return loss
