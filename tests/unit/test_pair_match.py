"""Real pairs whose clean image differs from the noisy shot at low frequencies (light, exposure, tone)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.data import PairSampler, real_validation_crops
from denoiser.errors import DenoiserError
from denoiser.pair_match import low_frequency_mismatch, match_low_frequencies
from denoiser.training import TrainConfig


def _scene(h: int = 96, w: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(signal, noisy shot of it, clean image shot under other light: the signal plus a smooth field)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    signal = 110 + 60 * ((xx // 8 + yy // 8) % 2)[..., None] + np.array([0.0, 10.0, -10.0])  # sharp detail
    field = 12 * np.sin(xx / w * np.pi)[..., None] - 6  # −6 … +6 levels, smooth
    noisy = np.clip(signal + rng.normal(0, 8, signal.shape), 0, 255).round().astype(np.uint8)
    clean = np.clip(signal + field, 0, 255).round().astype(np.uint8)
    return signal, noisy, clean


def test_matched_target_keeps_the_noisy_shots_light_and_the_clean_detail() -> None:
    signal, noisy, clean = _scene()
    out = match_low_frequencies(noisy, clean, 8.0)
    assert out.dtype == np.uint8 and out.shape == clean.shape
    inner = np.s_[16:-16, 16:-16]  # away from the borders, where the mirrored blur is less exact
    before = np.sqrt(np.mean((clean[inner] - signal[inner]) ** 2))
    after = np.sqrt(np.mean((out[inner] - signal[inner]) ** 2))
    assert before > 3.5 and after < 1.5  # the field is gone, and little of the noise came in with it
    assert low_frequency_mismatch(noisy, clean, 8.0).min() > 3  # it measures the field


def test_a_pair_that_agrees_is_left_almost_as_it_is() -> None:
    signal, noisy, _ = _scene(seed=1)
    clean = signal.round().astype(np.uint8)
    out = match_low_frequencies(noisy, clean, 8.0)
    assert np.sqrt(np.mean((out.astype(float) - clean) ** 2)) < 1.0
    assert low_frequency_mismatch(noisy, clean, 8.0).max() < 1.0


def test_pairs_of_other_sizes_and_depths() -> None:
    _, noisy, clean = _scene()
    deep = clean.astype(np.uint16) * 257
    out = match_low_frequencies(noisy[:90], deep, 4.0)  # 8-bit shot, 16-bit clean, one row short
    assert out.dtype == np.uint16 and out.shape == (90, 128, 3)
    assert abs(float(out.mean()) / 257 - float(noisy[:90].mean())) < 0.5  # the shot's brightness
    with pytest.raises(ValueError, match="radius"):
        match_low_frequencies(noisy, clean, 0.0)


@pytest.fixture
def shifted_pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    root = tmp_path / "real"
    for sub in ("noisy", "clean"):
        (root / sub).mkdir(parents=True)
    pairs = []
    for i in range(2):
        _, noisy, clean = _scene(seed=10 + i)
        PILImage.fromarray(noisy).save(root / "noisy" / f"s{i}.png")
        PILImage.fromarray(clean).save(root / "clean" / f"s{i}.png")
        pairs.append((root / "noisy" / f"s{i}.png", root / "clean" / f"s{i}.png"))
    return pairs


def test_sampler_and_validation_use_the_matched_targets(shifted_pairs: list[tuple[Path, Path]]) -> None:
    def bias(clean: torch.Tensor, noisy: torch.Tensor) -> float:  # mean |noisy − clean| over 32-px patches
        return float(((noisy - clean).mean(dim=(2, 3)) * 255).abs().mean())

    plain = PairSampler(shifted_pairs, 32, 3).sample(64, np.random.default_rng(0))
    matched = PairSampler(shifted_pairs, 32, 3, match_radius=8.0).sample(64, np.random.default_rng(0))
    assert torch.equal(plain[1], matched[1])  # the same noisy patches, the targets differ
    assert bias(*plain) > 2.5 and bias(*matched) < 1.5
    crops = real_validation_crops(shifted_pairs, 3, size=64, per_image=1)
    matched_crops = real_validation_crops(shifted_pairs, 3, size=64, per_image=1, match_radius=8.0)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(crops, matched_crops, strict=True))
    assert np.mean([bias(c, n) for c, n in matched_crops]) < np.mean([bias(c, n) for c, n in crops])


def test_match_radius_is_checked_and_reaches_the_config(tmp_path: Path) -> None:
    from denoiser.cli import build_parser
    from denoiser.cli.train import _train_config

    with pytest.raises(DenoiserError, match="real_match_radius"):
        TrainConfig(data=["x"], out="m.pt", real_match_radius=-1.0)
    argv = ["train", "--data", "d", "--out", str(tmp_path / "m.pt"), "--real-data", "r", "--real-match-radius", "8"]
    assert _train_config(build_parser().parse_args(argv)).real_match_radius == 8.0


def _pair_folder(root: Path, seed: int) -> list[tuple[Path, Path]]:
    """A real-pair folder of one scene whose clean image carries a smooth field (see `_scene`)."""
    for sub in ("noisy", "clean"):
        (root / sub).mkdir(parents=True)
    _, noisy, clean = _scene(seed=seed)
    PILImage.fromarray(noisy).save(root / "noisy" / "s.png")
    PILImage.fromarray(clean).save(root / "clean" / "s.png")
    return [(root / "noisy" / "s.png", root / "clean" / "s.png")]


def test_each_folder_can_have_its_own_radius(tmp_path: Path) -> None:
    """Captured pairs are matched and rendered ones (which agree in light already) are kept as they are."""
    captured, rendered = _pair_folder(tmp_path / "captured", 20), _pair_folder(tmp_path / "rendered", 21)
    cfg = TrainConfig(data=["x"], out="m.pt", real_data=[str(tmp_path / "captured"), str(tmp_path / "rendered")],
                      real_match_radius=[8, 0])
    radii = cfg.match_radii()
    assert cfg.real_match_radius == [8.0, 0.0] and sorted(radii.values()) == [0.0, 8.0]
    sampler = PairSampler(captured + rendered, 32, 3, match_radius=radii)
    sampler.sample(32, np.random.default_rng(0))
    assert set(sampler.targets) == {captured[0][1]}  # only the captured pair got a matched target
    stored = np.asarray(PILImage.open(captured[0][1]))
    assert np.abs(sampler.targets[captured[0][1]].astype(float) - stored).mean() > 2
    crops = real_validation_crops(captured + rendered, 3, size=64, per_image=1, match_radius=radii)
    plain = real_validation_crops(captured + rendered, 3, size=64, per_image=1)
    assert not torch.equal(crops[0][0], plain[0][0]) and torch.equal(crops[1][0], plain[1][0])


def test_a_radius_list_must_name_every_folder(tmp_path: Path) -> None:
    from denoiser.cli import build_parser
    from denoiser.cli.train import _train_config

    with pytest.raises(DenoiserError, match="one per folder"):
        TrainConfig(data=["x"], out="m.pt", real_data=["a", "b", "c"], real_match_radius=[8.0, 0.0])
    with pytest.raises(DenoiserError, match="real_match_radius"):
        TrainConfig(data=["x"], out="m.pt", real_data=["a", "b"], real_match_radius=[8.0, -1.0])
    argv = ["train", "--data", "d", "--out", str(tmp_path / "m.pt"), "--real-data", "a", "b",
            "--real-match-radius", "8,0"]
    cfg = _train_config(build_parser().parse_args(argv))
    assert cfg.real_match_radius == [8.0, 0.0]
    assert TrainConfig.from_dict(cfg.to_dict()).real_match_radius == [8.0, 0.0]  # as a checkpoint stores it
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv[:-1] + ["8,x"])
