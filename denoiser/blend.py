"""How much of the denoised result to keep, and what a photographer adds back: the finishing stage.

- Luminance and colour apart: colour (chroma) noise is usually wanted gone while some luminance grain
  stays, so skin and skies do not look plastic. The change the model made is split into its luma part
  (the BT.601 luma of the change, the same on every channel) and its chroma part (the rest), each kept
  by its own share and both scaled by the overall strength. With chroma 0 the input's Cb and Cr are
  kept exactly; with luma 0 its Y is.
- Detail: where the removed residual holds more energy than the noise explains (texture the model
  took for noise), a share of it is returned first, before any grain.
- Grain: fresh, fine, luminance-only grain, seeded, scaled to the noise that was removed, so a clean
  result still looks photographic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, uniform_filter

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # BT.601, as JPEG's YCbCr
DETAIL_WINDOW = 7  # px: the window over which the residual's energy is compared with the noise's
NOISE_MARGIN = 1.6  # residual energy below this × the noise energy is noise (3 spreads of a 7×7 window)


@dataclass(frozen=True)
class Blend:
    """Shares of the denoised result kept: overall, and of its luminance and colour change (each 0–1)."""

    strength: float = 1.0
    luma: float = 1.0
    chroma: float = 1.0
    detail: float = 0.0  # share of the texture in the removed residual given back
    grain: float = 0.0  # fresh luminance grain, as a share of the removed noise's rms
    grain_size: float = 1.0  # the grain's radius in px: 1 is fine film grain, larger is coarser
    seed: int = 0  # the grain's seed: the same photo and settings give the same grain

    def __post_init__(self) -> None:
        for name in ("strength", "luma", "chroma", "detail", "grain"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if not 0.5 <= self.grain_size <= 8.0:
            raise ValueError(f"grain size must be within 0.5–8 px, got {self.grain_size}")

    @property
    def is_identity(self) -> bool:
        """True when the result is kept as the model made it."""
        return (self.strength == 1.0 and self.luma == 1.0 and self.chroma == 1.0 and self.detail == 0.0
                and self.grain == 0.0)


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma (H, W, 1) of an (H, W, 3) image; a one-channel image is its own luma."""
    if image.shape[-1] == 1:
        return image
    return (image @ LUMA_WEIGHTS)[..., None]


def noise_rms(residual: np.ndarray, max_values: int = 1_000_000) -> float:
    """Robust rms of the noise in a removed residual (H, W, 1): 1.4826 × its median absolute value, so
    the texture the residual also holds does not inflate it; large images are read on a regular grid."""
    step = max(1, int(np.sqrt(residual.size / max_values)))
    sample = residual[::step, ::step]
    return float(1.4826 * np.median(np.abs(sample - np.median(sample)))) if sample.size else 0.0


def texture_share(residual_luma: np.ndarray, noise: float) -> np.ndarray:
    """Per pixel, the share (0–1) of the residual's local energy above what its noise (rms `noise`)
    explains: 0 in flat, noise-only areas, towards 1 on edges and texture the model smoothed away."""
    sigma2 = noise**2
    energy = uniform_filter(np.square(residual_luma[..., 0]), DETAIL_WINDOW)
    share = 1.0 - NOISE_MARGIN * sigma2 / np.maximum(energy, 1e-12)
    return np.clip(share, 0.0, 1.0)[..., None].astype(np.float32)


def fresh_grain(shape: tuple[int, ...], size: float, seed: int) -> np.ndarray:
    """Unit-rms luminance grain (H, W, 1): seeded white noise low-passed at `size` px, as film grain is."""
    rng = np.random.default_rng(seed)
    field = rng.standard_normal(shape[:2], dtype=np.float32)
    if size > 0.5:
        field = gaussian_filter(field, sigma=size - 0.5, mode="reflect")
    rms = float(np.sqrt(np.mean(np.square(field, dtype=np.float64)))) or 1.0
    return (field / rms)[..., None]


def apply_blend(original: np.ndarray, denoised: np.ndarray, blend: Blend) -> np.ndarray:
    """Finish the result (both (H, W, C) floats on one scale) as `blend` says: texture back, the luma
    and chroma shares, then grain.

    The output keeps to the range the two images span, so a luma-only change cannot push a bright
    pixel past white."""
    if blend.is_identity:
        return denoised
    original = original.astype(np.float32)
    result = denoised.astype(np.float32)
    residual = original - result
    residual_luma = luma(residual) if blend.detail > 0 or blend.grain > 0 else None
    noise = noise_rms(residual_luma) if residual_luma is not None else 0.0
    if blend.detail > 0:
        result = result + blend.detail * texture_share(residual_luma, noise) * residual
    change = result - original
    if original.shape[-1] == 3 and blend.luma != blend.chroma:
        luma_change = luma(change)
        kept = blend.luma * luma_change + blend.chroma * (change - luma_change)
    else:  # one channel is all luma; equal shares need no split
        kept = blend.luma * change
    out = original + blend.strength * kept
    if blend.grain > 0:
        out = out + blend.grain * noise * fresh_grain(out.shape, blend.grain_size, blend.seed)
    lo = min(0.0, float(original.min()), float(denoised.min()))
    hi = max(1.0, float(original.max()), float(denoised.max()))
    return np.clip(out, lo, hi).astype(np.float32)
