from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.archs import build_arch
from denoiser.device import cpu_has_native_bf16
from denoiser.inference import _axis_tiles, blend_strength, denoise, denoise_array
from denoiser.progress import drain


@pytest.mark.parametrize("length", [1, 7, 100, 255, 700, 1234])
def test_tile_weights_sum_to_one_everywhere(length):
    acc = np.zeros(length)
    for start, size, w in _axis_tiles(length, 192, 16, align=8):
        assert start % 8 == 0
        acc[start : start + size] += w
    np.testing.assert_allclose(acc, 1.0, atol=1e-6)


@pytest.mark.parametrize("arch,cfg", [("unet", {"channels": [8, 16, 32]}), ("dncnn", {"depth": 6, "features": 8, "batch_norm": False})])
def test_tiled_output_equals_untiled(arch, cfg, rng):
    torch.manual_seed(0)
    net = build_arch(arch, **cfg)
    img = rng.random((200, 277, 3)).astype(np.float32)
    whole = drain(denoise_array(img, net, sigma=25, tile=4096, precision="fp32"))  # tiling, not bf16 rounding
    tiled = drain(denoise_array(img, net, sigma=25, tile=160, precision="fp32"))
    assert whole.tiles == 1 and tiled.tiles > 4
    np.testing.assert_allclose(tiled.image, whole.image, atol=1e-4)


def test_any_size_gray_and_channel_adaptation(rng):
    net = build_arch("unet", channels=[8, 16])
    for shape in [(1, 1, 3), (1, 5, 1), (3, 2, 3), (33, 17, 1)]:
        out = denoise(rng.random(shape).astype(np.float32), net, sigma=10).image
        assert out.shape == shape and np.isfinite(out).all()
    gray_net = build_arch("unet", in_channels=1, channels=[8, 16])
    assert denoise(rng.random((20, 20, 3)).astype(np.float32), gray_net, sigma=5).image.shape == (20, 20, 3)


def test_progress_events_per_tile_and_cancel(rng):
    net = build_arch("unet", channels=[8, 16])
    gen = denoise_array(rng.random((300, 300, 3)).astype(np.float32), net, sigma=20, tile=160, margin=16)
    first = next(gen)
    assert first.done == 1 and first.total > 4
    gen.close()  # cancelling stops at the tile boundary without error


def test_sigma_is_estimated_when_not_given(rng):
    net = build_arch("unet", channels=[8, 16])
    img = np.clip(0.5 + 30 / 255 * rng.standard_normal((128, 128, 1)), 0, 1).astype(np.float32)
    res = denoise(img, net)
    assert res.sigma_estimated and res.sigma == pytest.approx(30, rel=0.15)
    assert not denoise(img, net, sigma=12).sigma_estimated


def test_an_estimate_beyond_the_trained_range_is_clamped(rng, monkeypatch):
    import denoiser.inference as inference
    from denoiser.checkpoint import LoadedModel, ModelInfo

    net = build_arch("unet", channels=[8, 16])
    dither = (rng.random((64, 64, 1)) > 0.5).astype(np.float32)  # a 1-bit dither: its texture reads as noise
    monkeypatch.setattr(inference, "estimate_sigma", lambda *_: 210.0)
    assert denoise(dither, net).sigma == 75.0
    assert denoise(dither, net, sigma=120).sigma == 120.0  # a σ the user gives is theirs
    wide = LoadedModel(net, ModelInfo("wide", Path("wide.pt"), "unet", {}, noise={"sigma_range": [0, 150]}))
    narrow = LoadedModel(net, ModelInfo("narrow", Path("n.pt"), "unet", {}, noise={"sigma_range": [0, 10]}))
    assert denoise(dither, wide).sigma == 150.0 and denoise(dither, narrow).sigma == 75.0


def test_strength_blends_with_the_original():
    a, b = np.zeros((2, 2, 1), np.float32), np.ones((2, 2, 1), np.float32)
    np.testing.assert_allclose(blend_strength(a, b, 0.25), 0.25)
    assert blend_strength(a, b, 1.0) is b
    with pytest.raises(ValueError):
        blend_strength(a, b, 1.5)


def test_tile_size_follows_free_memory(monkeypatch):
    import denoiser.inference as inf

    cpu = torch.device("cpu")
    monkeypatch.setattr(inf, "available_memory_bytes", lambda: 16 * 1024**3)
    assert inf.choose_tile_size(cpu) == 768
    monkeypatch.setattr(inf, "available_memory_bytes", lambda: 64 * 1024**2)
    small = inf.choose_tile_size(cpu)
    assert 128 <= small < 768 and small * small * inf.BYTES_PER_TILE_PIXEL <= 64 * 1024**2 * 0.25 + 1


def test_8_and_16_bit_inputs_match_their_float_version(rng):
    torch.manual_seed(0)
    net = build_arch("unet", channels=[8, 16])
    img8 = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    img16 = img8.astype(np.uint16) * 257
    ref = denoise(img8.astype(np.float32) / 255, net, sigma=20, tile=160, strength=0.5).image
    for img in (img8, img16):
        out = denoise(img, net, sigma=20, tile=160, strength=0.5).image
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, ref, atol=1e-5)
    with pytest.raises(ValueError, match="dtype"):
        drain(denoise_array(img8.astype(np.int32), net, sigma=20))


def test_batched_tiles_give_the_same_image(rng):
    torch.manual_seed(0)
    net = build_arch("unet", channels=[8, 16, 32])
    img = rng.random((250, 333, 3)).astype(np.float32)
    one = drain(denoise_array(img, net, sigma=25, tile=160, tiles_per_batch=1))
    many = drain(denoise_array(img, net, sigma=25, tile=160, tiles_per_batch=4))
    assert one.tiles == many.tiles > 4
    np.testing.assert_allclose(many.image, one.image, atol=1e-5)


def test_precision_choice(monkeypatch):
    from denoiser import device as dv

    cpu = torch.device("cpu")
    monkeypatch.setattr(dv, "cpu_has_native_bf16", lambda: False)
    assert dv.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(dv, "cpu_has_native_bf16", lambda: True)
    assert dv.resolve_precision("auto", cpu) == "bf16"
    assert dv.resolve_precision("auto", torch.device("cuda")) == "fp16"
    with pytest.raises(ValueError, match="CUDA"):
        dv.resolve_precision("fp16", cpu)
    with pytest.raises(ValueError, match="unknown precision"):
        dv.resolve_precision("int4", cpu)


def test_bf16_by_name_on_a_cpu_without_it_is_warned_about(monkeypatch):
    from denoiser import device as dv

    monkeypatch.setattr(dv, "cpu_has_native_bf16", lambda: False)
    warning = dv.emulated_bf16_warning("bf16", "cpu")
    assert warning is not None and "emulated" in warning and "--precision auto" in warning
    assert dv.emulated_bf16_warning("auto", "cpu") is None and dv.emulated_bf16_warning("fp32", "cpu") is None
    monkeypatch.setattr(dv.torch.cuda, "is_available", lambda: True)
    assert dv.emulated_bf16_warning("bf16", "cuda") is None and dv.emulated_bf16_warning("bf16", "auto") is None
    monkeypatch.setattr(dv, "cpu_has_native_bf16", lambda: True)
    assert dv.emulated_bf16_warning("bf16", "cpu") is None


@pytest.mark.parametrize("native_bf16", [False, True])
def test_auto_precision_follows_the_cpu_and_fp32_tiling_is_exact_either_way(native_bf16, monkeypatch, rng):
    """The suite must pass on CPUs with and without native bf16: force the capability check both ways."""
    from denoiser import device as dv

    monkeypatch.setattr(dv, "cpu_has_native_bf16", lambda: native_bf16)
    torch.manual_seed(0)
    net = build_arch("unet", channels=[8, 16, 32])
    img = rng.random((120, 170, 3)).astype(np.float32)
    auto = drain(denoise_array(img, net, sigma=25, tile=4096, device="cpu"))
    forced = drain(denoise_array(img, net, sigma=25, tile=4096, device="cpu", precision="bf16" if native_bf16 else "fp32"))
    np.testing.assert_array_equal(auto.image, forced.image)  # auto picked what the capability says
    whole = drain(denoise_array(img, net, sigma=25, tile=4096, device="cpu", precision="fp32"))
    tiled = drain(denoise_array(img, net, sigma=25, tile=128, device="cpu", precision="fp32"))
    np.testing.assert_allclose(tiled.image, whole.image, atol=1e-4)


@pytest.mark.skipif(not cpu_has_native_bf16(),
                    reason="bf16 is emulated (slow) on this CPU; its cost is measured where the CPU has it")
def test_bf16_costs_the_bundled_model_almost_nothing_on_a_real_image():
    from denoiser.checkpoint import load_model
    from denoiser.evaluate import load_clean, noisy_version, to_8bit
    from denoiser.metrics import psnr
    from denoiser.resources import bundled_models_dir
    from tests.helpers import shared_data

    clean = load_clean(shared_data("test", "Kodak24") / "kodim05.png", gray=False)[100:292, 100:292]
    noisy = (noisy_version(clean, 25.0, 0) / 255.0).astype(np.float32)
    model = load_model(bundled_models_dir() / "gaussian-color.pt")
    scores = {p: psnr(clean, to_8bit(denoise(noisy, model, sigma=25.0, precision=p).image * 255.0)) for p in ("fp32", "bf16")}
    assert abs(scores["bf16"] - scores["fp32"]) < 0.02, scores


def test_bf16_inference_stays_close_to_fp32(rng):
    torch.manual_seed(0)
    net = build_arch("unet", channels=[8, 16])
    img = rng.random((64, 64, 3)).astype(np.float32)
    a = denoise(img, net, sigma=25, precision="fp32").image
    b = denoise(img, net, sigma=25, precision="bf16").image
    assert np.abs(a - b).max() < 0.05 and not np.array_equal(a, b)


def test_cuda_planning_from_free_memory(monkeypatch):
    """The CUDA-only decisions (tiles per batch, image kept on the GPU), checked without a GPU."""
    from denoiser import inference as inf

    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda _dev=None: (8 * 1024**3, 16 * 1024**3))
    per_tile = 1024 * 1024 * inf.BYTES_PER_TILE_PIXEL
    assert inf._tiles_per_batch(cuda, 1024) == min(8, int(8 * 1024**3 * 0.25 // per_tile))
    assert inf._tiles_per_batch(torch.device("cpu"), 1024) == 1
    assert inf._keep_on_device(cuda, 1024**3) and not inf._keep_on_device(cuda, 4 * 1024**3)
    assert not inf._keep_on_device(torch.device("cpu"), 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda _dev=None: (300 * 1024**2, 16 * 1024**3))
    assert inf._tiles_per_batch(cuda, 1024) == 1
    assert inf.choose_tile_size(cuda) < 768


class _Overshoot(torch.nn.Module):
    """A stand-in network whose output leaves [0, 1], as a real one does a little near edges."""

    size_multiple = 1
    in_channels = 3

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) * 1.4 + 0.5


def test_a_float_image_comes_back_within_its_range_unless_asked(rng):
    img = rng.random((40, 48, 3)).astype(np.float32)
    net = _Overshoot()
    free = drain(denoise_array(img, net, sigma=5, keep_clipped=False, clip_to_input=False)).image
    assert free.min() < -0.1 and free.max() > 1.1
    kept = drain(denoise_array(img, net, sigma=5, keep_clipped=False)).image
    assert kept.min() >= 0.0 and kept.max() <= 1.0
    np.testing.assert_array_equal(kept, np.clip(free, 0, 1))
    hdr = img * 4  # a float image beyond 1 keeps its own range
    out = drain(denoise_array(hdr, net, sigma=5, keep_clipped=False)).image
    assert out.max() == pytest.approx(hdr.max()) and out.min() >= 0
