"""The camera-RAW table of the quality bench: raw-domain denoising against denoising the develop.

Kodak24 photos are unprocessed to RGGB mosaics (`denoiser.raw.mosaic_from_image`), shot + read noise is added
at three camera levels, and every mosaic goes through one develop (LibRaw, via the DNG our writer makes).
Each method is scored on the develop against the clean mosaic's develop (PSNR dB on 16 bits): the noisy
develop itself, the `raw` model on the mosaic (what `denoiser denoise photo.NEF` does), and the `photo` model
blind on the noisy develop (what a user would do with a camera's developed image)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from denoiser.checkpoint import LoadedModel
from denoiser.inference import denoise
from denoiser.metrics import psnr
from denoiser.noise import camera_levels
from denoiser.progress import drain
from denoiser.raw import denoise_mosaic, develop, dng_bytes, mosaic_from_image

RAW_LEVELS = (0.5, 0.75, 1.0)  # camera noise levels (0 base ISO … 1 very high ISO)
RAW_SET = "Kodak24"


def _developed(mosaic) -> np.ndarray:
    return develop(dng_bytes(mosaic)).astype(np.float64) / 65535.0


def raw_table(data: Path, raw_model: LoadedModel, photo_model: LoadedModel, limit: int, precision: str = "fp32") -> dict:
    """{"images": n, "rows": {"level L": {"noisy develop": psnr, "raw (ours)": psnr, "photo on the develop": psnr}}}."""
    files = sorted((data / "test" / RAW_SET).glob("*.png"))[:limit]
    rows: dict = {}
    for level in RAW_LEVELS:
        shot, read = camera_levels(level)
        scores: dict[str, list[float]] = {}
        for i, f in enumerate(files):
            rgb = np.asarray(PILImage.open(f).convert("RGB"), np.float32) / 255.0
            clean = _developed(mosaic_from_image(rgb))
            noisy_mosaic = mosaic_from_image(rgb, shot=shot, read=read, seed=i)
            noisy = _developed(noisy_mosaic)
            raw_out = _developed(drain(denoise_mosaic(noisy_mosaic, raw_model.net)).mosaic)
            photo_out = denoise(noisy.astype(np.float32), photo_model, precision=precision).image
            for name, out in (("noisy develop", noisy), ("raw (ours)", raw_out), ("photo on the develop (ours)", photo_out)):
                scores.setdefault(name, []).append(psnr(clean, np.clip(out, 0, 1), 1.0))
        rows[f"level {level:g}"] = {k: float(np.mean(v)) for k, v in scores.items()}
        print(f"raw level {level:g}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[f"level {level:g}"].items()),
              file=sys.stderr)
    return {"set": RAW_SET, "images": len(files), "rows": rows}


def raw_markdown(table: dict) -> list[str]:
    """The RAW table: one row per camera noise level."""
    methods = list(next(iter(table["rows"].values())))
    lines = ["", f"Camera RAW (PSNR dB of the LibRaw develop against the clean mosaic's develop; the first "
             f"{table['images']} {table['set']} photos unprocessed to RGGB mosaics with shot + read noise at camera "
             "level L, 0 base ISO … 1 very high ISO; the `raw` model denoises the mosaic, `photo` runs blind on the "
             "noisy develop):", "", "| noise | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for row, d in table["rows"].items():
        lines.append(f"| {row} | " + " | ".join(f"{d[m]:.2f}" for m in methods) + " |")
    return lines
