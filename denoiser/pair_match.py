"""Real noisy/clean pairs whose clean image is not the noisy one's signal at low frequencies.

The clean image of a real pair is made from other exposures (the mean of many frames): where the light,
the exposure or the camera's local tone processing changed between them, it differs from the noisy shot
by a smooth field of several levels (PolyU40's Canon 5D II scenes: a 16-px average of noisy − clean
varies by 3–6 levels, against under 1 for the Canon 80D ones). A model trained on such a target learns to
re-tone a photo, which it cannot predict on a new scene and which a photographer never wants.
`match_low_frequencies` gives the clean target the noisy image's own low frequencies, so the pair
teaches only what noise is: zero-mean noise averaged over a Gaussian of `radius` px is a small fraction
of a level, so little of it enters the target.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter


def _unit(a: np.ndarray) -> tuple[np.ndarray, float]:
    """An 8- or 16-bit (or float [0, 1]) image as float32 in [0, 1], and the full scale of its dtype."""
    full = 65535.0 if a.dtype == np.uint16 else 255.0 if a.dtype == np.uint8 else 1.0
    return a.astype(np.float32) / np.float32(full), full


def low_frequency_residual(noisy: np.ndarray, clean: np.ndarray, radius: float) -> np.ndarray:
    """noisy − clean blurred by a Gaussian of `radius` px, per channel, in [0, 1] units over the common size."""
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    h, w = min(noisy.shape[0], clean.shape[0]), min(noisy.shape[1], clean.shape[1])
    n, _ = _unit(noisy[:h, :w])
    c, _ = _unit(clean[:h, :w])
    d = n - c
    if d.ndim == 3:
        return gaussian_filter(d, sigma=(radius, radius, 0), mode="reflect")
    return gaussian_filter(d, sigma=radius, mode="reflect")


def match_low_frequencies(noisy: np.ndarray, clean: np.ndarray, radius: float) -> np.ndarray:
    """`clean` with the low frequencies (Gaussian of `radius` px) of `noisy`: the target of a real pair
    that keeps the noisy shot's light and tone. Same dtype as `clean`, cut to the pair's common size."""
    h, w = min(noisy.shape[0], clean.shape[0]), min(noisy.shape[1], clean.shape[1])
    c, full = _unit(clean[:h, :w])
    out = np.clip(c + low_frequency_residual(noisy, clean, radius), 0.0, 1.0)
    if clean.dtype in (np.uint8, np.uint16):
        return (out * np.float32(full) + np.float32(0.5)).astype(clean.dtype)
    return out.astype(clean.dtype)


def low_frequency_mismatch(noisy: np.ndarray, clean: np.ndarray, radius: float) -> np.ndarray:
    """RMS per channel (0–255 levels) of the low-frequency difference `match_low_frequencies` removes."""
    low = low_frequency_residual(noisy, clean, radius)
    axes = (0, 1) if low.ndim == 3 else None
    return np.atleast_1d(np.sqrt(np.mean(np.square(low, dtype=np.float64), axis=axes)) * 255.0)
