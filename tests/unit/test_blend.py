"""Luminance and colour noise kept apart: the blend of the result with the input."""

import numpy as np
import pytest

from denoiser.blend import Blend, apply_blend, luma
from denoiser.inference import blend_strength


def ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JPEG's full-range YCbCr (BT.601) of an (H, W, 3) image on the 0–1 scale."""
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])
    return rgb.astype(np.float64) @ m.T


@pytest.fixture()
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.3, 0.7, (32, 32, 3)).astype(np.float32)  # away from 0 and 1: no range clip
    noisy = (clean + rng.normal(0, 0.05, clean.shape)).clip(0, 1).astype(np.float32)
    return noisy, clean  # the "denoised" result is the clean image: the change is pure noise removal


def test_chroma_zero_keeps_the_inputs_colour_and_changes_its_luma(pair) -> None:
    noisy, denoised = pair
    out = apply_blend(noisy, denoised, Blend(chroma=0.0))
    y_in, y_out, y_den = ycbcr(noisy), ycbcr(out), ycbcr(denoised)
    np.testing.assert_allclose(y_out[..., 1:], y_in[..., 1:], atol=1e-5)  # Cb, Cr of the input
    np.testing.assert_allclose(y_out[..., 0], y_den[..., 0], atol=1e-5)  # Y of the result
    assert np.abs(y_out[..., 0] - y_in[..., 0]).mean() > 0.02


def test_luma_zero_keeps_the_inputs_luma_and_changes_its_colour(pair) -> None:
    noisy, denoised = pair
    out = apply_blend(noisy, denoised, Blend(luma=0.0))
    y_in, y_out, y_den = ycbcr(noisy), ycbcr(out), ycbcr(denoised)
    np.testing.assert_allclose(y_out[..., 0], y_in[..., 0], atol=1e-5)
    np.testing.assert_allclose(y_out[..., 1:], y_den[..., 1:], atol=1e-5)
    assert np.abs(y_out[..., 1:] - y_in[..., 1:]).mean() > 0.02


def test_full_shares_are_todays_output_and_strength_scales_both(pair) -> None:
    noisy, denoised = pair
    assert apply_blend(noisy, denoised, Blend()) is denoised
    np.testing.assert_allclose(apply_blend(noisy, denoised, Blend(strength=0.4)), blend_strength(noisy, denoised, 0.4),
                               atol=1e-6)
    half_luma = apply_blend(noisy, denoised, Blend(strength=0.5, luma=0.5, chroma=0.0))
    y = ycbcr(half_luma)[..., 0]
    np.testing.assert_allclose(y, ycbcr(noisy)[..., 0] + 0.25 * (ycbcr(denoised) - ycbcr(noisy))[..., 0], atol=1e-5)


def test_results_stay_in_range_and_gray_images_are_all_luma() -> None:
    white = np.ones((4, 4, 3), np.float32)
    red = np.zeros((4, 4, 3), np.float32)
    red[..., 0] = 1.0
    out = apply_blend(white, red, Blend(luma=0.0))  # keep white's luma, red's colour: past white unless clipped
    assert out.max() <= 1.0 and out.min() >= 0.0
    gray_in, gray_out = np.full((4, 4, 1), 0.6, np.float32), np.full((4, 4, 1), 0.4, np.float32)
    np.testing.assert_allclose(apply_blend(gray_in, gray_out, Blend(luma=0.5, chroma=0.0)), 0.5)
    assert luma(gray_in) is gray_in
    with pytest.raises(ValueError, match="chroma"):
        Blend(chroma=1.5)


def striped_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A clean image (fine stripes on the left, flat on the right), its noisy version, and a "denoised"
    result that removed the noise and also smoothed the stripes away (what detail should give back)."""
    rng = np.random.default_rng(1)
    clean = np.full((96, 96, 3), 0.5, np.float32)
    clean[:, :48] += 0.15 * np.sign(np.sin(np.arange(48) * 1.3))[None, :, None]
    noisy = (clean + rng.normal(0, 0.03, clean.shape)).astype(np.float32)
    smoothed = clean.copy()
    smoothed[:, :48] = 0.5
    return clean, noisy, smoothed


def test_detail_gives_back_lost_texture_and_not_the_noise() -> None:
    clean, noisy, smoothed = striped_scene()
    out = apply_blend(noisy, smoothed, Blend(detail=1.0))
    err = lambda x, sl: float(np.sqrt(np.mean((x[:, sl] - clean[:, sl]) ** 2)))  # noqa: E731
    stripes, flat = slice(4, 44), slice(52, 92)
    assert err(out, stripes) < 0.5 * err(smoothed, stripes)  # the stripes come back
    assert err(out, flat) < err(smoothed, flat) + 0.004  # the flat area's noise stays out
    half = apply_blend(noisy, smoothed, Blend(detail=0.5))
    assert err(out, stripes) < err(half, stripes) < err(smoothed, stripes)


def test_grain_is_fresh_seeded_luminance_scaled_to_the_removed_noise() -> None:
    clean, noisy, _ = striped_scene()
    flat = (slice(None), slice(52, 96))
    out = apply_blend(noisy, clean, Blend(grain=0.5, seed=3))
    added = (out - clean)[flat]
    np.testing.assert_allclose(ycbcr(out)[..., 1:], ycbcr(clean)[..., 1:], atol=1e-5)  # no colour in the grain
    removed = float(np.std(luma(noisy - clean)))
    assert float(np.std(luma(added))) == pytest.approx(0.5 * removed, rel=0.15)
    assert abs(float(np.corrcoef(luma(added).ravel(), luma(noisy - clean)[flat].ravel())[0, 1])) < 0.1  # fresh
    assert np.array_equal(out, apply_blend(noisy, clean, Blend(grain=0.5, seed=3)))
    assert not np.array_equal(out, apply_blend(noisy, clean, Blend(grain=0.5, seed=4)))
    coarse = luma(apply_blend(noisy, clean, Blend(grain=0.5, grain_size=3.0, seed=3)) - clean)[..., 0]
    fine = luma(out - clean)[..., 0]
    lag1 = lambda g: float(np.corrcoef(g[:, 1:].ravel(), g[:, :-1].ravel())[0, 1])  # noqa: E731
    assert lag1(coarse) > lag1(fine) + 0.3
    with pytest.raises(ValueError, match="grain size"):
        Blend(grain=0.2, grain_size=20)
