"""Image quality metrics: PSNR and SSIM (Wang et al. 2004), as BENCHMARK.md defines them."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def psnr(reference: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    """10·log10(range² / MSE) over all pixels and channels (inf when identical)."""
    ref = np.asarray(reference, dtype=np.float64)
    tst = np.asarray(test, dtype=np.float64)
    if ref.shape != tst.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {tst.shape}")
    mse = np.mean((ref - tst) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Gaussian-window SSIM (σ=1.5, truncated at 3.5σ like scikit-image), population covariance."""
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2

    def filt(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, sigma=1.5, truncate=3.5, mode="reflect")

    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cxy = filt(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = 5  # scikit-image crops (win_size - 1) // 2 with win_size = 2·⌊3.5·1.5 + 0.5⌋ + 1 = 11
    return float(s[pad:-pad, pad:-pad].mean()) if min(s.shape) > 2 * pad else float(s.mean())


def ssim(reference: np.ndarray, test: np.ndarray, data_range: float = 255.0) -> float:
    """Mean SSIM; (H, W, C) images average the per-channel SSIM."""
    ref = np.asarray(reference, dtype=np.float64)
    tst = np.asarray(test, dtype=np.float64)
    if ref.shape != tst.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {tst.shape}")
    if ref.ndim == 2:
        return _ssim_channel(ref, tst, data_range)
    return float(np.mean([_ssim_channel(ref[..., c], tst[..., c], data_range) for c in range(ref.shape[-1])]))


def removed_noise(noisy: np.ndarray, denoised: np.ndarray, max_values: int = 1_000_000) -> float:
    """RMS (0–255 scale) of what denoising took out of an image: a noise level a user can read.

    The blind σ the model is given measures white noise in flat areas, and real camera noise (correlated
    by demosaicing, shaped by in-camera processing) reads as a fraction of its strength there (σ ≈ 0.8 on a
    visibly noisy ISO 3200 JPEG). This is the strength of the noise actually removed. Both images are
    float in [0, 1] (H, W[, C]); large images are subsampled on a regular grid.
    """
    a = np.asarray(noisy, dtype=np.float32)
    b = np.asarray(denoised, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    step = max(1, int(np.sqrt(a.size / max_values)))
    d = (a[::step, ::step] - b[::step, ::step]) * 255.0
    return float(np.sqrt(np.mean(np.square(d, dtype=np.float64)))) if d.size else 0.0


def noise_map(noisy: np.ndarray, denoised: np.ndarray, block: int = 32) -> np.ndarray:
    """RMS (0–255 scale) of what denoising took out, per `block`×`block` region: the noise level region by
    region, which for camera noise follows the brightness (shot noise) and the in-camera processing,
    where one blind σ cannot. Both images are float in [0, 1] (H, W[, C]); returns (⌈H/block⌉, ⌈W/block⌉),
    the last row and column of regions covering what is left of the image."""
    if block < 1:
        raise ValueError(f"block must be at least 1 px, got {block}")
    a = np.asarray(noisy, dtype=np.float32)
    b = np.asarray(denoised, dtype=np.float32)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {a.shape} vs {b.shape}")
    sq = np.square((a - b) * 255.0, dtype=np.float64)
    if sq.ndim == 3:
        sq = sq.mean(axis=2)
    rows, cols = np.arange(0, sq.shape[0], block), np.arange(0, sq.shape[1], block)
    sums = np.add.reduceat(np.add.reduceat(sq, rows, axis=0), cols, axis=1)
    heights = np.diff(np.append(rows, sq.shape[0]))
    widths = np.diff(np.append(cols, sq.shape[1]))
    return np.sqrt(sums / np.outer(heights, widths)).astype(np.float32)
