"""Blind noise-level estimation: σ (0–255 scale) of additive white noise from the noisy image alone.

Three estimators are implemented and measured (README, "Noise-level estimation"):
- `mad`: median absolute deviation of the finest diagonal Haar wavelet band (Donoho & Johnstone);
- `immerkaer`: mean absolute response of a Laplacian-difference mask (Immerkær 1996), over the half
  of the pixels with the weakest Sobel gradient (edges and texture excluded, as Immerkær suggests);
- `pca`: the smallest eigenvalues of the patch covariance, keeping the largest set whose mean equals
  its median (Chen, Zhu & Heng, ICCV 2015). Measured on BSD68 (README), the edge-excluding Immerkær estimator has the smallest error at every σ,
so it is the default.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import maximum_filter, sobel, uniform_filter


def _as_channels(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) float image in [0, 1] → (C, H, W) float64 on the 0–255 scale."""
    a = np.asarray(image, dtype=np.float64) * 255.0
    return a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)


def estimate_sigma_mad(image: np.ndarray) -> float:
    """Wavelet MAD: median(|HH|)/0.6745 of the finest Haar diagonal band, averaged over channels."""
    out = []
    for ch in _as_channels(image):
        h, w = ch.shape[0] // 2 * 2, ch.shape[1] // 2 * 2
        if h < 2 or w < 2:
            return 0.0
        c = ch[:h, :w]
        hh = (c[0::2, 0::2] - c[0::2, 1::2] - c[1::2, 0::2] + c[1::2, 1::2]) / 2.0
        out.append(np.median(np.abs(hh)) / 0.6745)
    return float(np.mean(out))


MIN_UNCLIPPED = 0.02  # below this share of unclipped 3×3 neighbourhoods a channel is measured whole
CLIPPED_SHARE = 0.001  # a channel with fewer values at its bounds is not treated as clipped (unclipped noise can land there)


def unclipped(c: np.ndarray) -> np.ndarray:
    """Interior pixels (H-2, W-2) of a channel on the 0–255 scale whose 3×3 neighbourhood holds no value
    at 0 or 255: where the noise was clipped it is smaller and one-sided, and would read as a low σ. Only
    values at the bounds count (within float rounding): values beyond them are unclipped noise."""
    clipped = (np.abs(c) < 1e-3) | (np.abs(c - 255.0) < 1e-3)
    if clipped.mean() < CLIPPED_SHARE:
        return np.ones((c.shape[0] - 2, c.shape[1] - 2), dtype=bool)
    return ~maximum_filter(clipped, size=3, mode="nearest")[1:-1, 1:-1]


def estimate_sigma_immerkaer(image: np.ndarray, keep: float = 0.5) -> float:
    """Immerkær's estimator sqrt(π/2)/6 · mean|I * M| over the `keep` share of least-textured pixels.

    Pixels are ranked by Sobel gradient magnitude; `keep` = 1 is the original whole-image form.
    Where a channel holds clipped values (0 or 255: saturated highlights, crushed shadows), neighbourhoods
    that touch them are left out, and so, in two refinements, are pixels whose local mean lies within
    2σ̂ of a bound, where noise was partly clipped away; so a clipped photo is not read as less noisy than
    it is. Too few pixels left: the channel is measured whole. Channels are averaged.
    """
    out = []
    for c in _as_channels(image):
        h, w = c.shape
        if h < 3 or w < 3:
            return 0.0
        conv = (
            c[:-2, :-2] - 2 * c[:-2, 1:-1] + c[:-2, 2:]
            - 2 * c[1:-1, :-2] + 4 * c[1:-1, 1:-1] - 2 * c[1:-1, 2:]
            + c[2:, :-2] - 2 * c[2:, 1:-1] + c[2:, 2:]
        )
        grad = np.hypot(sobel(c, 0), sobel(c, 1))[1:-1, 1:-1] if keep < 1.0 else None
        valid = unclipped(c)
        if valid.mean() < MIN_UNCLIPPED:
            valid = np.ones_like(valid)
        sigma = _immerkaer_over(conv, grad, valid, keep)
        if not valid.all():
            local_mean = uniform_filter(c, size=5, mode="nearest")[1:-1, 1:-1]
            for _refinement in range(2):
                margin = 2.0 * sigma
                away = valid & (local_mean > margin) & (local_mean < 255.0 - margin)
                if away.mean() < MIN_UNCLIPPED:
                    break
                sigma = _immerkaer_over(conv, grad, away, keep)
        out.append(sigma)
    return float(np.mean(out))


def _immerkaer_over(conv: np.ndarray, grad: np.ndarray | None, mask: np.ndarray, keep: float) -> float:
    """Immerkær's σ from the mask's pixels, the `keep` share with the weakest gradient among them."""
    sel = conv[mask]
    if grad is not None:
        g = grad[mask]
        sel = sel[g <= np.quantile(g, keep)]
    return float(math.sqrt(math.pi / 2) * np.abs(sel).mean() / 6)


def _patches(image: np.ndarray, size: int, max_patches: int) -> np.ndarray:
    """Overlapping size×size patches of every channel, flattened per pixel position → (N, C·size²)."""
    chans = _as_channels(image)
    c, h, w = chans.shape
    view = np.lib.stride_tricks.sliding_window_view(chans, (size, size), axis=(1, 2))  # C, H', W', s, s
    n_h, n_w = view.shape[1], view.shape[2]
    step = max(1, int(math.sqrt(n_h * n_w / max_patches)))
    sub = view[:, ::step, ::step]
    return np.moveaxis(sub, 0, 2).reshape(-1, c * size * size)


def estimate_sigma_pca(image: np.ndarray, patch: int = 7, max_patches: int = 40000) -> float:
    """Chen et al.'s PCA estimator on overlapping patches (all channels of a patch together)."""
    a = np.asarray(image)
    if a.shape[0] < patch or a.shape[1] < patch:
        return estimate_sigma_immerkaer(image)
    x = _patches(image, patch, max_patches)
    if x.shape[0] < x.shape[1] * 2:
        return estimate_sigma_immerkaer(image)
    x = x - x.mean(axis=0, keepdims=True)
    eig = np.sort(np.clip(np.linalg.eigvalsh(x.T @ x / x.shape[0]), 0, None))
    mean = eig.mean()
    for count in range(eig.size, 0, -1):
        tail = eig[:count]
        mean = tail.mean()
        if np.sum(tail > mean) == np.sum(tail < mean):
            break
    return float(math.sqrt(max(mean, 0.0)))


ESTIMATORS = {"immerkaer": estimate_sigma_immerkaer, "pca": estimate_sigma_pca, "mad": estimate_sigma_mad}
DEFAULT_ESTIMATOR = "immerkaer"


def estimate_sigma(image: np.ndarray, method: str = DEFAULT_ESTIMATOR) -> float:
    """σ of the noise in an (H, W[, C]) image in [0, 1], on the 0–255 scale."""
    try:
        fn = ESTIMATORS[method]
    except KeyError:
        raise ValueError(f"unknown estimator '{method}' (known: {', '.join(ESTIMATORS)})") from None
    return fn(image)
