"""How noisy a photo is, as the model reads it: the strength of the noise it removes from the centre.

The blind σ a model is told measures white noise in flat areas; real camera noise, correlated by
demosaicing and shaped by in-camera noise reduction and JPEG, reads as a fraction of its strength there
(σ ≈ 0.8 on a visibly noisy ISO 3200 JPEG). Before the whole photo is denoised, the app and
`denoiser estimate --model` denoise a central crop with Auto's σ and report the RMS of what came out:
a level in 8-bit levels that follows what a person sees.
"""

from __future__ import annotations

import numpy as np
import torch

from denoiser.checkpoint import LoadedModel
from denoiser.inference import auto_sigma, centre_crop, denoise, unit_float
from denoiser.metrics import removed_noise

LEVEL_CROP = 512  # edge of the central crop read (about 0.2 s on a laptop CPU for `photo`)


def model_noise_level(image: np.ndarray, model: LoadedModel, *, crop: int = LEVEL_CROP,
                      device: str | torch.device = "auto", precision: str = "auto") -> float:
    """RMS (0–255 scale) of the noise `model` removes from the central `crop`² of `image` when told the σ
    Auto gives it for the whole image. `image` is (H, W[, C]), float in [0, 1] or uint8/uint16; the
    blend, detail and grain controls play no part (this is the network's reading of the photo)."""
    if crop < 1:
        raise ValueError(f"crop must be at least 1 px, got {crop}")
    full = image if image.ndim == 3 else image[..., None]
    part = np.ascontiguousarray(centre_crop(full, crop))
    res = denoise(part, model, sigma=auto_sigma(full, model), device=device, precision=precision)
    return removed_noise(unit_float(part), res.image)  # the result has the input's channels
