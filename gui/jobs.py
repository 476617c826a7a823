"""The GUI's adapter to the engine: the work its tasks run, as progress generators (no widgets here)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoiser.checkpoint import LoadedModel, load_checkpoint
from denoiser.device import resolve_device
from denoiser.errors import ImageReadError
from denoiser.estimate import estimate_sigma
from denoiser.imageio import Image, load_image, save_image
from denoiser.inference import AUTO_SIGMA_CROP, DenoiseResult, centre_crop, denoise_array
from denoiser.metrics import psnr, ssim
from denoiser.noise import add_noise
from denoiser.noise_level import model_noise_level
from denoiser.progress import Progress, ProgressGen
from denoiser.raw import (
    RawMosaic,
    RawResult,
    at_strength,
    denoise_mosaic,
    develop,
    dng_bytes,
    read_raw,
    write_dng,
)

PREVIEW_MARGIN = 32

_models: dict[tuple[Path, float], LoadedModel] = {}
_models_lock = threading.Lock()


def cached_model(path: Path, source: str = "user") -> LoadedModel:
    """Load a checkpoint once per file version (path and modification time)."""
    key = (Path(path).resolve(), Path(path).stat().st_mtime)
    with _models_lock:
        if key not in _models:
            _models.clear()  # keep one model in memory
            _models[key] = load_checkpoint(path, source)
        return _models[key]


def load_work(path: Path) -> ProgressGen[Image]:
    """Decode an image file."""
    yield Progress(0, 0, f"reading {Path(path).name}")
    return load_image(path)


def noise_work(clean: np.ndarray, name: str, seed: int, params: dict[str, float]) -> ProgressGen[np.ndarray]:
    """Seeded noise on the clean image, clipped to [0, 1] like a saved photo."""
    yield Progress(0, 0, name)
    return add_noise(clean, name, seed=seed, clip=True, **params)


def denoise_work(source: np.ndarray, model_path: Path, model_source: str, sigma: float | None,
                 tile: int | None, device: str, ensemble: int = 1) -> ProgressGen[DenoiseResult]:
    """Load the model (cached) and denoise the whole image tile by tile (`ensemble` passes per tile)."""
    yield Progress(0, 0, "loading model")
    model = cached_model(model_path, model_source)
    return (yield from denoise_array(source, model, sigma=sigma, tile=tile, device=device, ensemble=ensemble))


@dataclass
class PreviewResult:
    """A denoised region: its rectangle (x, y, width, height) in the image and its pixels."""

    region: tuple[int, int, int, int]
    pixels: np.ndarray
    result: DenoiseResult


def preview_work(source: np.ndarray, region: tuple[int, int, int, int], model_path: Path, model_source: str,
                 sigma: float | None, tile: int | None, device: str,
                 margin: int = PREVIEW_MARGIN, ensemble: int = 1) -> ProgressGen[PreviewResult]:
    """Denoise only `region` (plus a context margin, cut off afterwards) through the same tiled path."""
    x, y, w, h = region
    height, width = source.shape[:2]
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
    crop = np.ascontiguousarray(source[y0:y1, x0:x1])
    res = yield from denoise_work(crop, model_path, model_source, sigma, tile, device, ensemble)
    pixels = res.image[y - y0 : y - y0 + h, x - x0 : x - x0 + w]
    return PreviewResult(region, pixels, res)


def paste_region(base: np.ndarray, preview: PreviewResult) -> np.ndarray:
    """A copy of `base` with the preview's pixels pasted in."""
    out = base.copy()
    x, y, w, h = preview.region
    out[y : y + h, x : x + w] = preview.pixels
    return out


@dataclass
class RawDenoised:
    """A camera RAW denoised in the raw domain: the denoised mosaic and its develop (what the views show)."""

    raw: RawResult
    developed: np.ndarray
    seconds: float


def raw_denoise_work(path: Path, model_path: Path, model_source: str, sigma: float | None, device: str,
                     fallback: Callable[[], ProgressGen[DenoiseResult]]) -> ProgressGen[RawDenoised | DenoiseResult]:
    """Read the file's Bayer mosaic, denoise it with the raw model and develop the result as the original
    was developed when it opened (through the same DNG), so the two compare pixel for pixel. A sensor
    that is not Bayer (X-Trans, Foveon) has no raw model: its develop is denoised by `fallback` instead."""
    import time

    start = time.perf_counter()
    yield Progress(0, 0, "reading the raw mosaic")
    try:
        mosaic = read_raw(path)
    except ImageReadError as exc:
        if "only Bayer sensors" not in str(exc):
            raise
        return (yield from fallback())
    yield Progress(0, 0, "loading the raw model")
    model = cached_model(model_path, model_source)
    res = yield from denoise_mosaic(mosaic, model.net, sigma=sigma, device=resolve_device(device))
    yield Progress(0, 0, "developing")
    developed = develop(dng_bytes(res.mosaic)).astype(np.float32) / 65535.0
    return RawDenoised(res, developed, time.perf_counter() - start)


def save_dng_work(source: Path, denoised: RawMosaic, strength: float, path: Path) -> ProgressGen[Path]:
    """Write the raw-denoised mosaic (at `strength`) as a DNG, atomically."""
    yield Progress(0, 0, f"writing {Path(path).name}")
    mosaic = at_strength(read_raw(source), denoised, strength) if strength < 1.0 else denoised
    return write_dng(mosaic, path, overwrite=True)


def save_work(image: Image, data: np.ndarray, path: Path, bit_depth: int | None, quality: int) -> ProgressGen[Path]:
    """Write `data` with the original's metadata (EXIF, ICC, alpha) atomically."""
    yield Progress(0, 0, f"writing {Path(path).name}")
    return save_image(image.with_data(data), path, bit_depth=bit_depth, quality=quality, overwrite=True)


def estimate_noise(data: np.ndarray) -> float:
    """σ (0–255) of the image's noise, from its centre (as the engine's Auto does)."""
    return estimate_sigma(centre_crop(data, AUTO_SIGMA_CROP))


def model_noise(data: np.ndarray, model_path: Path, model_source: str, device: str) -> float:
    """The noise level (RMS, 0–255) the model (cached) removes from the image's centre, told Auto's σ."""
    return model_noise_level(data, cached_model(model_path, model_source), device=device)


def quality(reference: np.ndarray, test: np.ndarray) -> tuple[float, float]:
    """(PSNR dB, SSIM) of `test` against `reference`, on the 0–255 scale."""
    ref = np.clip(reference, 0, 1) * 255.0
    tst = np.clip(test, 0, 1) * 255.0
    return psnr(ref, tst), ssim(ref, tst)


def quality_pair(reference: np.ndarray, noisy: np.ndarray | None,
                 result: np.ndarray | None) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Quality of the noisy and the denoised image against the clean reference."""
    return (quality(reference, noisy) if noisy is not None else None,
            quality(reference, result) if result is not None else None)
