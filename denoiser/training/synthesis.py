"""Noisy training inputs made from clean patches, and the noise level each model is told.

Noise is made on the fly per batch; a share of the noisy inputs is clipped and rounded to 8 bits as a
saved photo is, so the models do not break on real files. Camera noise runs a small camera pipeline
(`denoiser.noise.camera`) with the steps each sample draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from denoiser.blend import LUMA_WEIGHTS
from denoiser.estimate import estimate_sigma
from denoiser.noise import (
    DAYLIGHT_GAINS,
    apply_noise,
    blur_noise,
    camera,
    camera_levels,
    jpeg_compress,
    quantize_8bit,
    random_ccms,
    reduce_chroma_noise,
    sharpen_noise,
)
from denoiser.training.config import NoiseConfig


def make_noisy(clean: torch.Tensor, cfg: NoiseConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt a clean batch; returns the noisy batch and the per-sample σ/255 the model is given.

    Camera noise keeps the clean image's detail (only the pipeline's noise is added), and with
    `clean_prob` some samples stay noise-free, so the model learns that a clean input is its own target.
    """
    b = clean.shape[0]
    dev = clean.device
    gdev = gen.device
    if cfg.name == "gaussian":
        lo, hi = cfg.sigma_range
        u = torch.rand(b, generator=gen, device=gdev)
        sigma = (lo + (hi - lo) * (u if cfg.sigma_power == 1.0 else u ** cfg.sigma_power)).to(dev) / 255.0
        noisy = clean + sigma.view(-1, 1, 1, 1) * torch.randn(clean.shape, generator=gen, device=gdev).to(dev)
    elif cfg.name == "camera":
        lo, hi = cfg.level_range
        levels = lo + (hi - lo) * torch.rand(b, generator=gen)
        sr = [camera_levels(float(v)) for v in levels]
        shot = torch.tensor([s for s, _ in sr], device=dev).view(-1, 1, 1, 1)
        read = torch.tensor([r for _, r in sr], device=dev).view(-1, 1, 1, 1)
        white = 0.0
        if cfg.white_prob > 0:
            picked, shares = _draw(b, cfg.white_prob, cfg.white_range, gen)
            white = torch.where(picked, shares, torch.zeros(b)).to(dev)
        keep = 1.0
        if cfg.develop_prob > 0:  # noisier samples come from a softer develop: at level 0 the detail is all kept
            picked, shares = _draw(b, cfg.develop_prob, cfg.develop_range, gen)
            keep = (1 - torch.where(picked, shares * levels, torch.zeros(b))).to(dev)
        wb = None
        if cfg.wb_prob > 0 and clean.shape[1] == 3:  # tungsten to shade: red and blue noise amplified apart
            picked, red = _draw(b, cfg.wb_prob, cfg.wb_range, gen)
            _, blue = _draw(b, 0.0, cfg.wb_range, gen)
            factors = torch.stack([torch.where(picked, red, torch.ones(b)), torch.ones(b),
                                   torch.where(picked, blue, torch.ones(b))], dim=1)
            wb = DAYLIGHT_GAINS * factors
        ccm = None
        if cfg.ccm_prob > 0 and clean.shape[1] == 3:  # the sensor's colours mixed into sRGB's: noise across channels
            picked = torch.rand(b, generator=gen) < cfg.ccm_prob
            ccm = torch.where(picked.view(-1, 1, 1), random_ccms(b, gen), torch.eye(3)).to(dev)
        noisy = camera(clean, gen, demosaic=1, jpeg_quality=0, keep_detail=keep, white=white, wb_gains=wb,
                       shot=shot, read=read, ccm=ccm)
        if cfg.sharpen_prob > 0:
            noisy = _each(noisy, clean, *_draw(b, cfg.sharpen_prob, cfg.sharpen_range, gen), sharpen_noise)
        if cfg.chroma_nr_prob > 0 and clean.shape[1] == 3:
            picked, keep = _draw(b, cfg.chroma_nr_prob, cfg.chroma_nr_range, gen)
            if picked.any():
                noisy = torch.where(picked.to(dev).view(-1, 1, 1, 1),
                                    reduce_chroma_noise(noisy, clean, torch.where(picked, keep, torch.ones(b)).to(dev)),
                                    noisy)
        if cfg.blur_prob > 0:
            noisy = _each(noisy, clean, *_draw(b, cfg.blur_prob, cfg.blur_range, gen), blur_noise)
        jpeg = torch.rand(b, generator=gen) < cfg.jpeg_prob
        for i in torch.nonzero(jpeg).flatten().tolist():
            q = int(torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (1,), generator=gen))
            noisy[i : i + 1] = jpeg_compress(noisy[i : i + 1], q)
        sigma = (noisy - clean).flatten(1).std(dim=1)
    else:
        noisy = apply_noise(clean, cfg.name, gen, **cfg.params)
        sigma = torch.full((b,), float(cfg.params.get("sigma", 0.0)) / 255.0, device=dev)
    if cfg.clean_prob > 0:
        keep = (torch.rand(b, generator=gen, device=gdev) < cfg.clean_prob).to(dev)
        noisy = torch.where(keep.view(-1, 1, 1, 1), clean, noisy)
        sigma = torch.where(keep, torch.zeros_like(sigma), sigma)
    clip = torch.rand(b, generator=gen, device=gdev).to(dev) < cfg.clip_prob
    if clip.any():
        noisy = torch.where(clip.view(-1, 1, 1, 1), quantize_8bit(noisy), noisy)
    if cfg.sigma_map == "estimate":
        sigma = estimated_sigmas(noisy)
    elif cfg.clean_prob > 0 and cfg.clean_sigma == "estimate" and keep.any():
        sigma = sigma.clone()
        sigma[keep] = estimated_sigmas(noisy[keep])
    return noisy, sigma


def _draw(b: int, prob: float, value_range: tuple[float, float], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of `b` samples a pipeline step picks (each with probability `prob`), and a value for each
    drawn uniformly from `value_range`: the step's strength."""
    lo, hi = value_range
    picked = torch.rand(b, generator=gen) < prob
    return picked, lo + (hi - lo) * torch.rand(b, generator=gen)


def _each(noisy: torch.Tensor, clean: torch.Tensor, picked: torch.Tensor, values: torch.Tensor,
          step: Any) -> torch.Tensor:
    """`step(noisy_i, clean_i, value_i)` on each picked sample of the batch, in place."""
    for i in torch.nonzero(picked).flatten().tolist():
        noisy[i : i + 1] = step(noisy[i : i + 1], clean[i : i + 1], float(values[i]))
    return noisy


def estimated_sigmas(noisy: torch.Tensor) -> torch.Tensor:
    """The blind σ estimate (σ/255, float32) of each image of a batch, on the batch's device."""
    est = [estimate_sigma(n.permute(1, 2, 0).cpu().numpy()) / 255.0 for n in noisy]
    return torch.tensor(est, device=noisy.device, dtype=torch.float32)


def make_gray(clean: torch.Tensor, noisy: torch.Tensor, sigma: torch.Tensor, cfg: NoiseConfig,
              rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Make a share (`gray_prob`) of a colour batch's samples black-and-white photos: input and target both
    become their luma in all three channels. Noise that is the same in every channel (a B&W photo's, or a
    colour photo's after strong chroma noise reduction) is otherwise never seen, and a model trained on
    colour noise alone reads it as detail and leaves it. The σ of a greyed sample is measured again, as
    `sigma_map` says; noise-free samples keep theirs. No draw is made when `gray_prob` is 0."""
    if cfg.gray_prob <= 0 or clean.shape[1] != 3:
        return clean, noisy, sigma
    picked = torch.from_numpy(rng.random(clean.shape[0]) < cfg.gray_prob).to(clean.device)
    if not picked.any():
        return clean, noisy, sigma
    weights = torch.from_numpy(LUMA_WEIGHTS).to(clean.device, clean.dtype).view(1, 3, 1, 1)
    mask = picked.view(-1, 1, 1, 1)
    clean = torch.where(mask, (clean * weights).sum(1, keepdim=True).expand_as(clean), clean)
    noisy = torch.where(mask, (noisy * weights).sum(1, keepdim=True).expand_as(noisy), noisy)
    idx = torch.nonzero(picked).flatten()
    sigma = sigma.clone()
    if cfg.sigma_map == "estimate":
        sigma[idx] = estimated_sigmas(noisy[idx]).to(sigma.dtype)
    else:
        measured = (noisy[idx] - clean[idx]).flatten(1).std(dim=1).to(sigma.dtype)
        sigma[idx] = torch.where(measured > 0, measured, sigma[idx])
    return clean.contiguous(), noisy.contiguous(), sigma


def expose(clean: torch.Tensor, cfg: NoiseConfig, rng: np.random.Generator) -> torch.Tensor:
    """Brighten a share (`exposure_prob`) of the clean patches by a random gain and clip them, as an
    over-exposed photo is: the model then sees saturated highlights as clean content to keep."""
    if cfg.exposure_prob <= 0:
        return clean
    lo, hi = cfg.exposure_range
    picked = rng.random(clean.shape[0]) < cfg.exposure_prob
    gains = np.where(picked, lo + (hi - lo) * rng.random(clean.shape[0]), 1.0).astype(np.float32)
    return (clean * torch.from_numpy(gains).view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def real_sigma(noisy: torch.Tensor, clean: torch.Tensor, cfg: NoiseConfig) -> torch.Tensor:
    """σ/255 the model is told for real pairs: the blind estimate, or the measured noise when trained on the true σ."""
    if cfg.sigma_map == "estimate":
        return estimated_sigmas(noisy)
    return (noisy - clean).flatten(1).std(dim=1)
