"""Quality evaluation with the BENCHMARK.md protocol: seeded Gaussian noise, PSNR/SSIM on 8-bit outputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from denoiser.data import find_images
from denoiser.errors import DenoiserError
from denoiser.imageio import load_image
from denoiser.metrics import psnr, ssim
from denoiser.progress import Progress, ProgressGen

_EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "CMYK", "YCbCr"})


def load_clean(path: Path, gray: bool) -> np.ndarray:
    """A clean image as float64 on the 0–255 scale, (H, W, 1) for gray sets and (H, W, 3) for colour.

    8-bit files decode exactly as the published protocol does (PIL's 'L' or 'RGB'); 16-bit and float files
    are scaled to 0–255 rather than clipped. An unreadable file raises ImageReadError with the reason."""
    try:
        with PILImage.open(path) as im:
            if im.mode in _EIGHT_BIT_MODES:
                a = np.asarray(im.convert("L" if gray else "RGB"), dtype=np.float64)
                return a[..., None] if gray else a
    except (OSError, ValueError, SyntaxError):
        pass  # load_image below says what is wrong with the file
    a = load_image(path).data.astype(np.float64) * 255.0
    if gray and a.shape[2] == 3:
        return (a @ np.array([0.299, 0.587, 0.114]))[..., None]
    return np.repeat(a, 3, axis=2) if not gray and a.shape[2] == 1 else a


def noisy_version(clean: np.ndarray, sigma: float, index: int, clip: bool = False) -> np.ndarray:
    """y = x + σ·n with n from default_rng(index) (the published protocol); `clip` clips and rounds to 8 bits."""
    y = clean + sigma * np.random.default_rng(index).standard_normal(clean.shape)
    return np.round(np.clip(y, 0, 255)) if clip else y


def to_8bit(x: np.ndarray) -> np.ndarray:
    """round(clip(x, 0, 255)) as BENCHMARK.md defines the output."""
    return np.round(np.clip(x, 0, 255))


@dataclass
class EvalRow:
    """Mean scores of one set at one σ."""

    sigma: float
    noisy_psnr: float
    noisy_ssim: float
    psnr: float
    ssim: float
    images: int
    per_image: list[float] = field(default_factory=list)


Denoiser = Callable[[np.ndarray, float | None], np.ndarray]


def evaluate_set(
    folder: str | Path,
    denoiser: Denoiser,
    sigmas: Sequence[float],
    *,
    gray: bool,
    blind: bool = False,
    clip: bool = False,
    limit: int | None = None,
) -> ProgressGen[list[EvalRow]]:
    """Score `denoiser(noisy_0_1, sigma_or_None) -> restored_0_1` on a folder of clean images.

    An unreadable image is left out of every σ's mean, with a progress event that names it and says why
    (data "skipped"); the noise of the others keeps its seed (the image's index in the folder)."""
    files = sorted(find_images([folder], recursive=False), key=lambda p: p.name)[:limit]
    rows = []
    total = len(files) * len(sigmas)
    done = 0
    unreadable: set[Path] = set()
    for sigma in sigmas:
        np_, ns, mp, ms = [], [], [], []
        for i, f in enumerate(files):
            if f in unreadable:
                done += 1
                continue
            try:
                clean = load_clean(f, gray)
            except DenoiserError as exc:
                unreadable.add(f)
                done += 1
                yield Progress(done, total, f"skipped {f.name}: {exc}", {"skipped": str(f), "reason": str(exc)})
                continue
            noisy = noisy_version(clean, sigma, i, clip)
            out = denoiser((noisy / 255.0).astype(np.float32), None if blind else sigma) * 255.0
            np_.append(psnr(clean, to_8bit(noisy)))
            ns.append(ssim(clean, to_8bit(noisy)))
            mp.append(psnr(clean, to_8bit(out)))
            ms.append(ssim(clean, to_8bit(out)))
            done += 1
            yield Progress(done, total, f"σ={sigma:g} {f.name}: {mp[-1]:.2f} dB")
        if not mp:
            raise DenoiserError(f"no readable images in {folder}")
        rows.append(EvalRow(sigma, float(np.mean(np_)), float(np.mean(ns)), float(np.mean(mp)), float(np.mean(ms)), len(mp), mp))
    return rows
