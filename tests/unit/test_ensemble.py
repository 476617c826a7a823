"""Self-ensemble: exact inverses, equivariance at 8 passes, tiling, and a real PSNR gain."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from denoiser.archs import build_arch
from denoiser.checkpoint import load_model
from denoiser.ensemble import ENSEMBLE_SIZES, TRANSFORMS, check_ensemble, forward, inverse
from denoiser.evaluate import load_clean, noisy_version, to_8bit
from denoiser.inference import denoise, denoise_array
from denoiser.metrics import psnr
from denoiser.progress import drain
from denoiser.resources import bundled_models_dir
from tests.helpers import shared_data


def test_each_inverse_undoes_its_transform_and_the_eight_are_distinct() -> None:
    x = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).view(2, 3, 4, 6)
    seen = set()
    for turns, mirror in TRANSFORMS:
        t = forward(x, turns, mirror)
        assert t.shape[2:] == ((6, 4) if turns % 2 else (4, 6))
        assert torch.equal(inverse(t, turns, mirror), x)
        seen.add(tuple(t[0, 0].flatten().tolist()))
    assert len(seen) == 8


def test_only_the_offered_sizes_are_accepted() -> None:
    for n in ENSEMBLE_SIZES:
        assert check_ensemble(n) == n
    for bad in (0, 3, 16):
        with pytest.raises(ValueError, match="1, 2, 4, 8"):
            check_ensemble(bad)


def test_eight_passes_make_any_network_equivariant_to_flips_and_turns() -> None:
    torch.manual_seed(0)
    net = build_arch("unet", channels=[8, 16], blocks=1, bottleneck_blocks=1).eval()
    x = torch.rand(1, 3, 64, 64)

    def run(batch: torch.Tensor, passes: int) -> torch.Tensor:
        """The engine's whole-image call (one tile) on a (1, 3, H, W) batch, as a batch again."""
        image = batch[0].permute(1, 2, 0).numpy()
        res = drain(denoise_array(image, net, sigma=25.5, tile=4096, device="cpu", precision="fp32", ensemble=passes,
                                  clip_to_input=False))  # averaging commutes with the net, not with a clip
        return torch.from_numpy(res.image).permute(2, 0, 1)[None]

    mirrored = torch.flip(x, (3,))
    assert not torch.allclose(torch.flip(run(x, 1), (3,)), run(mirrored, 1), atol=1e-4)  # the net alone is not
    ens = run(x, 8)
    for turns, mirror in TRANSFORMS:
        moved = run(forward(x, turns, mirror), 8)
        torch.testing.assert_close(moved, forward(ens, turns, mirror), atol=1e-5, rtol=0)
    manual = sum(inverse(run(forward(x, t, m), 1), t, m) for t, m in TRANSFORMS[:2]) / 2
    torch.testing.assert_close(run(x, 2), manual, atol=1e-6, rtol=0)


def test_tiled_ensemble_matches_untiled_on_a_non_square_image(rng) -> None:
    torch.manual_seed(1)
    net = build_arch("unet", channels=[8, 16, 32])
    img = rng.random((150, 223, 3)).astype(np.float32)
    whole = drain(denoise_array(img, net, sigma=20, tile=4096, ensemble=4, precision="fp32"))  # tiling, not bf16
    tiled = drain(denoise_array(img, net, sigma=20, tile=128, ensemble=4, precision="fp32"))
    plain = drain(denoise_array(img, net, sigma=20, tile=4096, precision="fp32"))
    assert whole.ensemble == 4 and tiled.tiles > 4
    np.testing.assert_allclose(tiled.image, whole.image, atol=1e-4)
    assert np.abs(whole.image - plain.image).max() > 1e-3  # the passes really differ from one pass
    with pytest.raises(ValueError, match="ensemble"):
        drain(denoise_array(img, net, sigma=20, ensemble=5))


def test_eight_passes_restore_a_real_image_better_than_one() -> None:
    clean = load_clean(shared_data("test", "Set12") / "08.png", gray=True)[128:320, 128:320]
    noisy = (noisy_version(clean, 25.0, 0) / 255.0).astype(np.float32)
    model = load_model(bundled_models_dir() / "gaussian-gray.pt")
    one = psnr(clean, to_8bit(denoise(noisy, model, sigma=25.0).image * 255.0))
    eight = psnr(clean, to_8bit(denoise(noisy, model, sigma=25.0, ensemble=8).image * 255.0))
    assert one > 29.0 and eight > one + 0.03


def test_every_pass_is_a_progress_step_so_cancel_need_not_wait_for_the_tile(rng) -> None:
    net = build_arch("unet", channels=[8, 16])
    img = rng.random((100, 140, 3)).astype(np.float32)
    events = []
    res = drain(denoise_array(img, net, sigma=10, tile=96, ensemble=4), events.append)
    fractions = [e.fraction for e in events]
    assert len(events) == 4 * res.tiles and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert events[0].message == f"tile 1/{res.tiles}, pass 2/4" and events[0].fraction == pytest.approx(0.25 / res.tiles)
    batched = []
    drain(denoise_array(img, net, sigma=10, tile=96, ensemble=4, tiles_per_batch=4), batched.append)
    done = [e.done for e in batched]
    assert done == sorted(done) and done[-1] == res.tiles and batched[0].message.startswith("tiles 1–4/")
    calls = []

    class Counting(torch.nn.Module):
        size_multiple, in_channels = net.size_multiple, net.in_channels

        def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
            calls.append(x.shape)
            return net(x, s)

    gen = denoise_array(img, Counting(), sigma=10, tile=96, ensemble=8)
    next(gen)
    gen.close()  # the GUI's cancel: it stops after one pass of the first tile, not eight
    assert len(calls) == 1
