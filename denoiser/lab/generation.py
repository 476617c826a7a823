"""Experiment 8: generation — decoding interpolated codes, and samples from a Gaussian fitted to the codes."""

from __future__ import annotations

import math

import numpy as np
import torch

from denoiser.lab.common import (
    AE_BOTTLENECK,
    ExperimentResult,
    LabContext,
    ModelSpec,
    Scale,
    Table,
    check,
    psnr_batch,
    ratio,
    stable_seed,
)
from denoiser.lab.plots import image_grid, to_gray
from denoiser.progress import ProgressGen

KEY = "generation"
TITLE = "Generation"
EXPECTATION = (
    "The decoder g maps any code to an image, so it can generate. Decoding (1−t)·h₀ + t·h₁ between the codes of "
    "two images gives a path of images that changes smoothly (g is continuous): no step along the path should be "
    "much larger than the average step. Sampling codes from a Gaussian fitted to the codes of training patches "
    "(mean and full covariance) and decoding them gives patches with image-like statistics (contrast and edge "
    "strength close to reconstructed real patches); a Gaussian with the same per-unit variances but no "
    "correlations ignores how neighbouring code values go together and should match real patches less well. "
    "A plain AE is not a trained generative model (unlike a VAE), so samples are blurry and not photo-realistic."
)
STEPS = 8
SAMPLES = 16
SMOOTH_RATIO = 2.0
STATS_TOLERANCE = 0.35


def plan(scale: Scale) -> list[ModelSpec]:
    """The bottleneck AE of experiment 1."""
    return [AE_BOTTLENECK]


def patch_stats(x: torch.Tensor) -> tuple[float, float]:
    """(mean per-patch standard deviation, mean absolute horizontal+vertical gradient) of a batch."""
    std = float(x.flatten(1).std(dim=1).mean())
    grad = float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()) / 2
    return std, grad


def fit_gaussian(codes: torch.Tensor, ridge: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and a Cholesky factor of the covariance of flattened codes (N, D), ridge-regularised."""
    flat = codes.flatten(1).double()
    mean = flat.mean(dim=0)
    centred = flat - mean
    cov = centred.T @ centred / max(1, len(flat) - 1)
    cov += ridge * (torch.trace(cov) / cov.shape[0]) * torch.eye(cov.shape[0], dtype=cov.dtype)
    return mean, torch.linalg.cholesky(cov)


def run(ctx: LabContext) -> ProgressGen[ExperimentResult]:
    """Interpolate between two test crops' codes; sample full- and diagonal-covariance Gaussians of the codes."""
    res = ExperimentResult(KEY, TITLE, EXPECTATION)
    net = yield from ctx.model(AE_BOTTLENECK, KEY)
    res.models.append(AE_BOTTLENECK.name)
    clean = ctx.test_images
    a, b = clean[:1], clean[min(1, len(clean) - 1) : min(1, len(clean) - 1) + 1]
    with torch.no_grad():
        h0, h1 = net.encode(a), net.encode(b)
        ts = torch.linspace(0, 1, STEPS)
        path = torch.cat([net.decode((1 - t) * h0 + t * h1) for t in ts]).clamp(0, 1)
    steps = ((path[1:] - path[:-1]) ** 2).flatten(1).mean(dim=1).sqrt()
    step_ratio = ratio(float(steps.max()), float(steps.mean()))
    end_psnr = (psnr_batch(path[:1], a) + psnr_batch(path[-1:], b)) / 2

    patches = ctx.train_patches
    codes = ctx.codes(net, patches)
    mean, chol = fit_gaussian(codes)
    gen = torch.Generator().manual_seed(stable_seed(ctx.cfg.seed, "samples"))
    z = torch.randn(SAMPLES, mean.numel(), generator=gen, dtype=torch.float64)
    full = (mean + z @ chol.T).float().view(SAMPLES, *codes.shape[1:])
    diag_std = chol.pow(2).sum(dim=1).sqrt()  # sqrt of the covariance diagonal
    diag = (mean + z * diag_std).float().view(SAMPLES, *codes.shape[1:])
    with torch.no_grad():
        real = ctx.run(net, patches[:SAMPLES])
        full_img = net.decode(full).clamp(0, 1)
        diag_img = net.decode(diag).clamp(0, 1)
    stats = {"real patches (reconstructed)": patch_stats(real), "full-covariance samples": patch_stats(full_img),
             "diagonal samples": patch_stats(diag_img)}
    yield ctx.advance(ctx.scale.steps / 4, f"{KEY}: sampled")
    ref_std, ref_grad = stats["real patches (reconstructed)"]
    res.tables.append(Table("interpolation", f"Decoded interpolation between the codes of two test crops in {STEPS} "
                                             "steps: the largest step over the mean step (1 = perfectly even).",
                            ["endpoint recon. PSNR", "max step / mean step"], [[end_psnr, step_ratio]]))
    res.tables.append(Table("samples", f"{SAMPLES} decoded samples of each kind; code dimension "
                                       f"{mean.numel()} fitted on {len(codes)} training patches.",
                            ["images", "patch std", "mean |gradient|", "std / real", "gradient / real"],
                            [[k, s, g, ratio(s, ref_std), ratio(g, ref_grad)] for k, (s, g) in stats.items()]))
    pixel = torch.cat([(1 - t) * a + t * b for t in ts])
    fig = image_grid(ctx.figure_path("generation_interpolation.png"),
                     [[to_gray(p) for p in path], [to_gray(p) for p in pixel]],
                     ["decoded code path", "pixel cross-fade"], [f"t={t:.2f}" for t in ts.tolist()])
    res.figures.append((fig, "Decoding interpolated codes between two test crops (top) against blending the "
                             "pixels (bottom)."))
    fig = image_grid(ctx.figure_path("generation_samples.png"),
                     [[to_gray(p) for p in real[:8]], [to_gray(p) for p in full_img[:8]],
                      [to_gray(p) for p in diag_img[:8]]],
                     ["real (recon.)", "Gaussian, full cov.", "Gaussian, diagonal"])
    res.figures.append((fig, "Decoded samples from Gaussians fitted to the codes of training patches."))

    res.checks.append(check(step_ratio <= SMOOTH_RATIO,
                            f"the decoded path is smooth: its largest step is {step_ratio:.2f}× the mean step "
                            f"(threshold ≤ {SMOOTH_RATIO:g})",
                            "the decoder changes abruptly between the two codes."))

    def off(name: str) -> float:
        s, g = stats[name]
        r = [ratio(s, ref_std), ratio(g, ref_grad)]
        return max(abs(math.log(v)) if 0 < v < math.inf else math.inf for v in r)

    full_off, diag_off = off("full-covariance samples"), off("diagonal samples")
    res.checks.append(check(full_off <= np.log(1 + STATS_TOLERANCE),
                            f"full-covariance samples have image-like statistics: std and gradient within "
                            f"{np.exp(full_off) - 1:.0%} of real reconstructions (threshold {STATS_TOLERANCE:.0%})",
                            "a single Gaussian is a crude model of the code distribution of natural patches."))
    res.checks.append(check(full_off < diag_off,
                            f"the correlations matter: diagonal samples are {np.exp(diag_off) - 1:.0%} off, full-"
                            f"covariance samples {np.exp(full_off) - 1:.0%}",
                            "in this small code the units are nearly independent, so the correlations add little."))
    res.values = {"step_ratio": step_ratio, "endpoint_psnr": end_psnr, "stats": stats, "full_off": full_off,
                  "diag_off": diag_off}
    return res
