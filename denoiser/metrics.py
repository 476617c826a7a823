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
