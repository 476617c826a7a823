"""Fidelity: clean photos come out as they went in; clipped regions stay clipped; the estimate ignores clipping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.archs import build_arch
from denoiser.checkpoint import load_model
from denoiser.estimate import estimate_sigma
from denoiser.fidelity import clipped_interior, keep_clipped, measure_fidelity, overexpose
from denoiser.inference import denoise, denoise_array
from denoiser.progress import drain
from denoiser.resources import bundled_models_dir
from tests.helpers import shared_data


def saturated_photo(size: int = 256) -> np.ndarray:
    """kodim23 brightened ×1.5 and clipped (about 12 % of its values at 255), a centre crop, 0–255."""
    x = np.asarray(PILImage.open(shared_data("test", "Kodak24") / "kodim23.png").convert("RGB"), dtype=np.float64)
    y0, x0 = (x.shape[0] - size) // 2, (x.shape[1] - size) // 2
    return overexpose(x[y0 : y0 + size, x0 : x0 + size])


def test_clipped_interior_needs_the_whole_window_clipped() -> None:
    x = torch.full((1, 1, 12, 12), 0.5)
    x[..., 2:9, 2:9] = 1.0  # a 7×7 white block: only its central 3×3 has a full 5×5 window inside
    x[..., 0, 11] = 0.0  # one black pixel is no clipped region
    m = clipped_interior(x)[0, 0]
    assert m.sum() == 9 and m[3:8, 3:8].sum() == 9 and m[4:7, 4:7].all()
    y = keep_clipped(x, torch.zeros_like(x))
    assert torch.equal(y[0, 0][m], torch.ones(9)) and y[0, 0][~m].abs().max() == 0


def test_denoising_keeps_clipped_regions_and_tiling_agrees(rng) -> None:
    torch.manual_seed(0)
    net = build_arch("unet", channels=[8, 16, 32])
    img = rng.random((150, 190, 3)).astype(np.float32) * 0.8
    img[20:90, 30:120, 1] = 1.0  # blown green channel
    img[100:140, 10:60] = 0.0  # crushed shadow
    kept = drain(denoise_array(img, net, sigma=10, tile=4096, precision="fp32"))
    free = drain(denoise_array(img, net, sigma=10, tile=4096, precision="fp32", keep_clipped=False))
    tiled = drain(denoise_array(img, net, sigma=10, tile=128, precision="fp32"))
    assert np.all(kept.image[22:88, 32:118, 1] == 1.0) and np.all(kept.image[102:138, 12:58] == 0.0)
    assert np.abs(free.image[22:88, 32:118, 1] - 1.0).max() > 1e-3  # the random network alone moves them
    np.testing.assert_allclose(tiled.image, kept.image, atol=1e-4)


@pytest.mark.parametrize("sigma", [10.0, 25.0, 50.0])
def test_estimate_of_a_clipped_photo_matches_the_unclipped_one(sigma: float) -> None:
    x = saturated_photo(384)
    noisy = x + sigma * np.random.default_rng(0).standard_normal(x.shape)
    unclipped = estimate_sigma(noisy / 255.0)
    clipped = estimate_sigma(np.clip(np.round(noisy), 0, 255) / 255.0)
    assert clipped == pytest.approx(unclipped, rel=0.04)  # was 17 % low before clipped pixels were left out
    assert clipped == pytest.approx(sigma, rel=0.05)


def test_estimate_of_a_fully_clipped_image_is_still_a_number() -> None:
    white = np.ones((40, 40, 3), np.float32)
    assert estimate_sigma(white) == 0.0
    half = np.ones((40, 40, 3), np.float32)
    half[:, :1] = np.random.default_rng(0).random((40, 1, 3))  # 2 % unclipped: measured as a whole
    assert np.isfinite(estimate_sigma(half))


@pytest.mark.parametrize("name", [
    "photo",
    "gaussian-color",
    "gaussian-gray",
])
def test_bundled_models_leave_a_clean_saturated_photo_alone(name: str) -> None:
    model = load_model(bundled_models_dir() / f"{name}.pt")
    x = saturated_photo()
    if model.net.in_channels == 1:
        x = np.round(x @ np.array([0.299, 0.587, 0.114]))[..., None]
    fid = measure_fidelity([x], lambda a: denoise(a, model, precision="fp32").image)
    assert max(abs(s) for s in fid.mean_shift) <= 0.25, fid
    assert fid.psnr_vs_input >= 40.0, fid
    assert fid.saturated_interior_kept == 1.0 and fid.saturated_kept >= 0.9, fid


def test_clipped_interior_matches_a_min_filter_on_random_tiles(rng) -> None:
    import torch.nn.functional as F

    x = torch.from_numpy(rng.random((2, 3, 61, 47)).astype(np.float32))
    x[x > 0.25] = 1.0  # 85 % clipped: some full 5×5 windows
    x[x < 0.1] = 0.0
    at_bound = ((x - 1).abs() < 1e-6) | (x.abs() < 1e-6)
    expected = -F.max_pool2d(-at_bound.float(), 5, stride=1, padding=2) > 0.5
    assert torch.equal(clipped_interior(x), expected) and expected.any()
