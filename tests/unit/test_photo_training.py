"""The photo model's training data: camera noise that keeps detail, noise-free and over-exposed samples,
real noisy/clean pairs held out by whole scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.data import PairSampler, find_pairs, real_validation_crops, split_pairs
from denoiser.errors import DenoiserError
from denoiser.noise import apply_noise, camera, reduce_chroma_noise, sharpen_noise
from denoiser.progress import drain
from denoiser.training import NoiseConfig, StepBatches, TrainConfig, make_noisy, train, training_precision
from denoiser.training.synthesis import expose


def textured(h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.random((1, 3, h, w)).astype(np.float32) * 0.9 + 0.05)


def test_camera_noise_at_zero_level_returns_the_image_itself() -> None:
    x = textured()
    same = apply_noise(x, "camera", torch.Generator().manual_seed(0), shot=0.0, read=0.0)
    assert torch.allclose(same, x, atol=1e-6)  # nothing to undo but noise: no demosaicing left in the target
    developed = apply_noise(x, "camera", torch.Generator().manual_seed(0), shot=0.0, read=0.0, keep_detail=0)
    assert (developed - x).pow(2).mean().sqrt() * 255 > 5  # the bilinear develop the old recipe taught to undo
    noisy = apply_noise(x, "camera", torch.Generator().manual_seed(0), level=0.8)
    assert 2 < (noisy - x).std() * 255 < 60 and 0 <= noisy.min() and noisy.max() <= 1


def test_noise_free_share_and_exposure() -> None:
    clean = textured(32, 32).expand(8, -1, -1, -1).contiguous()
    noisy, sigma = make_noisy(clean, NoiseConfig(sigma_range=(25, 25), clip_prob=0.0, clean_prob=1.0),
                              torch.Generator().manual_seed(0))
    assert torch.equal(noisy, clean) and torch.equal(sigma, torch.zeros(8))
    noisy, _ = make_noisy(clean, NoiseConfig(sigma_range=(25, 25), clip_prob=0.0, clean_prob=0.0),
                          torch.Generator().manual_seed(0))
    assert (noisy - clean).abs().min(dim=1).values.mean() > 0
    bright = expose(clean, NoiseConfig(exposure_prob=1.0, exposure_range=(2.0, 2.0)), np.random.default_rng(0))
    assert bright.max() == 1.0 and (bright == 1.0).float().mean() > 0.3
    assert torch.equal(expose(clean, NoiseConfig(), np.random.default_rng(0)), clean)


def lag_correlation(noise: torch.Tensor, lag: int) -> float:
    """Horizontal autocorrelation of the channel-mean of a (B, C, H, W) noise batch at `lag` pixels."""
    y = noise.mean(dim=1)
    y = y - y.mean()
    return float((y[..., lag:] * y[..., :-lag]).mean() / (y * y).mean())


def grey(n: int = 4, size: int = 96) -> torch.Tensor:
    return torch.full((n, 3, size, size), 0.45)


def test_white_mix_spans_demosaiced_to_per_pixel_noise() -> None:
    clean = grey()
    cfg = {"name": "camera", "level_range": (0.7, 0.7), "clip_prob": 0.0}
    demosaiced, _ = make_noisy(clean, NoiseConfig(**cfg), torch.Generator().manual_seed(0))
    white, _ = make_noisy(clean, NoiseConfig(**cfg, white_prob=1.0, white_range=(1.0, 1.0)),
                          torch.Generator().manual_seed(0))
    half, _ = make_noisy(clean, NoiseConfig(**cfg, white_prob=1.0, white_range=(0.5, 0.5)),
                         torch.Generator().manual_seed(0))
    c_dem, c_white, c_half = (lag_correlation(n - clean, 1) for n in (demosaiced, white, half))
    assert c_dem > 0.45 and abs(c_white) < 0.05 and c_white + 0.1 < c_half < c_dem - 0.1
    same, _ = make_noisy(clean, NoiseConfig(**cfg, white_prob=1.0, white_range=(0.0, 0.0)),
                         torch.Generator().manual_seed(0))
    assert lag_correlation(same - clean, 1) == pytest.approx(c_dem, abs=0.02)  # share 0: demosaiced noise only


def test_white_share_adds_no_shadow_bias_of_its_own() -> None:
    # Both parts of the noise are added in linear light before the one clip: in the shadows the mix
    # brightens no more than either kind alone (mixing two separately clipped images brightened more,
    # and taught the model to darken clean photos).
    dark = torch.full((8, 3, 64, 64), 0.03)

    def bias(white: float) -> float:
        noisy = apply_noise(dark, "camera", torch.Generator().manual_seed(3), level=0.9, white=white)
        return float((noisy - dark).mean())

    ends = max(bias(0.0), bias(1.0))
    assert 0 < bias(0.5) <= ends * 1.05
    assert torch.equal(apply_noise(dark, "camera", torch.Generator().manual_seed(3), level=0.9),
                       apply_noise(dark, "camera", torch.Generator().manual_seed(3), level=0.9, white=0.0))
    per_image = camera(dark[:2], torch.Generator().manual_seed(3), level=0.9, white=torch.tensor([0.0, 1.0]))
    assert lag_correlation(per_image[:1] - dark[:1], 1) > lag_correlation(per_image[1:] - dark[1:], 1) + 0.3


def test_sharpened_noise_is_stronger_and_anticorrelated_at_two_pixels() -> None:
    clean = grey()
    noisy = apply_noise(clean, "camera", torch.Generator().manual_seed(0), level=0.7)
    sharp = sharpen_noise(noisy, clean, 1.0)
    assert (sharp - clean).std() > 1.2 * (noisy - clean).std()
    assert lag_correlation(sharp - clean, 2) < lag_correlation(noisy - clean, 2) - 0.1
    assert lag_correlation(sharp - clean, 2) < 0
    assert torch.equal(sharpen_noise(noisy, clean, 0.0), noisy)
    assert torch.allclose(sharpen_noise(clean, clean, 1.0), clean)  # the image's own detail is not sharpened
    picked, _ = make_noisy(clean, NoiseConfig(name="camera", level_range=(0.7, 0.7), clip_prob=0.0,
                                              sharpen_prob=1.0, sharpen_range=(1.0, 1.0)),
                           torch.Generator().manual_seed(0))
    assert lag_correlation(picked - clean, 2) < 0


def test_chroma_noise_reduction_keeps_the_luma_grain() -> None:
    clean = grey()
    noisy = apply_noise(clean, "camera", torch.Generator().manual_seed(0), level=0.7)
    noise = noisy - clean
    reduced = reduce_chroma_noise(noisy, clean, torch.tensor([0.0, 0.5, 1.0, 0.25])) - clean
    luma = noise.mean(dim=1)
    for i, keep in enumerate((0.0, 0.5, 1.0, 0.25)):
        assert torch.allclose(reduced[i].mean(dim=0), luma[i], atol=1e-6)  # the grey grain is untouched
        chroma = (reduced[i] - reduced[i].mean(dim=0)).std() / (noise[i] - luma[i]).std()
        assert float(chroma) == pytest.approx(keep, abs=0.01)
    picked, _ = make_noisy(clean, NoiseConfig(name="camera", level_range=(0.7, 0.7), clip_prob=0.0,
                                              chroma_nr_prob=1.0, chroma_nr_range=(0.0, 0.0)),
                           torch.Generator().manual_seed(0))
    assert float((picked - picked.mean(dim=1, keepdim=True)).abs().max()) < 1e-6  # grey noise only
    gray = torch.full((2, 1, 32, 32), 0.5)
    same, _ = make_noisy(gray, NoiseConfig(name="camera", level_range=(0.7, 0.7), clip_prob=0.0, chroma_nr_prob=1.0),
                         torch.Generator().manual_seed(0))
    ref, _ = make_noisy(gray, NoiseConfig(name="camera", level_range=(0.7, 0.7), clip_prob=0.0),
                        torch.Generator().manual_seed(0))
    assert torch.equal(same, ref)  # gray images have no colour noise to reduce


@pytest.fixture
def pairs_folder(tmp_path: Path) -> Path:
    root = tmp_path / "real"
    for sub in ("noisy", "clean"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        clean = (rng.random((80, 96, 3)) * 200 + 20).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 8, clean.shape), 0, 255).astype(np.uint8)
        PILImage.fromarray(clean).save(root / "clean" / f"scene{i}.png")
        PILImage.fromarray(noisy).save(root / "noisy" / f"scene{i}.png")
    PILImage.fromarray(clean).save(root / "noisy" / "unpaired.png")
    return root


def test_pairs_are_split_by_scene_and_sampled_aligned(pairs_folder: Path) -> None:
    pairs = find_pairs([pairs_folder])
    assert len(pairs) == 5  # the unpaired file is not a pair
    train_pairs, val_pairs = split_pairs(pairs)
    assert len(val_pairs) == 1 and set(train_pairs).isdisjoint(val_pairs) and split_pairs(pairs) == (train_pairs, val_pairs)
    clean, noisy = PairSampler(train_pairs, 32, 3).sample(6, np.random.default_rng(1))
    diff = (noisy - clean) * 255
    assert clean.shape == noisy.shape == (6, 3, 32, 32) and 5 < diff.std() < 11 and abs(diff.mean()) < 1.5
    crops = real_validation_crops(val_pairs, 3, size=48)
    assert len(crops) == 3 and crops[0][0].shape == (1, 3, 48, 48)
    with pytest.raises(DenoiserError, match="noisy/ and clean/"):
        find_pairs([pairs_folder / "noisy"])


def test_each_real_folder_keeps_its_own_held_out_scenes_and_share(tmp_path: Path, pairs_folder: Path) -> None:
    big = tmp_path / "big"
    for sub in ("noisy", "clean"):
        (big / sub).mkdir(parents=True)
    rng = np.random.default_rng(3)
    for i in range(20):
        img = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
        for sub in ("noisy", "clean"):
            PILImage.fromarray(img).save(big / sub / f"b{i:02d}.png")
    alone_train, alone_val = split_pairs(find_pairs([pairs_folder]))
    train, val = split_pairs(find_pairs([pairs_folder, big]))
    assert set(alone_val) <= set(val) and set(alone_train) <= set(train)  # the second folder moves nothing
    assert set(train).isdisjoint(val) and len([p for p in val if p[0].parent.parent == big]) == 4
    sampler = PairSampler(train, 32, 3)
    draws = [sampler._draw(np.random.default_rng(s))[0].parent.parent for s in range(400)]
    share = draws.count(pairs_folder) / len(draws)
    assert 0.4 < share < 0.6  # 4 scenes beside 16 still make half the real samples
    weighted = PairSampler(train, 32, 3, weights={pairs_folder: 3.0, big: 1.0})
    draws = [weighted._draw(np.random.default_rng(s))[0].parent.parent for s in range(400)]
    assert 0.68 < draws.count(pairs_folder) / len(draws) < 0.82  # weighted 3:1, a quarter from the big one
    equal = PairSampler(train, 32, 3, weights={pairs_folder: 2.0, big: 2.0})
    assert [equal._draw(np.random.default_rng(s)) for s in range(50)] == \
        [sampler._draw(np.random.default_rng(s)) for s in range(50)]  # equal weights draw as before weights existed
    with pytest.raises(DenoiserError, match="no weight for the real pairs of"):
        PairSampler(train, 32, 3, weights={pairs_folder: 1.0})
    cfg = TrainConfig(data=["x"], out="m.pt", real_data=[str(pairs_folder), str(big)], real_share=0.5,
                      real_weights=[3, 1], patch=32, batch=8)
    batches = StepBatches(sorted((pairs_folder / "clean").glob("*.png")), cfg, real=train)
    assert batches.real.group_p is not None and list(batches.real.group_p) == [0.75, 0.25]


def test_real_weights_name_every_folder_and_come_from_the_command_line(tmp_path: Path) -> None:
    from denoiser.cli import build_parser
    from denoiser.cli.train import _train_config

    with pytest.raises(DenoiserError, match="one per folder"):
        TrainConfig(data=["x"], out="m.pt", real_data=["a", "b", "c"], real_weights=[2.0, 1.0])
    with pytest.raises(DenoiserError, match="positive"):
        TrainConfig(data=["x"], out="m.pt", real_data=["a", "b"], real_weights=[2.0, 0.0])
    argv = ["train", "--data", "d", "--out", str(tmp_path / "m.pt"), "--real-data", "a", "b", "--real-weights", "2,1"]
    cfg = _train_config(build_parser().parse_args(argv))
    assert cfg.real_weights == [2.0, 1.0] and list(cfg.folder_weights().values()) == [2.0, 1.0]
    assert TrainConfig.from_dict(cfg.to_dict()).real_weights == [2.0, 1.0]  # as a checkpoint stores it
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv[:-1], "2,-1"])


def test_batches_mix_real_pairs_deterministically(tmp_path: Path, pairs_folder: Path) -> None:
    train_pairs, _ = split_pairs(find_pairs([pairs_folder]))
    cfg = TrainConfig(data=[str(pairs_folder / "clean")], out=str(tmp_path / "m.pt"), patch=32, batch=8,
                      real_data=[str(pairs_folder)], real_share=0.25,
                      noise=NoiseConfig(name="camera", clip_prob=0.5, sigma_map="estimate", clean_prob=0.2))
    files = sorted((pairs_folder / "clean").glob("*.png"))
    a = StepBatches(files, cfg, real=train_pairs)[3]
    b = StepBatches(files, cfg, real=train_pairs)[3]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))  # a function of (seed, step) alone
    clean, noisy, sigma = a
    assert clean.shape == noisy.shape == (8, 3, 32, 32) and sigma.shape == (8,)
    real_noise = ((noisy[-2:] - clean[-2:]) * 255).std()
    assert 5 < real_noise < 11 and (sigma[-2:] * 255 > 3).all()  # the last quarter is real, told its estimate


def test_training_on_real_pairs_validates_on_the_held_out_scenes(tmp_path: Path, pairs_folder: Path) -> None:
    cfg = TrainConfig(data=[str(pairs_folder / "clean")], out=str(tmp_path / "m.pt"), arch_config={"channels": [8, 16]},
                      patch=32, batch=4, steps=4, warmup=1, val_every=2, checkpoint_every=2, log_every=2,
                      real_data=[str(pairs_folder)], real_share=0.5, precision="fp32",
                      noise=NoiseConfig(name="camera", sigma_map="estimate", exposure_prob=0.5, clean_prob=0.1))
    out = drain(train(cfg))
    info = torch.load(out, weights_only=True)["training"]
    assert len(info["real_val_scenes"]) == 1 and info["real_val_scenes"][0] not in info["real_train_scenes"]


def test_val_on_real_validates_and_chooses_on_the_held_out_scenes_alone(tmp_path: Path, pairs_folder: Path) -> None:
    from denoiser.training.validation import validate, validation_pairs

    _, real_val = split_pairs(find_pairs([pairs_folder]))
    files = sorted((pairs_folder / "clean").glob("*.png"))
    base = dict(data=[str(pairs_folder / "clean")], out=str(tmp_path / "m.pt"), real_data=[str(pairs_folder)],
                real_share=0.5, noise=NoiseConfig(name="camera", sigma_map="estimate"))
    mixed = validation_pairs(files, TrainConfig(**base), real_val)
    real = validation_pairs(files, TrainConfig(**base, val_on="real"), real_val)
    crops = real_validation_crops(real_val, 3)
    assert len(real) == len(crops) == 3 and len(mixed) == len(files) + len(crops)
    assert all(torch.equal(r[1], c[1]) for r, c in zip(real, crops, strict=True))  # the real noisy crops, nothing else
    cfg = TrainConfig(**{**base, "arch_config": {"channels": [8, 16]}, "patch": 32, "batch": 4, "steps": 2,
                         "warmup": 1, "val_every": 2, "checkpoint_every": 2, "log_every": 1, "precision": "fp32"},
                      val_on="real")
    out = drain(train(cfg))
    ck = torch.load(out, weights_only=True)
    assert ck["training"]["config"]["val_on"] == "real"
    from denoiser.checkpoint import load_checkpoint

    net = load_checkpoint(out).net.float()
    assert ck["metrics"]["val_psnr"] == pytest.approx(validate(net, real, torch.device("cpu")), abs=1e-4)


def test_val_on_is_checked(tmp_path: Path, pairs_folder: Path) -> None:
    with pytest.raises(DenoiserError, match="val_on must be one of all, real"):
        TrainConfig(data=["x"], out="m.pt", val_on="synthetic")
    cfg = TrainConfig(data=[str(pairs_folder / "clean")], out=str(tmp_path / "m.pt"), val_on="real")
    with pytest.raises(DenoiserError, match="give real_data"):
        drain(train(cfg))


def test_cli_val_on_reaches_the_config(tmp_path: Path) -> None:
    from denoiser.cli import build_parser
    from denoiser.cli.train import _train_config

    argv = ["train", "--data", "d", "--out", str(tmp_path / "m.pt"), "--real-data", "r", "--val-on", "real"]
    assert _train_config(build_parser().parse_args(argv)).val_on == "real"
    assert _train_config(build_parser().parse_args(argv[:-2])).val_on == "all"


def test_training_precision_follows_the_device(monkeypatch: pytest.MonkeyPatch) -> None:
    from denoiser.training import trainer as tr

    cpu = torch.device("cpu")
    monkeypatch.setattr(tr, "cpu_has_native_bf16", lambda: False)
    assert training_precision("auto", cpu)[0] is False
    monkeypatch.setattr(tr, "cpu_has_native_bf16", lambda: True)
    assert training_precision("auto", cpu) == (True, torch.bfloat16)
    assert training_precision("fp32", cpu)[0] is False
    with pytest.raises(DenoiserError, match="precision"):
        training_precision("int8", cpu)


def test_develop_share_softens_only_noisy_samples() -> None:
    x = textured().expand(2, -1, -1, -1).contiguous()
    cfg = {"name": "camera", "clip_prob": 0.0, "develop_prob": 1.0, "develop_range": (1.0, 1.0)}

    def same_draws(level: float, keep_detail: float) -> torch.Tensor:
        g = torch.Generator().manual_seed(0)
        for _ in range(3):  # make_noisy's draws before the camera's: the levels, then which samples, and D
            torch.rand(2, generator=g)
        return camera(x, g, level=level, keep_detail=keep_detail)

    quiet, _ = make_noisy(x, NoiseConfig(**cfg, level_range=(0.0, 0.0)), torch.Generator().manual_seed(0))
    assert torch.allclose(quiet, same_draws(0.0, 1.0), atol=1e-6)  # at the lowest level the detail is all kept
    loud, _ = make_noisy(x, NoiseConfig(**cfg, level_range=(1.0, 1.0)), torch.Generator().manual_seed(0))
    soft, sharp = same_draws(1.0, 0.0), same_draws(1.0, 1.0)
    assert torch.allclose(loud, soft, atol=1e-6) and float((loud - sharp).abs().mean()) > 0.01  # the plain develop
    half = camera(x, torch.Generator().manual_seed(0), level=1.0, keep_detail=torch.tensor([0.0, 1.0]))
    soft0 = camera(x, torch.Generator().manual_seed(0), level=1.0, keep_detail=0.0)
    sharp0 = camera(x, torch.Generator().manual_seed(0), level=1.0, keep_detail=1.0)
    assert torch.allclose(half[0], soft0[0], atol=1e-6) and torch.allclose(half[1], sharp0[1], atol=1e-6)


def test_white_balance_share_amplifies_red_and_blue_noise_apart() -> None:
    clean = grey(4)

    def red_over_green(factor: float) -> float:
        noisy, _ = make_noisy(clean, NoiseConfig(name="camera", level_range=(0.6, 0.6), clip_prob=0.0, wb_prob=1.0,
                                                 wb_range=(factor, factor)), torch.Generator().manual_seed(0))
        noise = noisy - clean
        return float(noise[:, 0].std() / noise[:, 1].std())

    daylight, _ = make_noisy(clean, NoiseConfig(name="camera", level_range=(0.6, 0.6), clip_prob=0.0),
                             torch.Generator().manual_seed(0))
    assert red_over_green(0.7) < float((daylight - clean)[:, 0].std() / (daylight - clean)[:, 1].std()) < red_over_green(1.4)
    tungsten = torch.tensor([[1.4, 1.0, 2.5]]).expand(4, -1)
    assert torch.allclose(camera(textured(), shot=0.0, read=0.0, wb_gains=tungsten[:1]), textured(), atol=1e-5)  # no cast


def test_noise_free_samples_can_be_told_their_blind_estimate() -> None:
    from denoiser.training.synthesis import estimated_sigmas

    clean = textured(48, 48).expand(4, -1, -1, -1).contiguous()
    cfg = NoiseConfig(sigma_range=(25, 25), clip_prob=0.0, clean_prob=1.0, clean_sigma="estimate")
    noisy, sigma = make_noisy(clean, cfg, torch.Generator().manual_seed(0))
    assert torch.equal(noisy, clean)  # still noise-free, but told what auto σ reads on the texture
    assert torch.allclose(sigma, estimated_sigmas(clean)) and (sigma > 0).all()
    cfg = NoiseConfig(sigma_range=(25, 25), clip_prob=0.0, clean_prob=0.0, clean_sigma="estimate")
    _, sigma = make_noisy(clean, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(sigma, torch.full((4,), 25 / 255))  # noisy samples keep their true σ


def _all_channels_alike(x: torch.Tensor) -> torch.Tensor:
    """Per sample of an (N, 3, H, W) batch: whether its three channels are one (a black-and-white image)."""
    return ((x[:, 0] == x[:, 1]) & (x[:, 1] == x[:, 2])).flatten(1).all(dim=1)


def test_gray_samples_are_black_and_white_photos_in_and_out(tmp_path: Path, pairs_folder: Path) -> None:
    from denoiser.training.synthesis import estimated_sigmas

    train_pairs, _ = split_pairs(find_pairs([pairs_folder]))
    files = sorted((pairs_folder / "clean").glob("*.png"))
    noise = NoiseConfig(name="camera", clip_prob=0.0, sigma_map="estimate", gray_prob=1.0)
    cfg = TrainConfig(data=[str(pairs_folder / "clean")], out=str(tmp_path / "m.pt"), patch=32, batch=8,
                      real_data=[str(pairs_folder)], real_share=0.25, noise=noise)
    clean, noisy, sigma = StepBatches(files, cfg, real=train_pairs)[2]
    assert bool(_all_channels_alike(clean).all()) and bool(_all_channels_alike(noisy).all())  # rendered and real
    assert bool(((noisy - clean).abs().flatten(1).amax(dim=1) > 0).all())  # noise kept, only its colour gone
    torch.testing.assert_close(sigma, estimated_sigmas(noisy))  # told what auto σ reads on the grey input
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    plain = TrainConfig(**{**cfg.__dict__, "noise": NoiseConfig(**{**noise.__dict__, "gray_prob": 0.0})})
    colour_clean, colour_noisy, colour_sigma = StepBatches(files, plain, real=train_pairs)[2]
    torch.testing.assert_close(clean[:, :1], (colour_clean * weights).sum(1, keepdim=True))  # the luma of the same draw
    torch.testing.assert_close(noisy[:, :1], (colour_noisy * weights).sum(1, keepdim=True))
    assert not bool(_all_channels_alike(colour_noisy).any())  # gray_prob 0: colour as before, and no draw
    half = TrainConfig(**{**cfg.__dict__, "noise": NoiseConfig(**{**noise.__dict__, "gray_prob": 0.5})})
    picks = [_all_channels_alike(StepBatches(files, half, real=train_pairs)[s][1]) for s in range(6)]
    share = float(torch.cat(picks).float().mean())
    assert 0.25 < share < 0.75
    again = [_all_channels_alike(StepBatches(files, half, real=train_pairs)[s][1]) for s in range(6)]
    assert all(torch.equal(a, b) for a, b in zip(picks, again, strict=True))  # a function of (seed, step)


def test_gray_prob_comes_from_the_command_line_and_is_stored(tmp_path: Path) -> None:
    from denoiser.cli import build_parser
    from denoiser.cli.train import _train_config

    argv = ["train", "--data", "d", "--out", str(tmp_path / "m.pt"), "--noise", "camera", "--gray-prob", "0.2"]
    cfg = _train_config(build_parser().parse_args(argv))
    assert cfg.noise.gray_prob == 0.2 and TrainConfig.from_dict(cfg.to_dict()).noise.gray_prob == 0.2
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv[:-1], "1.5"])


def test_colour_matrix_share_mixes_the_sensor_noise_of_picked_samples_only() -> None:
    """--ccm-prob: a picked sample's noise comes out mixed across R, G and B (R and G anti-correlated) as a
    camera's colour correction leaves it; the others' is as before, and 0 makes no draw (batches unchanged)."""
    clean = grey(8)

    def rg_corr(noisy: torch.Tensor) -> torch.Tensor:
        n = (noisy - clean).flatten(2)
        n = n - n.mean(dim=2, keepdim=True)
        return (n[:, 0] * n[:, 1]).mean(1) / (n[:, 0].std(1) * n[:, 1].std(1))

    base = NoiseConfig(name="camera", level_range=(0.6, 0.6), clip_prob=0.0)
    plain, _ = make_noisy(clean, base, torch.Generator().manual_seed(0))
    mixed, _ = make_noisy(clean, NoiseConfig(**{**base.__dict__, "ccm_prob": 1.0}), torch.Generator().manual_seed(0))
    assert bool((rg_corr(plain).abs() < 0.15).all()) and bool((rg_corr(mixed) < -0.15).all())
    again, _ = make_noisy(clean, NoiseConfig(**{**base.__dict__, "ccm_prob": 0.0}), torch.Generator().manual_seed(0))
    assert torch.equal(again, plain)
    half, _ = make_noisy(clean, NoiseConfig(**{**base.__dict__, "ccm_prob": 0.5}), torch.Generator().manual_seed(4))
    picked = rg_corr(half) < -0.15
    assert 0 < int(picked.sum()) < 8 and bool((rg_corr(half)[~picked].abs() < 0.15).all())
    from denoiser.cli import build_parser
    from denoiser.cli.train import _train_config

    cfg = _train_config(build_parser().parse_args(["train", "--data", "d", "--out", "m.pt", "--ccm-prob", "0.3"]))
    assert cfg.noise.ccm_prob == 0.3 and TrainConfig.from_dict(cfg.to_dict()).noise.ccm_prob == 0.3
