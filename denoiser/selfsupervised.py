"""Self-supervised denoising losses for fine-tuning on noisy photos only (no clean targets).

Neighbor2Neighbor (Huang et al., CVPR 2021): a random neighbour sub-sampler picks, in every 2×2 cell,
two adjacent pixels and puts one in the half-resolution sub-image g1(y), the other in g2(y). With
noise independent between neighbours, g2(y) is a noisy target for the denoised g1(y):

    L = ‖f(g1(y)) − g2(y)‖² + γ·‖f(g1(y)) − g2(y) − (g1(f(y)) − g2(f(y)))‖²,  f(y) without gradient.

Real camera noise is spatially correlated (demosaicking, denoising in the camera pipeline): on the
SIDD pairs in test/real the noise of horizontally or vertically adjacent pixels correlates at ≈ 0.47,
pixels two apart at ≈ 0.08. Pixel-shuffle down-sampling (PD, Zhou et al. 2020) with stride 2 first
splits the image into its four stride-2 sub-images, so the neighbours the sub-sampler pairs are two
pixels apart in the photo and their noise is close to independent. An anchor term ‖f(y) − f_base(y)‖²
to the frozen base model's output on the full-resolution image keeps the model from drifting into blur
(weight 0.1 by default).

The model learns on the PD sub-images (quarter resolution, nearly white noise) but denoises the
full-resolution photo, whose noise is correlated; a distillation term ‖f(y) − PD⁻¹(f(PD(y)))‖² pulls
the full-resolution output towards its own output on the PD sub-images put back together (that target
is computed anyway for the regulariser, so it costs no extra pass), which makes what is learned carry
over. `denoiser.training.finetune_noisy` keeps a base whose output already holds little of the photos' noise
(`NOTHING_TO_LEARN`). The measurements behind these choices are in docs/notes/self_supervised.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.archs import DenoiserNet
from denoiser.estimate import estimate_sigma

#: The 8 ordered pairs of adjacent pixels in a 2×2 cell; positions 0 TL, 1 TR, 2 BL, 3 BR
#: (the channel order of `pixel_unshuffle`: dy·2 + dx).
NEIGHBOUR_PAIRS = torch.tensor([[0, 1], [1, 0], [0, 2], [2, 0], [1, 3], [3, 1], [2, 3], [3, 2]])


def neighbor_indices(
    batch: int, height: int, width: int, gen: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random neighbour choice per 2×2 cell: two (B, H/2, W/2) tensors of cell positions 0–3."""
    choice = torch.randint(0, len(NEIGHBOUR_PAIRS), (batch, height // 2, width // 2), generator=gen)
    pairs = NEIGHBOUR_PAIRS[choice]
    return pairs[..., 0].to(device), pairs[..., 1].to(device)


def subsample(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The half-resolution sub-image taking, in every 2×2 cell of `x`, the pixel at `index` (B, H/2, W/2)."""
    b, c, h, w = x.shape
    cells = F.pixel_unshuffle(x, 2).view(b, c, 4, h // 2, w // 2)
    idx = index.view(b, 1, 1, h // 2, w // 2).expand(b, c, 1, h // 2, w // 2)
    return cells.gather(2, idx).squeeze(2)


def neighbor_subsample(
    x: torch.Tensor, gen: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """g1(x), g2(x) from one random neighbour choice, and the indices (to sub-sample f(x) alike)."""
    i1, i2 = neighbor_indices(x.shape[0], x.shape[2], x.shape[3], gen, x.device)
    return subsample(x, i1), subsample(x, i2), (i1, i2)


def pd_down(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Pixel-shuffle down-sampling: (B, C, H, W) → (B·s², C, H/s, W/s), the s² stride-s sub-images."""
    if stride == 1:
        return x
    b, c, h, w = x.shape
    sub = F.pixel_unshuffle(x, stride).view(b, c, stride * stride, h // stride, w // stride)
    return sub.transpose(1, 2).reshape(b * stride * stride, c, h // stride, w // stride)


def pd_up(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Inverse of `pd_down`: put the s² sub-images back together at full resolution."""
    if stride == 1:
        return x
    bs, c, h, w = x.shape
    b = bs // (stride * stride)
    sub = x.view(b, stride * stride, c, h, w).transpose(1, 2).reshape(b, c * stride * stride, h, w)
    return F.pixel_shuffle(sub, stride)


def estimate_batch_sigma(x: torch.Tensor) -> torch.Tensor:
    """Blind σ/255 of every image of a (B, C, H, W) batch in [0, 1] (the estimator inference uses)."""
    arrays = x.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    return torch.tensor([estimate_sigma(a) / 255.0 for a in arrays], dtype=torch.float32, device=x.device)


def full_resolution_pass(anchor: float, distill: float, pd: int) -> bool:
    """Whether a step also runs the model, with gradient, on the full-resolution patch (anchor or distillation)."""
    return anchor > 0 or (distill > 0 and pd > 1)


@dataclass
class SelfSupervisedLoss:
    """The parts of the self-supervised loss (each already a mean over pixels)."""

    total: torch.Tensor
    reconstruction: torch.Tensor  # ‖f(g1) − g2‖²
    regularizer: torch.Tensor  # ‖f(g1) − g2 − (g1(f) − g2(f))‖²
    anchor: torch.Tensor  # ‖f(y) − f_base(y)‖²
    distill: torch.Tensor  # ‖f(y) − PD⁻¹(f(PD(y)))‖², PD⁻¹(f(PD(y))) without gradient


def self_supervised_loss(
    net: DenoiserNet,
    noisy: torch.Tensor,
    sigma: torch.Tensor | None = None,
    *,
    gen: torch.Generator | None = None,
    gamma: float = 2.0,
    pd: int = 2,
    base: DenoiserNet | None = None,
    anchor: float = 0.0,
    distill: float = 0.0,
) -> SelfSupervisedLoss:
    """Neighbor2Neighbor on the PD sub-images of `noisy`, plus the anchor to `base` on the full image.

    `distill` weighs a self-distillation term that carries what the model learns on the PD sub-images
    to the full-resolution image it will denoise: its full-resolution output is pulled towards its own
    output on the PD sub-images put back together (computed anyway for the regulariser, no gradient).

    `sigma` is the (B,) σ/255 given to the model for every input made from a sample (the image's σ);
    None estimates it blindly on each input the model sees. Sides must be multiples of
    2·pd·net.size_multiple.
    """
    z = pd_down(noisy, pd)
    sig_z = None if sigma is None else sigma.repeat_interleave(pd * pd)
    g1, g2, (i1, i2) = neighbor_subsample(z, gen)
    out1 = net(g1, estimate_batch_sigma(g1) if sig_z is None else sig_z)
    if sig_z is None:
        sig_z = estimate_batch_sigma(z)
    sig_y = sigma if sigma is not None else (sig_z if pd == 1 else estimate_batch_sigma(noisy))
    use_anchor = anchor > 0 and base is not None
    use_distill = distill > 0 and pd > 1
    if use_anchor and pd == 1:
        fy = net(noisy, sig_y)  # one pass serves the anchor (with gradient) and the regulariser (without)
        fz = fy.detach()
    else:
        with torch.no_grad():
            fz = net(z, sig_z)
        fy = net(noisy, sig_y) if use_anchor or use_distill else None
    reconstruction = F.mse_loss(out1, g2)
    regularizer = F.mse_loss(out1 - g2, subsample(fz, i1) - subsample(fz, i2))
    total = reconstruction + gamma * regularizer
    anchor_loss = torch.zeros((), device=noisy.device)
    distill_loss = torch.zeros((), device=noisy.device)
    if use_anchor:
        with torch.no_grad():
            target = base(noisy, sig_y)
        anchor_loss = F.mse_loss(fy, target)
        total = total + anchor * anchor_loss
    if use_distill:
        distill_loss = F.mse_loss(fy, pd_up(fz, pd))
        total = total + distill * distill_loss
    return SelfSupervisedLoss(total, reconstruction, regularizer, anchor_loss, distill_loss)


@torch.no_grad()
def n2n_score(net: DenoiserNet, noisy: torch.Tensor, sigma: torch.Tensor | None, pd: int, seed: int = 0) -> float:
    """No-reference validation score in dB: 10·log10(1 / ‖f(g1(z)) − g2(z)‖²) with fixed seeded masks.

    It measures how well the model predicts an independent noisy neighbour; the noise variance adds
    the same constant for every model, so higher is better and differences between models are
    differences in error against the (unknown) clean image.
    """
    z = pd_down(noisy, pd)
    sig_z = None if sigma is None else sigma.repeat_interleave(pd * pd)
    g1, g2, _ = neighbor_subsample(z, torch.Generator().manual_seed(seed))
    out = net(g1, estimate_batch_sigma(g1) if sig_z is None else sig_z).float()
    mse = float(F.mse_loss(out.clamp(0, 1), g2.float()))
    return float(10 * np.log10(1.0 / max(mse, 1e-12)))
