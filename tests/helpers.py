"""Helpers the tests import: the repository root, paths to ../shared data, tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; skips the test when the data is not beside the repo."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared data not found: {p}")
    return p


def make_tiny_model(path: Path, channels: int = 3, arch: str = "unet", seed: int = 0) -> Path:
    """Write a small checkpoint quickly trained enough to be a near-identity denoiser."""
    from denoiser.archs import build_arch
    from denoiser.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    cfg = {"unet": {"channels": [8, 16], "blocks": 1, "bottleneck_blocks": 1}, "dncnn": {"depth": 5, "features": 8}}
    net = build_arch(arch, in_channels=channels, **cfg.get(arch, {}))
    with torch.no_grad():  # start as an exact identity: the residual tail predicts zero noise
        if arch == "unet":
            net.tail.weight.zero_()
            net.tail.bias.zero_()
        elif arch == "dncnn":
            net.tail.weight.zero_()
            net.tail.bias.zero_()
    return save_checkpoint(path, net, noise={"name": "gaussian"}, training={"steps": 0},
                           metrics={"val_psnr": 0.0}, description="tiny test model")


def train_frozen_encoder_run(data: Path, tmp_path: Path, steps: int, **extra) -> tuple[Path, Path]:
    """A tiny base model trained on `data`, then a `--freeze-encoder` run of `steps` steps from it (lr 1e-2,
    seed 3, `extra` TrainConfig fields on top); returns the base's and the run's checkpoint paths."""
    from denoiser.progress import drain
    from denoiser.training import TrainConfig, train

    tiny = {"arch_config": {"channels": [8, 16]}, "patch": 32, "batch": 2, "val_every": 0, "val_fraction": 0.2,
            "warmup": 0}
    base, out = tmp_path / "base.pt", tmp_path / "frozen.pt"
    drain(train(TrainConfig(data=[str(data)], out=str(base), steps=2, **tiny)))
    drain(train(TrainConfig(data=[str(data)], out=str(out), steps=steps, lr=1e-2, base=str(base), freeze_encoder=True,
                            seed=3, **tiny, **extra)))
    return base, out
