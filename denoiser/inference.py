"""Tiled denoising of images of any size, on the CPU or CUDA.

The image is cut into tiles that each carry a context margin (discarded after the pass) and overlap
their neighbours; overlaps are blended with complementary linear ramps whose weights sum to one, so
the output needs no weight buffer and peak memory is the image, the output and one tile. Out-of-image
context is a virtual mirror of the whole image, identical for one tile or many, so tiled output
matches untiled output wherever the margin covers the network's reach.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from denoiser.archs import DenoiserNet
from denoiser.checkpoint import LoadedModel
from denoiser.device import resolve_device
from denoiser.estimate import estimate_sigma
from denoiser.progress import Progress, ProgressGen, drain

DEFAULT_MARGIN = 48
DEFAULT_BLEND = 16
MIN_TILE = 64


@dataclass
class DenoiseResult:
    """The restored image (H, W, C float32) and how it was made."""

    image: np.ndarray
    sigma: float  # σ on the 0–255 scale the model was given
    sigma_estimated: bool
    seconds: float
    tiles: int
    device: str


def _mirror(idx: np.ndarray, n: int) -> np.ndarray:
    """Map any integer indices into [0, n) by mirror reflection (like numpy 'reflect', any distance)."""
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * (n - 1)
    idx = np.mod(idx, period)
    return np.where(idx >= n, period - idx, idx)


def _axis_tiles(length: int, keep: int, blend: int, align: int = 1) -> list[tuple[int, int, np.ndarray]]:
    """Tiles along one axis: (start, kept size, weights) with weights summing to 1 at every position.

    Starts are multiples of `align`, so every tile sees the network's down-sampling grid as the whole
    image does; the last tile may be cut short by the image end.
    """
    if length <= keep:
        return [(0, length, np.ones(length, dtype=np.float32))]
    n = math.ceil((length - blend) / (keep - blend))
    while True:
        starts = [int(round(i * (length - keep) / (n - 1) / align)) * align for i in range(n - 1)]
        starts.append(math.ceil((length - keep) / align) * align)
        overlaps = [a + keep - b for a, b in zip(starts, starts[1:], strict=False)]
        if min(overlaps) >= min(blend, keep // 2):
            break
        n += 1
    out = []
    for i, s in enumerate(starts):
        w = np.ones(keep, dtype=np.float32)
        if i > 0:  # seam with the previous tile, centred in the overlap
            ov = starts[i - 1] + keep - s
            b = min(blend, ov)
            lo = (ov - b) // 2
            w[:lo] = 0
            w[lo : lo + b] = (np.arange(b, dtype=np.float32) + 0.5) / b
        if i < n - 1:
            ov = s + keep - starts[i + 1]
            b = min(blend, ov)
            lo = keep - ov + (ov - b) // 2
            w[lo : lo + b] *= 1 - (np.arange(b, dtype=np.float32) + 0.5) / b
            w[lo + b :] = 0
        size = min(keep, length - s)
        out.append((s, size, w[:size]))
    return out


def available_memory_bytes() -> int:
    """Memory the OS reports as available (Linux /proc/meminfo), else a conservative 2 GB."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 2 * 1024**3


BYTES_PER_TILE_PIXEL = 600  # activations of the default UNet per input pixel (float32 CPU, half on CUDA)


def choose_tile_size(device: torch.device, channels: int = 3) -> int:
    """Tile edge in pixels from free memory: at most a quarter of it for one tile's activations.

    On the CPU the edge is also capped at 768 px, where the activations still stay close to the cache
    and the per-tile margin overhead is small; on CUDA larger tiles keep the GPU busy.
    """
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        cap = 4096
    else:
        free, cap = available_memory_bytes(), 768
    edge = int(math.sqrt(free * 0.25 / BYTES_PER_TILE_PIXEL))
    return max(MIN_TILE * 2, min(cap, edge // 64 * 64))


def _run_net(net: DenoiserNet, x: np.ndarray, sigma: float, device: torch.device) -> np.ndarray:
    """One forward pass on a (h, w, C) float array whose sides are multiples of the net's size."""
    t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None].to(device)
    s = torch.tensor([sigma / 255.0], device=device)
    if device.type == "cpu":
        t = t.contiguous(memory_format=torch.channels_last)
        out = net(t, s)
    else:
        with torch.autocast("cuda", dtype=torch.float16):
            out = net(t, s)
    return out[0].float().permute(1, 2, 0).cpu().numpy()


def denoise_array(
    image: np.ndarray,
    model: LoadedModel | DenoiserNet,
    *,
    sigma: float | None = None,
    tile: int | None = None,
    margin: int = DEFAULT_MARGIN,
    blend: int = DEFAULT_BLEND,
    device: str | torch.device = "auto",
) -> ProgressGen[DenoiseResult]:
    """Denoise an (H, W, C) float image in [0, 1]; yields one event per tile, returns the result.

    `sigma` (0–255 scale) is the noise level given to the model; None estimates it from the image.
    Grey images through a colour model are replicated to three channels; colour images through a grey
    model are denoised channel by channel. Alpha is the caller's to keep.
    """
    start = time.perf_counter()
    net = model.net if isinstance(model, LoadedModel) else model
    dev = resolve_device(device)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    estimated = sigma is None
    if sigma is None:
        sigma = estimate_sigma(_centre_crop(image, 1024))
    h, w, c = image.shape
    net = net.to(dev).eval()
    if dev.type == "cpu":
        net = net.to(memory_format=torch.channels_last)
    mult = max(1, net.size_multiple)
    if tile is None:
        tile = choose_tile_size(dev, c)
    tile = max(tile, 2 * margin + max(MIN_TILE, 2 * blend))
    margin = math.ceil(margin / mult) * mult
    keep = (tile - 2 * margin) // mult * mult
    ys, xs = _axis_tiles(h, keep, blend, mult), _axis_tiles(w, keep, blend, mult)
    if net.in_channels == c:
        passes = [(slice(0, c), False)]
    elif net.in_channels == 3 and c == 1:
        passes = [(slice(0, 1), True)]
    elif net.in_channels == 1:
        passes = [(slice(i, i + 1), False) for i in range(c)]
    else:
        raise ValueError(f"a {net.in_channels}-channel model cannot denoise a {c}-channel image")
    total = len(ys) * len(xs) * len(passes)
    out = np.zeros((h, w, c), dtype=np.float32)
    done = 0
    with torch.inference_mode():
        for chans, replicate in passes:
            for y0, kh, wy in ys:
                for x0, kw, wx in xs:
                    ph = math.ceil((kh + 2 * margin) / mult) * mult
                    pw = math.ceil((kw + 2 * margin) / mult) * mult
                    rows = _mirror(np.arange(y0 - margin, y0 - margin + ph), h)
                    cols = _mirror(np.arange(x0 - margin, x0 - margin + pw), w)
                    patch = image[rows[:, None], cols[None, :], chans].astype(np.float32, copy=False)
                    if replicate:
                        patch = np.repeat(patch, 3, axis=2)
                    res = _run_net(net, patch, sigma, dev)[margin : margin + kh, margin : margin + kw]
                    if replicate:
                        res = res.mean(axis=2, keepdims=True)
                    out[y0 : y0 + kh, x0 : x0 + kw, chans] += res * (wy[:, None, None] * wx[None, :, None])
                    done += 1
                    yield Progress(done, total, f"tile {done}/{total}", {"tile": (y0, x0, kh, kw)})
    return DenoiseResult(out, float(sigma), estimated, time.perf_counter() - start, total, str(dev))


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[y : y + size, x : x + size]


def blend_strength(original: np.ndarray, denoised: np.ndarray, strength: float) -> np.ndarray:
    """Mix the result with the original: 1 = fully denoised, 0 = original, values in between blend."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within [0, 1], got {strength}")
    if strength == 1.0:
        return denoised
    return (strength * denoised + (1.0 - strength) * original).astype(np.float32)


def denoise(
    image: np.ndarray,
    model: LoadedModel | DenoiserNet,
    *,
    sigma: float | None = None,
    strength: float = 1.0,
    tile: int | None = None,
    device: str | torch.device = "auto",
) -> DenoiseResult:
    """Denoise to completion (no progress events) and apply the strength blend."""
    res = drain(denoise_array(image, model, sigma=sigma, tile=tile, device=device))
    res.image = blend_strength(image if image.ndim == 3 else image[..., None], res.image, strength)
    return res
