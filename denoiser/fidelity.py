"""Fidelity: a denoiser must leave a clean photo alone.

Two jobs live here. `keep_clipped` is the engine's guarantee for clipped regions: where a whole
neighbourhood of a channel is clipped to black or white, the input is kept, because no noise can be
told apart from the clipping there and photographers expect a blown sky to stay white (the network
alone dimmed such regions by up to 60 levels). `measure_fidelity` is the measurement behind the
benchmark's fidelity table and the tests: clean images in, σ estimated, and how much the output moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

CLIP_WINDOW = 5  # a pixel is kept when every value of its CLIP_WINDOW² neighbourhood in that channel is clipped
_EPS = 1e-6


def clipped_interior(x: torch.Tensor, window: int = CLIP_WINDOW) -> torch.Tensor:
    """Boolean (B, C, H, W): pixels whose window² neighbourhood in the same channel is all clipped (each
    value at 0 or at 1).

    Only values at the bounds count (within float rounding): a float image's values beyond them were not
    clipped, and are denoised. A tile whose values all lie inside the bounds costs one min/max pass;
    otherwise the mask of values at a bound is eroded by the window, separably."""
    lo, hi = torch.aminmax(x)
    if lo > _EPS and hi < 1.0 - _EPS:
        return torch.zeros_like(x, dtype=torch.bool)
    at_bound = ((x >= 1.0 - _EPS) & (x <= 1.0 + _EPS)) | ((x >= -_EPS) & (x <= _EPS))
    return _erode(at_bound, window)


def _erode(mask: torch.Tensor, window: int) -> torch.Tensor:
    """Binary erosion of a (B, C, H, W) boolean by a window² square, separably; outside the tensor counts as
    set, so the window shrinks at the border."""
    pad = window // 2
    h, w = mask.shape[-2:]
    padded = F.pad(mask.to(torch.uint8), (pad, pad, 0, 0), value=1)
    rows = padded[..., :, 0:w].clone()
    for k in range(1, window):
        rows &= padded[..., :, k : k + w]
    padded = F.pad(rows, (0, 0, pad, pad), value=1)
    out = padded[..., 0:h, :].clone()
    for k in range(1, window):
        out &= padded[..., k : k + h, :]
    return out.bool()


def keep_clipped(x: torch.Tensor, y: torch.Tensor, window: int = CLIP_WINDOW) -> torch.Tensor:
    """`y` with the input `x` put back in the interior of clipped regions (both (B, C, H, W) in [0, 1]).

    At the border of a tile the window shrinks to what the tile holds;
    callers cut tiles with a margin wider than the window, so tiled and whole-image results agree.
    """
    keep = clipped_interior(x, window)
    return torch.where(keep, x.to(y.dtype), y) if bool(keep.any()) else y


@dataclass
class Fidelity:
    """How much a denoiser changed clean images (8-bit levels, means over the images)."""

    images: int
    mean_shift: tuple[float, ...]  # output − input, per channel, outside the saturated pixels
    psnr_vs_input: float  # dB
    saturated_kept: float  # share of the input's 255 values that stay at 254 or above
    saturated_interior_kept: float  # the same inside regions clipped over a whole 5×5 window
    max_abs_change: float  # levels


def measure_fidelity(images: Iterable[np.ndarray], restore: Callable[[np.ndarray], np.ndarray]) -> Fidelity:
    """Run `restore` (float (H, W, C) in [0, 1] → the same) on clean 8-bit images given as arrays on the
    0–255 scale, and report how far the rounded 8-bit output moved from its input."""
    shifts, psnrs, kept, kept_in, total, total_in, worst, n = [], [], 0, 0, 0, 0, 0.0, 0
    for x in images:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 2:
            x = x[..., None]
        y = np.clip(np.round(np.asarray(restore((x / 255.0).astype(np.float32)), np.float64) * 255.0), 0, 255)
        y = y.reshape(x.shape)
        sat = x >= 255
        unsat = ~sat.any(axis=-1)
        shifts.append([(y[..., c] - x[..., c])[unsat].mean() if unsat.any() else 0.0 for c in range(x.shape[-1])])
        mse = np.mean((y - x) ** 2)
        psnrs.append(10 * np.log10(255.0**2 / max(mse, 1e-10)))
        kept += int((y[sat] >= 254).sum())
        total += int(sat.sum())
        interior = clipped_interior(torch.from_numpy(x / 255.0).permute(2, 0, 1)[None]).numpy()[0].transpose(1, 2, 0) & sat
        kept_in += int((y[interior] >= 254).sum())
        total_in += int(interior.sum())
        worst = max(worst, float(np.abs(y - x).max()))
        n += 1
    if n == 0:
        raise ValueError("no images to measure fidelity on")
    return Fidelity(n, tuple(float(v) for v in np.mean(shifts, axis=0)), float(np.mean(psnrs)),
                    kept / total if total else 1.0, kept_in / total_in if total_in else 1.0, worst)


def overexpose(x: np.ndarray, gain: float = 1.5) -> np.ndarray:
    """A clean 0–255 image brightened by `gain` and clipped to 8 bits: large saturated regions, no noise."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * gain), 0, 255)
