"""Tiled denoising of images of any size, on the CPU or CUDA.

The image is cut into tiles that each carry a context margin (discarded after the pass) and overlap
their neighbours; overlaps are blended with complementary linear ramps whose weights sum to one, so
the output needs no weight buffer and peak memory is the image, the output and one tile. Out-of-image
context is a virtual mirror of the whole image, identical for one tile or many, so tiled output
matches untiled output wherever the margin covers the network's reach.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from denoiser.archs import DenoiserNet
from denoiser.blend import Blend, apply_blend
from denoiser.checkpoint import LoadedModel
from denoiser.device import resolve_device, resolve_precision
from denoiser.ensemble import TRANSFORMS, check_ensemble, one_pass
from denoiser.estimate import estimate_sigma
from denoiser.fidelity import keep_clipped as keep_clipped_regions
from denoiser.progress import Progress, ProgressGen, drain

DEFAULT_MARGIN = 32  # seams differ from an untiled pass by < 0.01/255 with the default UNet
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
    ensemble: int = 1  # network passes per tile (self-ensemble over flips and quarter turns)


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


def even_keep(length: int, max_keep: int, blend: int, align: int = 1) -> int:
    """The smallest kept tile size (a multiple of `align`, ≤ max_keep) that covers `length` with the
    fewest tiles: splitting evenly instead of filling tiles to the maximum wastes no compute on
    oversized overlaps (a 1152-px side takes two 592-px tiles rather than two 672-px ones)."""
    if length <= max_keep:
        return max_keep
    n = math.ceil((length - blend) / (max_keep - blend))
    return min(max_keep, math.ceil((length + (n - 1) * blend) / n / align) * align)


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


BYTES_PER_TILE_PIXEL = 600  # peak activations of the default UNet per input pixel, float32


def min_tile(margin: int = DEFAULT_MARGIN, blend: int = DEFAULT_BLEND) -> int:
    """The smallest tile edge the tiler works with: two margins around a core of at least MIN_TILE (and
    two blends). Smaller requests are raised to it by `denoise_array`; the CLI and batch refuse them."""
    return 2 * margin + max(MIN_TILE, 2 * blend)


def check_tile(tile: int | None) -> None:
    """ValueError naming the minimum when a requested tile edge is below it (None: chosen automatically)."""
    if tile is not None and tile < min_tile():
        raise ValueError(f"--tile must be at least {min_tile()} px (two {DEFAULT_MARGIN}-px margins around a "
                         f"{MIN_TILE}-px core), got {tile}")


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


def _autocast(device: torch.device, precision: str):  # noqa: ANN202 (a context manager)
    """Autocast for bf16/fp16, a no-op context for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def _tiles_per_batch(device: torch.device, tile: int) -> int:
    """Tiles run together: one on the CPU (cache-sized tiles), as many as a quarter of free memory holds on CUDA."""
    if device.type != "cuda":
        return 1
    free, _total = torch.cuda.mem_get_info(device)
    return max(1, min(8, int(free * 0.25 // (tile * tile * BYTES_PER_TILE_PIXEL))))


def _keep_on_device(device: torch.device, nbytes: int) -> bool:
    """Whether the image and its output are held on the GPU (one upload, one download) or stay in host memory."""
    if device.type != "cuda":
        return False
    free, _total = torch.cuda.mem_get_info(device)
    return nbytes < free * 0.3


def _source_scale(image: np.ndarray) -> float:
    """Factor that maps the array's values to [0, 1]: 8- and 16-bit arrays are scaled per tile, floats kept."""
    if image.dtype == np.uint8:
        return 1 / 255
    if image.dtype == np.uint16:
        return 1 / 65535
    if np.issubdtype(image.dtype, np.floating):
        return 1.0
    raise ValueError(f"unsupported image dtype {image.dtype} (use float in [0, 1], uint8 or uint16)")


def unit_float(image: np.ndarray) -> np.ndarray:
    """float32 pixels in [0, 1] from float, uint8 or uint16 pixels."""
    return image.astype(np.float32) * np.float32(_source_scale(image))


def sigma_ceiling(noise: dict) -> float:
    """The highest σ an estimate may give a model whose checkpoint's noise record is `noise`: the top of its
    training range, never below 75 (the bundled models' range; a fine-tune on a narrow range keeps its
    base's reach). A larger estimate, as on a dithered 1-bit scan whose texture reads as σ 200, is clamped
    there rather than fed to the network."""
    top = (noise.get("sigma_range") or [0.0, 75.0])[1]
    return max(75.0, float(top or 0.0))


AUTO_SIGMA_CROP = 1024  # edge of the central crop Auto's σ is estimated on


def auto_sigma(image: np.ndarray, model: LoadedModel | DenoiserNet) -> float:
    """The σ (0–255 scale) Auto gives `model` for `image` (H, W, C; float in [0, 1] or uint8/uint16): the
    blind estimate of the central `AUTO_SIGMA_CROP`² crop, clamped at the model's `sigma_ceiling`."""
    scale = _source_scale(image)
    return min(estimate_sigma(centre_crop(image, AUTO_SIGMA_CROP).astype(np.float32) * np.float32(scale)),
               sigma_ceiling(model.info.noise if isinstance(model, LoadedModel) else {}))


def denoise_array(
    image: np.ndarray,
    model: LoadedModel | DenoiserNet,
    *,
    sigma: float | None = None,
    tile: int | None = None,
    margin: int = DEFAULT_MARGIN,
    blend: int = DEFAULT_BLEND,
    device: str | torch.device = "auto",
    precision: str = "auto",
    tiles_per_batch: int | None = None,
    ensemble: int = 1,
    keep_clipped: bool = True,
    clip_to_input: bool = True,
) -> ProgressGen[DenoiseResult]:
    """Denoise an (H, W, C) image; yields one event per tile, returns the result as float32 in [0, 1].

    The image is float in [0, 1], or uint8/uint16 (converted tile by tile, so a huge 8-bit photo costs
    a quarter of the memory). `sigma` (0–255 scale) is the noise level given to the model; None
    estimates it from the image. Grey images through a colour model are replicated to three channels;
    colour images through a grey model are denoised channel by channel. Alpha is the caller's to keep.
    `ensemble` > 1 averages that many flipped/turned passes per tile (see denoiser.ensemble): better
    and that many times slower. `keep_clipped` keeps the input where a whole 5×5 neighbourhood of a
    channel is clipped to black or white (see denoiser.fidelity): blown highlights stay blown.
    `clip_to_input` keeps the result within the input's range: [0, 1] for 8/16-bit images, and for a float
    image its own range (at least [0, 1]), so a float TIFF in 0…1 does not come back in −0.2…1.06.
    On CUDA the image is uploaded once, tiles are cut, batched and blended on the GPU, and the result
    comes back once; on the CPU everything stays in host memory, one cache-sized tile at a time.
    """
    start = time.perf_counter()
    net = model.net if isinstance(model, LoadedModel) else model
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    check_ensemble(ensemble)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"expected an (H, W, C) image, got shape {image.shape}")
    scale = _source_scale(image)
    estimated = sigma is None
    if sigma is None:
        sigma = auto_sigma(image, model)
    h, w, c = image.shape
    net = net.to(dev).eval().to(memory_format=torch.channels_last)
    mult = max(1, net.size_multiple)
    if tile is None:
        tile = choose_tile_size(dev, c)
    tile = max(tile, min_tile(margin, blend))
    margin = math.ceil(margin / mult) * mult
    keep = (tile - 2 * margin) // mult * mult
    ys = _axis_tiles(h, even_keep(h, keep, blend, mult), blend, mult)
    xs = _axis_tiles(w, even_keep(w, keep, blend, mult), blend, mult)
    if net.in_channels == c:
        passes = [(slice(0, c), False)]
    elif net.in_channels == 3 and c == 1:
        passes = [(slice(0, 1), True)]
    elif net.in_channels == 1:
        passes = [(slice(i, i + 1), False) for i in range(c)]
    else:
        raise ValueError(f"a {net.in_channels}-channel model cannot denoise a {c}-channel image")
    resident = _keep_on_device(dev, image.nbytes + h * w * c * 4)
    store = dev if resident else torch.device("cpu")
    src = torch.from_numpy(np.ascontiguousarray(image))
    if resident:
        src = src.pin_memory().to(dev, non_blocking=True)
    out = torch.zeros((h, w, c), dtype=torch.float32, device=store)
    # Tiles grouped by padded shape (edge tiles are smaller), in image order, then cut into batches.
    groups: dict[tuple[int, int], list[tuple[int, int, np.ndarray, int, int, np.ndarray]]] = {}
    for y0, kh, wy in ys:
        for x0, kw, wx in xs:
            shape = (math.ceil((kh + 2 * margin) / mult) * mult, math.ceil((kw + 2 * margin) / mult) * mult)
            groups.setdefault(shape, []).append((y0, kh, wy, x0, kw, wx))
    per_batch = tiles_per_batch or _tiles_per_batch(dev, tile)
    batches = [(shape, g[i : i + per_batch]) for shape, g in groups.items() for i in range(0, len(g), per_batch)]
    total = len(ys) * len(xs) * len(passes)
    s = torch.full((1,), sigma / 255.0, device=dev)
    done = 0
    with torch.inference_mode():
        for chans, replicate in passes:
            for shape, batch in batches:
                x = torch.stack([_cut(src, y0 - margin, x0 - margin, shape, chans) for y0, _kh, _wy, x0, _kw, _wx in batch])
                x = x.to(dev, non_blocking=True).permute(0, 3, 1, 2).float()
                if scale != 1.0:
                    x = x * scale
                x_in = x
                if replicate:
                    x = x.expand(-1, 3, -1, -1)
                x = x.contiguous(memory_format=torch.channels_last)
                y = None
                for k, (turns, mirror) in enumerate(TRANSFORMS[:ensemble]):
                    with _autocast(dev, prec):
                        yk = one_pass(net, x, s.expand(x.shape[0]), turns, mirror).float()
                    y = yk if y is None else y.add_(yk)
                    if k + 1 < ensemble:  # a pass is a step too: cancel and progress stay responsive
                        first, last = done + 1, done + len(batch)
                        tiles = f"tile {first}" if first == last else f"tiles {first}–{last}"
                        yield Progress(done + (k + 1) / ensemble, total,  # within the batch's first tile: monotone
                                       f"{tiles}/{total}, pass {k + 2}/{ensemble}")
                if ensemble > 1:
                    y = y.div_(ensemble)
                if replicate:
                    y = y.mean(dim=1, keepdim=True)
                if keep_clipped:
                    y = keep_clipped_regions(x_in, y)
                y = y.permute(0, 2, 3, 1).to(store)
                for k, (y0, kh, wy, x0, kw, wx) in enumerate(batch):
                    weight = torch.from_numpy(wy[:, None, None] * wx[None, :, None]).to(store)
                    out[y0 : y0 + kh, x0 : x0 + kw, chans] += y[k, margin : margin + kh, margin : margin + kw] * weight
                    done += 1
                    yield Progress(done, total, f"tile {done}/{total}", {"tile": (y0, x0, kh, kw)})
    result = out.cpu().numpy() if resident else out.numpy()
    if clip_to_input:
        lo, hi = 0.0, 1.0
        if np.issubdtype(image.dtype, np.floating):
            lo, hi = min(0.0, float(np.nanmin(image))), max(1.0, float(np.nanmax(image)))
        np.clip(result, lo, hi, out=result)
    return DenoiseResult(result, float(sigma), estimated, time.perf_counter() - start, total, str(dev), ensemble)


def _cut(src: torch.Tensor, top: int, left: int, shape: tuple[int, int], chans: slice) -> torch.Tensor:
    """The (h, w) = `shape` window at (top, left), margins included; outside the image it mirrors the whole image."""
    h, w = src.shape[:2]
    rows = torch.from_numpy(_mirror(np.arange(top, top + shape[0]), h)).to(src.device)
    cols = torch.from_numpy(_mirror(np.arange(left, left + shape[1]), w)).to(src.device)
    return src[:, :, chans].index_select(0, rows).index_select(1, cols)


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central `size`² part of an (H, W[, C]) image, or all of it along a side that is smaller."""
    h, w = image.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[y : y + size, x : x + size]


def blend_strength(original: np.ndarray, denoised: np.ndarray, strength: float) -> np.ndarray:
    """Mix the result with the original: 1 = fully denoised, 0 = original, values in between blend."""
    return apply_blend(original, denoised, Blend(strength=strength))


def denoise(
    image: np.ndarray,
    model: LoadedModel | DenoiserNet,
    *,
    sigma: float | None = None,
    strength: float = 1.0,
    luma: float = 1.0,
    chroma: float = 1.0,
    finish: Blend | None = None,
    tile: int | None = None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    ensemble: int = 1,
    keep_clipped: bool = True,
) -> DenoiseResult:
    """Denoise to completion (no progress events) and apply the blend: `strength` overall, `luma` and
    `chroma` the shares of the luminance and colour change kept, or a whole `finish` (detail and grain
    too; see `denoiser.blend`), which then replaces the three."""
    res = drain(denoise_array(image, model, sigma=sigma, tile=tile, device=device, precision=precision, ensemble=ensemble,
                              keep_clipped=keep_clipped))
    blend = finish or Blend(strength=strength, luma=luma, chroma=chroma)
    if not blend.is_identity:
        res.image = apply_blend(unit_float(image if image.ndim == 3 else image[..., None]), res.image, blend)
    return res
