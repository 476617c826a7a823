"""Shared fixtures: tiny models (fast on the CPU), isolated user-model folder, paths to ../shared data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated user models folder holding tiny `photo`, `gaussian-color` and `gaussian-gray` models."""
    d = tmp_path / "user-models"
    d.mkdir()
    monkeypatch.setenv("DENOISER_MODELS_DIR", str(d))
    make_tiny_model(d / "photo.pt", 3)
    make_tiny_model(d / "gaussian-color.pt", 3)
    make_tiny_model(d / "gaussian-gray.pt", 1)
    return d


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(1234)
