"""Fine-tuning: the Neighbor2Neighbor sub-sampler, PD, the self-supervised loss, and short runs of both modes."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image as PILImage

from denoiser.checkpoint import list_models, load_model, read_info
from denoiser.errors import DenoiserError
from denoiser.progress import drain
from denoiser.selfsupervised import NEIGHBOUR_PAIRS, neighbor_subsample, pd_down, pd_up, self_supervised_loss
from denoiser.training import (
    THUMB,
    FinetuneConfig,
    FinetuneProgress,
    base_noise_config,
    estimate_memory_mb,
    finetune,
    output_path,
    state_path,
    unique_output_name,
)
from denoiser.training import finetune_noisy as finetune_module


def _write_photos(folder: Path, noise: float, n: int = 5) -> Path:
    folder.mkdir()
    yy, xx = np.mgrid[0:64, 0:80]
    rng = np.random.default_rng(0)
    for i in range(n):
        a = (127 + 90 * np.sin(xx / (4 + i)) * np.cos(yy / 7))[..., None] * np.array([1.0, 0.8, 0.6])
        a = a + noise * rng.standard_normal(a.shape)
        PILImage.fromarray(a.clip(0, 255).round().astype(np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return _write_photos(tmp_path / "clean", 0.0)


@pytest.fixture
def noisy_photos(tmp_path: Path) -> Path:
    return _write_photos(tmp_path / "noisy", 12.0)


def drain_events(gen) -> tuple[list, object]:
    events = []
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return events, stop.value


def test_neighbor_subsampler_takes_two_adjacent_pixels_of_every_cell() -> None:
    b, h, w = 2, 8, 12
    codes = torch.arange(b * h * w, dtype=torch.float32).view(b, 1, h, w)  # each pixel holds its own index
    x = torch.cat([codes, codes + 10_000], dim=1)
    g1, g2, (i1, i2) = neighbor_subsample(x, torch.Generator().manual_seed(3))
    assert g1.shape == g2.shape == (b, 2, h // 2, w // 2)
    assert torch.equal(g1[:, 1], g1[:, 0] + 10_000) and torch.equal(g2[:, 1], g2[:, 0] + 10_000)  # one choice for all channels
    cells_y, cells_x = torch.meshgrid(torch.arange(h // 2), torch.arange(w // 2), indexing="ij")
    for n in range(b):
        p1 = g1[n, 0].long() - n * h * w
        p2 = g2[n, 0].long() - n * h * w
        y1, x1, y2, x2 = p1 // w, p1 % w, p2 // w, p2 % w
        assert torch.equal(y1 // 2, cells_y) and torch.equal(x1 // 2, cells_x)  # both pixels inside their own cell
        assert torch.equal(y2 // 2, cells_y) and torch.equal(x2 // 2, cells_x)
        assert torch.all((y1 - y2).abs() + (x1 - x2).abs() == 1)  # distinct, horizontally or vertically adjacent
    pairs = {tuple(p) for p in torch.stack([i1, i2], -1).view(-1, 2).tolist()}
    assert pairs == {tuple(p) for p in NEIGHBOUR_PAIRS.tolist()}  # every ordered neighbour pair gets drawn


def test_pd_down_splits_into_stride_sub_images_and_up_restores() -> None:
    x = torch.randn(2, 3, 12, 18)
    for s in (1, 2, 3):
        z = pd_down(x, s)
        assert z.shape == (2 * s * s, 3, 12 // s, 18 // s)
        assert torch.equal(pd_up(z, s), x)
        for dy in range(s):
            for dx in range(s):
                assert torch.equal(z[s * s + dy * s + dx], x[1, :, dy::s, dx::s])


def test_loss_is_zero_for_a_perfect_denoiser_on_noise_free_input(models_dir: Path) -> None:
    net = load_model("photo").net  # the tiny test model is an exact identity
    blocks = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    clean = blocks.repeat_interleave(4, 2).repeat_interleave(4, 3)  # no detail finer than a PD-2 neighbourhood
    assert torch.equal(net(clean, torch.zeros(2)), clean)
    zero = self_supervised_loss(net, clean, torch.zeros(2), gen=torch.Generator().manual_seed(1), pd=2, base=net,
                                anchor=1.0)
    assert zero.total.item() == 0 and zero.reconstruction.item() == 0 and zero.anchor.item() == 0
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    parts = self_supervised_loss(net, noisy, None, gen=torch.Generator().manual_seed(1), pd=2, base=net, anchor=1.0)
    assert parts.reconstruction.item() == pytest.approx(2 * 0.1**2, rel=0.25)  # ‖g1 − g2‖² of two noise draws
    assert parts.regularizer.item() < 1e-12  # identity: f(g1) − g2 equals g1(f) − g2(f) exactly


def test_distillation_pulls_the_full_resolution_output_towards_the_pd_output() -> None:
    class Smooth(torch.nn.Module):
        """A 3×3 box filter: its output differs between full resolution and the PD sub-images put back together."""

        size_multiple = 1

        def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)

    net = Smooth()
    noisy = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    sigma = torch.full((2,), 0.1)
    parts = self_supervised_loss(net, noisy, sigma, gen=torch.Generator().manual_seed(1), pd=2, distill=0.5)
    expected = F.mse_loss(net(noisy, sigma), pd_up(net(pd_down(noisy, 2), sigma.repeat_interleave(4)), 2))
    assert parts.distill.item() == pytest.approx(expected.item()) and expected.item() > 1e-4
    assert parts.total.item() == pytest.approx(
        (parts.reconstruction + 2.0 * parts.regularizer + 0.5 * parts.distill).item())
    assert parts.anchor.item() == 0  # no base given
    off = self_supervised_loss(net, noisy, sigma, gen=torch.Generator().manual_seed(1), pd=1, distill=0.5)
    assert off.distill.item() == 0  # without PD the full-resolution output is the one trained already


def test_base_noise_config_follows_the_checkpoint_unless_overridden() -> None:
    noise = {"name": "gaussian", "sigma_range": [5.0, 40.0], "clip_prob": 0.3, "sigma_map": "estimate", "unknown": 1}
    cfg = base_noise_config(noise)
    assert cfg.sigma_range == (5.0, 40.0) and cfg.clip_prob == 0.3 and cfg.sigma_map == "estimate"
    assert base_noise_config(noise, sigma_range=(10, 20)).sigma_range == (10.0, 20.0)
    other = base_noise_config(noise, "poisson")
    assert other.name == "poisson" and other.clip_prob == 0.5 and other.sigma_map == "estimate"
    with pytest.raises(DenoiserError):
        base_noise_config(noise, sigma_range=(30, 10))


def test_output_names_and_paths(models_dir: Path, tmp_path: Path) -> None:
    assert output_path("mine") == models_dir / "mine.pt"
    assert output_path(str(tmp_path / "x.pt")) == tmp_path / "x.pt"
    assert output_path("sub/x") == Path("sub/x")
    assert unique_output_name("photo") == "photo-ft"
    (models_dir / "photo-ft.pt").write_bytes(b"")
    assert unique_output_name("photo") == "photo-ft-2"


def test_clean_finetune_writes_a_card_and_appears_in_the_model_list(models_dir: Path, photos: Path) -> None:
    cfg = FinetuneConfig([str(photos)], base="gaussian-color", out="mine", mode="clean", steps=3, patch=32, batch=2,
                         val_fraction=0.25)
    events, result = drain_events(finetune(cfg))
    assert result.path == models_dir / "mine.pt" and state_path(result.path).exists()
    vals = [e.val_score for e in events if e.val_score is not None]
    assert len(vals) == 3 and all(np.isfinite(vals))
    assert events[-1].step == 3 and events[-1].eta_s >= 0 and events[-1].loss is not None
    assert all(isinstance(e, FinetuneProgress) and e.mode == "clean" for e in events)
    assert result.before == pytest.approx(events[-1].before) and result.after == pytest.approx(max(vals))
    info = read_info(result.path)
    card = info.training["finetune"]
    assert card["base"] == "gaussian-color" and card["mode"] == "clean" and card["data"] == [str(photos)]
    assert card["score_before"] == pytest.approx(result.before) and card["score_after"] == pytest.approx(result.after)
    assert card["better"] is result.better and card["train_images"] == 4 and card["val_images"] == 1
    assert info.description.startswith("Fine-tuned from gaussian-color on clean")
    assert info.noise["name"] == "gaussian" and info.metrics["val_psnr"] == pytest.approx(result.after)
    assert "mine" in {m.name for m in list_models()}
    with pytest.raises(DenoiserError, match="already exists"):
        next(finetune(cfg))
    with pytest.raises(DenoiserError, match="replace the base"):
        next(finetune(replace(cfg, out=str(models_dir / "gaussian-color.pt"))))


def test_a_worse_model_is_kept_but_flagged(models_dir: Path, photos: Path) -> None:
    cfg = FinetuneConfig([str(photos)], base="gaussian-color", out="wrecked", steps=2, patch=32, batch=2, lr=0.5,
                         val_fraction=0.25)
    _events, result = drain_events(finetune(cfg))
    assert result.better is False and result.after < result.before - 1
    assert "NOT better" in result.verdict()
    info = read_info(result.path)
    assert info.training["finetune"]["better"] is False and "NOT better than the base" in info.description


def test_noisy_finetune_scores_without_reference_and_sends_thumbnails(models_dir: Path, noisy_photos: Path) -> None:
    cfg = FinetuneConfig([str(noisy_photos)], base="photo", out="night", mode="noisy", steps=3, patch=32, batch=2,
                         val_fraction=0.25)
    events, result = drain_events(finetune(cfg))
    first = next(e for e in events if e.thumbnails is not None)
    assert set(first.thumbnails) == {"noisy", "before"} and first.before == result.before
    last = [e for e in events if e.val_score is not None][-1]
    thumbs = last.thumbnails
    assert set(thumbs) == {"noisy", "before", "after"}
    assert all(t.dtype == np.uint8 and t.shape[2] == 3 and max(t.shape[:2]) <= THUMB for t in thumbs.values())
    assert thumbs["noisy"].std() > 0 and last.validation.residual_sigma > 0
    assert set(last.parts) == {"anchor_loss", "distill_loss", "reconstruction_loss"}
    info = read_info(result.path)
    assert result.score_name == "N2N score" and info.training["finetune"]["mode"] == "noisy"
    assert info.metrics["val_n2n_score"] == pytest.approx(result.after) and info.noise == read_info(
        models_dir / "photo.pt").noise
    assert "night" in {m.name for m in list_models()}
    # a no-reference proxy never establishes "better": the verdict and the card say it is unverified
    card = info.training["finetune"]
    assert result.verified is False and result.better is None and card["better"] is None
    assert card["verified"] is False and "unverified" in info.description
    assert "not PSNR" in result.verdict() and "better than the base" not in result.verdict()


@pytest.mark.parametrize("mode", ["clean", "noisy"])
def test_cancel_keeps_a_checkpoint_and_resume_continues_exactly(models_dir: Path, photos: Path, mode: str) -> None:
    cfg = FinetuneConfig([str(photos)], base="photo", out=f"c-{mode}", mode=mode, steps=6, patch=32, batch=2,
                         val_fraction=0.25)
    gen = finetune(cfg)
    for ev in gen:
        if ev.step >= 2:
            break
    gen.close()  # what the GUI's Cancel and the CLI's Ctrl+C do
    out, state = models_dir / f"c-{mode}.pt", state_path(models_dir / f"c-{mode}.pt")
    card = read_info(out).training["finetune"]
    assert card["cancelled"] is True and card["steps_run"] == 2 and card["planned_steps"] == 6
    assert 1 <= card["steps"] <= 2  # the steps of the best validated weights
    assert torch.load(state, weights_only=False)["step"] == 2
    events, result = drain_events(finetune(replace(cfg, resume=str(state))))
    steps = [e.step for e in events if e.loss is not None]
    assert steps[0] == 3 and steps[-1] == 6 and not result.cancelled
    assert read_info(out).training["finetune"]["cancelled"] is False
    drain_events(finetune(replace(cfg, out=f"u-{mode}")))  # the same run without interruption
    resumed = torch.load(state, weights_only=False)["model"]
    straight = torch.load(state_path(models_dir / f"u-{mode}.pt"), weights_only=False)["model"]
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k])


def test_memory_estimate_scales_with_the_batch_and_is_bounded_by_the_cache(models_dir: Path, photos: Path) -> None:
    cfg = FinetuneConfig([str(photos)], base="photo", out="m", batch=2, patch=64)
    small, big = estimate_memory_mb(cfg), estimate_memory_mb(replace(cfg, batch=8))
    assert big["activations"] == pytest.approx(4 * small["activations"], rel=0.05) and small["activations"] > 0
    assert small["images"] == pytest.approx(5 * 64 * 80 * 3 / 1e6, abs=0.05)  # five decoded 80×64 RGB photos
    assert estimate_memory_mb(replace(cfg, cache_mb=0.01))["images"] <= 0.01
    noisy = estimate_memory_mb(replace(cfg, mode="noisy"))
    assert noisy["model"] > small["model"]  # the frozen base model is kept for the anchor
    assert small["total"] == pytest.approx(sum(v for k, v in small.items() if k != "total"), abs=0.1)


def test_noisy_mode_keeps_a_base_that_already_removes_the_noise(models_dir: Path, noisy_photos: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    val = [finetune_module._NoisyVal(torch.zeros(1, 3, 8, 8), torch.tensor([s / 255])) for s in (3.0, 5.0)]
    assert finetune_module._noise_left(2.0, val) == pytest.approx(0.5)
    assert finetune_module._noise_left(None, val) is None and finetune_module._noise_left(1.0, []) is None
    monkeypatch.setattr(finetune_module, "NOTHING_TO_LEARN", 100.0)  # any base now counts as removing the noise
    cfg = FinetuneConfig([str(noisy_photos)], base="photo", out="kept", mode="noisy", steps=3, patch=32, batch=2,
                         val_fraction=0.25)
    events, result = drain_events(finetune(cfg))
    assert "keeping it unchanged" in events[-1].message and result.extra["kept_base"] is True
    assert result.steps == 0 and result.before == result.after and "already removes this noise" in result.verdict()
    kept, base = load_model(result.path), load_model("photo")
    for k, v in base.net.state_dict().items():
        torch.testing.assert_close(kept.net.state_dict()[k], v)
    info = read_info(result.path)
    assert info.training["finetune"]["kept_base"] is True and "unchanged" in info.description
    forced = drain(finetune(replace(cfg, out="forced", force=True)))
    assert not forced.extra.get("kept_base") and forced.steps > 0


@pytest.mark.parametrize("sizes", [[(200, 200)] * 6, [(8, 8), (8, 8), (12, 6), (6, 12), (8, 8)]])
def test_small_photos_are_valid_input(models_dir: Path, tmp_path: Path, sizes: list[tuple[int, int]]) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, (h, w) in enumerate(sizes):
        PILImage.fromarray((rng.random((h, w, 3)) * 200 + 20).astype(np.uint8)).save(folder / f"{i}.png")
    cfg = FinetuneConfig([str(folder)], base="gaussian-color", out="small", mode="clean", steps=2, patch=32, batch=2,
                         val_fraction=0.34)
    events, result = drain_events(finetune(cfg))
    vals = [e.val_score for e in events if e.val_score is not None]
    assert vals and all(np.isfinite(vals)) and result.path.exists()


def test_noisy_mode_creates_the_models_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              models_dir: Path, noisy_photos: Path) -> None:
    fresh = tmp_path / "not" / "there" / "yet"
    monkeypatch.setenv("DENOISER_MODELS_DIR", str(fresh))
    cfg = FinetuneConfig([str(noisy_photos)], base=str(models_dir / "photo.pt"), out="night", mode="noisy", steps=1,
                         patch=32, batch=2, val_fraction=0.25)
    _events, result = drain_events(finetune(cfg))
    assert result.path == fresh / "night.pt" and result.path.exists()


def test_an_unwritable_output_fails_before_the_first_step(models_dir: Path, photos: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    cfg = FinetuneConfig([str(photos)], base="gaussian-color", out=str(blocker / "m.pt"), mode="clean", steps=50,
                         patch=32, batch=2)
    gen = finetune(cfg)
    with pytest.raises(DenoiserError, match="cannot write"):
        next(gen)
    assert blocker.read_text() == "not a folder"


def test_noisy_finetune_anneals_over_its_time_budget(models_dir: Path, noisy_photos: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """As `train` does: with --minutes the schedule follows the elapsed time, not only the step count."""
    seen = []
    real = finetune_module.lr_at

    def recording(step, cfg, elapsed=None):
        seen.append((cfg.minutes, elapsed))
        return real(step, cfg, elapsed)

    monkeypatch.setattr(finetune_module, "lr_at", recording)
    cfg = FinetuneConfig([str(noisy_photos)], base="photo", out="timed", mode="noisy", steps=2, minutes=5.0, patch=32,
                         batch=2, val_fraction=0.25)
    drain_events(finetune(cfg))
    assert seen and all(minutes == 5.0 and elapsed is not None and elapsed >= 0 for minutes, elapsed in seen)


def test_a_finetune_keeps_the_loss_its_base_was_trained_with(models_dir: Path, photos: Path) -> None:
    from denoiser.archs import build_arch
    from denoiser.checkpoint import save_checkpoint
    from denoiser.training.finetune_setup import prepare, train_config_for

    net = build_arch("unet", in_channels=3, channels=[8, 16], blocks=1, bottleneck_blocks=1)
    save_checkpoint(models_dir / "ssim-base.pt", net, noise={"name": "gaussian"},
                    training={"config": {"loss": {"reconstruction": "l2", "ssim_weight": 0.2}}},
                    metrics={"val_psnr": 0.0}, description="trained with an SSIM term")
    cfg = FinetuneConfig([str(photos)], base="ssim-base", out="mine", steps=2, patch=32, batch=2, val_fraction=0.25)
    loss = train_config_for(prepare(cfg), 2).loss
    assert (loss.reconstruction, loss.ssim_weight) == ("l2", 0.2)
    plain = train_config_for(prepare(replace(cfg, base="gaussian-color")), 2).loss  # stored no loss: plain L1
    assert (plain.reconstruction, plain.ssim_weight) == ("l1", 0.0)
