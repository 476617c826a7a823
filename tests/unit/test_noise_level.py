"""The noise level a model reads (denoiser.noise_level): the RMS of what it removes from the centre."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from denoiser.checkpoint import load_model
from denoiser.estimate import estimate_sigma
from denoiser.inference import auto_sigma, denoise
from denoiser.metrics import removed_noise
from denoiser.noise_level import model_noise_level


def _smooth(size: int = 192) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([0.5 + 0.3 * np.sin(xx / 23.0) * np.cos(yy / 31.0), 0.45 + 0.25 * np.cos(xx / 17.0),
                     0.4 + 0.2 * np.sin(yy / 19.0)], -1).astype(np.float32)


def _correlated_noise(shape: tuple[int, ...], rms: float, seed: int = 0) -> np.ndarray:
    """Noise of `rms` (0–255) smoothed over about a pixel per channel, as demosaicing and in-camera processing leave it."""
    n = gaussian_filter(np.random.default_rng(seed).normal(0, 1, shape), (1.0, 1.0, 0))
    return (n / n.std() * rms / 255.0).astype(np.float32)


def test_white_noise_reads_as_its_strength_and_a_clean_image_as_almost_none() -> None:
    model = load_model("gaussian-color")
    clean = _smooth()
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 10 / 255, clean.shape), 0, 1).astype(np.float32)
    assert 8.0 < model_noise_level(noisy, model, device="cpu") < 10.5
    assert model_noise_level(clean, model, device="cpu") < 1.0


def test_camera_like_noise_reads_near_its_strength_where_the_blind_sigma_reads_low() -> None:
    model = load_model("photo")
    noisy = np.clip(_smooth() + _correlated_noise((192, 192, 3), 10.0), 0, 1)
    sigma = estimate_sigma(noisy)
    level = model_noise_level(noisy, model, device="cpu")
    assert sigma < 2.0  # the blind σ sees a fifth of it
    assert level > 3 * sigma and 5.0 < level < 11.0


def test_the_level_is_what_denoising_the_centre_with_autos_sigma_removes() -> None:
    model = load_model("gaussian-color")
    rng = np.random.default_rng(2)
    image = np.clip(np.tile(_smooth(160), (2, 3, 1)) + rng.normal(0, 12 / 255, (320, 480, 3)), 0, 1).astype(np.float32)
    centre = image[160 - 64 : 160 + 64, 240 - 64 : 240 + 64]
    res = denoise(np.ascontiguousarray(centre), model, sigma=auto_sigma(image, model), device="cpu")
    assert model_noise_level(image, model, crop=128, device="cpu") == pytest.approx(removed_noise(centre, res.image))
    eight_bit = (image * 255).round().astype(np.uint8)  # 8-bit arrays read as their float version
    assert model_noise_level(eight_bit, model, crop=128, device="cpu") == pytest.approx(
        model_noise_level(eight_bit.astype(np.float32) / 255, model, crop=128, device="cpu"), abs=0.05)


def test_gray_tiny_and_bad_crops() -> None:
    model = load_model("gaussian-color")
    gray = np.clip(_smooth()[..., 0] + np.random.default_rng(3).normal(0, 10 / 255, (192, 192)), 0, 1)
    assert model_noise_level(gray.astype(np.float32), model, device="cpu") > 2.0  # grey through a colour model
    assert model_noise_level(np.full((1, 1, 3), 0.5, np.float32), model, device="cpu") >= 0.0
    with pytest.raises(ValueError, match="crop"):
        model_noise_level(gray, model, crop=0)
