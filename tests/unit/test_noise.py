import numpy as np
import pytest
import torch

from denoiser.noise import NOISE_MODELS, add_noise, apply_noise, camera_levels, get_noise_model, quantize_8bit


def test_every_model_is_seeded_and_changes_the_image():
    img = np.full((32, 32, 3), 0.5, dtype=np.float32)
    for name in NOISE_MODELS:
        a = add_noise(img, name, seed=3)
        b = add_noise(img, name, seed=3)
        c = add_noise(img, name, seed=4)
        assert a.shape == img.shape and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c), name
        assert not np.array_equal(a, img), name


def test_gaussian_sigma_is_on_the_255_scale():
    x = torch.full((1, 1, 256, 256), 0.5)
    y = apply_noise(x, "gaussian", torch.Generator().manual_seed(0), sigma=25)
    assert (y - x).std().item() * 255 == pytest.approx(25, rel=0.02)
    assert abs((y - x).mean().item()) < 0.002


def test_poisson_variance_follows_the_signal():
    g = torch.Generator().manual_seed(0)
    dark = apply_noise(torch.full((1, 1, 200, 200), 0.1), "poisson", g, peak=100)
    bright = apply_noise(torch.full((1, 1, 200, 200), 0.9), "poisson", g, peak=100)
    assert dark.var().item() == pytest.approx(0.1 / 100, rel=0.1)
    assert bright.var().item() == pytest.approx(0.9 / 100, rel=0.1)


def test_salt_pepper_hits_the_requested_fraction_with_black_and_white():
    x = torch.full((1, 3, 200, 200), 0.5)
    y = apply_noise(x, "salt-pepper", torch.Generator().manual_seed(0), amount=0.1)
    hit = (y != 0.5).any(dim=1)
    assert hit.float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert set(torch.unique(y[:, :, hit[0]]).tolist()) == {0.0, 1.0}


def test_speckle_is_multiplicative():
    g = torch.Generator().manual_seed(0)
    y0 = apply_noise(torch.zeros(1, 1, 64, 64), "speckle", g, sigma=50)
    assert torch.count_nonzero(y0) == 0


def test_camera_noise_is_signal_dependent_and_spatially_correlated():
    g = torch.Generator().manual_seed(0)
    dark = torch.full((1, 3, 128, 128), 0.15)
    bright = torch.full((1, 3, 128, 128), 0.6)
    nd = apply_noise(dark, "camera", g, level=0.8) - dark
    nb = apply_noise(bright, "camera", g, level=0.8) - bright
    assert nd.std() > 0.01 and nb.std() > 0.01
    assert not torch.allclose(nd.std(), nb.std(), rtol=0.1)
    # demosaicing correlates neighbouring pixels; without it the noise is white
    r = nd[0, 1]
    corr = torch.corrcoef(torch.stack([r[:, :-1].flatten(), r[:, 1:].flatten()]))[0, 1]
    assert corr > 0.2
    white = apply_noise(dark, "camera", g, level=0.8, demosaic=0)[0, 1] - 0.15
    corr_white = torch.corrcoef(torch.stack([white[:, :-1].flatten(), white[:, 1:].flatten()]))[0, 1]
    assert abs(corr_white) < 0.1
    shot_lo, read_lo = camera_levels(0.0)
    shot_hi, read_hi = camera_levels(1.0)
    assert shot_hi > shot_lo and read_hi > read_lo


def test_camera_jpeg_and_gray():
    g = torch.Generator().manual_seed(0)
    y = apply_noise(torch.rand(2, 3, 64, 64), "camera", g, level=0.3, jpeg_quality=80)
    assert y.shape == (2, 3, 64, 64) and y.min() >= 0 and y.max() <= 1
    y1 = apply_noise(torch.rand(1, 1, 64, 64), "camera", g, level=0.3)
    assert y1.shape == (1, 1, 64, 64)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (2, 2)])
def test_camera_noise_on_images_too_small_for_a_bayer_quad(shape):
    img = np.full((*shape, 3), 0.4, dtype=np.float32)
    noisy = add_noise(img, "camera", seed=0, level=0.7)
    assert noisy.shape == img.shape and np.isfinite(noisy).all() and 0 <= noisy.min() and noisy.max() <= 1


def test_bounds_and_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="outside"):
        get_noise_model("gaussian").resolve({"sigma": 300})
    with pytest.raises(ValueError, match="unknown noise model"):
        get_noise_model("pink")


def test_add_noise_clip_and_quantize():
    img = np.full((16, 16, 1), 0.99, dtype=np.float32)
    assert add_noise(img, "gaussian", seed=0, sigma=50).max() <= 1.0
    assert add_noise(img, "gaussian", seed=0, sigma=50, clip=False).max() > 1.0
    q = quantize_8bit(torch.tensor([0.1234, 1.3, -0.2]))
    assert torch.allclose(q * 255, torch.round(q * 255))
    assert q.max() == 1.0 and q.min() == 0.0


def test_random_colour_matrices_keep_white_and_mix_the_noise_across_channels():
    """A camera's colour correction keeps white white (rows sum 1) and leaves a noise-free image as it is,
    but mixes the sensor's noise into R, G and B: on a flat patch R and G noise come out anti-correlated
    and stronger, where without it the channels' noise is independent."""
    from denoiser.noise import CAMERA_XYZ_TO_CAM, camera, camera_to_srgb, random_ccms

    m = random_ccms(4, torch.Generator().manual_seed(0))
    assert m.shape == (4, 3, 3)
    assert torch.allclose(m.sum(dim=-1), torch.ones(4, 3), atol=1e-5)
    assert torch.equal(m, random_ccms(4, torch.Generator().manual_seed(0))) and not torch.allclose(m[0], m[1])
    canon = camera_to_srgb(torch.tensor(CAMERA_XYZ_TO_CAM["Canon EOS 5D Mark II"], dtype=torch.float64).view(3, 3) / 1e4)
    assert canon[0, 0] > 1.5 and canon[0, 1] < -0.5  # red is taken from red minus green, as the camera's develop does

    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(camera(photo, torch.Generator().manual_seed(1), shot=0.0, read=0.0, ccm=m[0]), photo,
                          atol=1e-4)
    flat = torch.full((1, 3, 96, 96), 0.4)

    def noise_of(ccm):
        n = (camera(flat, torch.Generator().manual_seed(1), level=0.7, ccm=ccm) - flat)[0].flatten(1)
        return n.std(dim=1), torch.corrcoef(n)[0, 1]

    (plain_std, plain_rg), (mixed_std, mixed_rg) = noise_of(None), noise_of(canon)
    assert abs(plain_rg) < 0.1 and mixed_rg < -0.25
    assert mixed_std[0] > 1.5 * plain_std[0]
    gray = torch.full((1, 1, 16, 16), 0.4)  # a grey image has no colours to correct: the matrix is not applied
    assert torch.equal(camera(gray, torch.Generator().manual_seed(1), level=0.5, ccm=canon),
                       camera(gray, torch.Generator().manual_seed(1), level=0.5))
