import math

import numpy as np
import pytest

from denoiser.estimate import ESTIMATORS, estimate_sigma
from denoiser.metrics import noise_map, psnr, ssim


def test_psnr_known_values():
    a = np.zeros((10, 10))
    assert psnr(a, a + 1) == pytest.approx(20 * math.log10(255))
    assert psnr(a, a + 255) == pytest.approx(0)
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError):
        psnr(a, np.zeros((9, 10)))


def test_ssim_matches_scikit_image_reference(rng):
    skm = pytest.importorskip("skimage.metrics")
    a = rng.random((40, 50, 3)) * 255
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255)
    ref = skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    data_range=255, channel_axis=2)
    assert ssim(a, b) == pytest.approx(ref, abs=1e-9)
    assert ssim(a, a) == pytest.approx(1.0)


def test_ssim_known_value_constant_images():
    # constant images: SSIM reduces to the luminance term (2·μx·μy + C1)/(μx² + μy² + C1)
    c1 = (0.01 * 255) ** 2
    x, y = np.full((20, 20), 100.0), np.full((20, 20), 120.0)
    assert ssim(x, y) == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1))


@pytest.mark.parametrize("method", list(ESTIMATORS))
@pytest.mark.parametrize("sigma", [10, 30])
def test_estimators_recover_sigma_on_a_smooth_image(method, sigma, rng):
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    clean = (0.3 + 0.4 * xx * yy)[..., None]
    noisy = clean + sigma / 255 * rng.standard_normal(clean.shape)
    assert estimate_sigma(noisy, method) == pytest.approx(sigma, rel=0.1)


def test_estimate_handles_tiny_and_colour_images(rng):
    assert estimate_sigma(np.zeros((1, 1, 3))) == 0.0
    colour = 0.5 + 20 / 255 * rng.standard_normal((64, 64, 3))
    assert estimate_sigma(colour) == pytest.approx(20, rel=0.15)
    with pytest.raises(ValueError):
        estimate_sigma(colour, "magic")


def test_noise_map_reads_each_regions_removed_noise(rng):
    clean = np.full((70, 100, 3), 0.5, np.float32)
    noisy = clean.copy()
    noisy[:, 50:] += rng.normal(0, 20 / 255, (70, 50, 3)).astype(np.float32)  # noise on the right half only
    levels = noise_map(noisy, clean, block=25)
    assert levels.shape == (3, 4)  # the last row of regions is 20 px tall
    assert np.all(levels[:, :2] == 0) and np.allclose(levels[:, 2:], 20, rtol=0.15)
    assert noise_map(noisy[..., 0], clean[..., 0], block=200).shape == (1, 1)
    with pytest.raises(ValueError, match="block"):
        noise_map(noisy, clean, block=0)
