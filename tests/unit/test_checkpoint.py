from pathlib import Path

import pytest
import torch

from denoiser.archs import build_arch
from denoiser.checkpoint import (
    FORMAT_VERSION,
    list_models,
    load_checkpoint,
    load_model,
    read_info,
    resolve_model,
    save_checkpoint,
    user_models_dir,
)
from denoiser.errors import CheckpointError, ModelNotFoundError


def test_round_trip_rebuilds_the_same_model(tmp_path: Path):
    torch.manual_seed(0)
    net = build_arch("unet", channels=[8, 16])
    path = save_checkpoint(tmp_path / "m.pt", net, noise={"name": "gaussian", "sigma_range": (0, 75)},
                           training={"steps": 12, "data": [Path("/x")]}, metrics={"val_psnr": 30.5}, description="d")
    payload = torch.load(path, weights_only=True)
    assert payload["format_version"] == FORMAT_VERSION and payload["arch"] == "unet"
    loaded = load_checkpoint(path)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded.net(x, torch.tensor([0.1])), net.eval()(x, torch.tensor([0.1])))
    info = read_info(path)
    assert info.metrics["val_psnr"] == 30.5 and info.training["steps"] == 12 and info.description == "d"
    assert not list(tmp_path.glob(".*tmp"))


def test_half_precision_storage_halves_the_file(tmp_path: Path):
    net = build_arch("unet", channels=[16, 32])
    full = save_checkpoint(tmp_path / "f.pt", net).stat().st_size
    half = save_checkpoint(tmp_path / "h.pt", net, half=True).stat().st_size
    assert half < 0.6 * full
    out = load_checkpoint(tmp_path / "h.pt").net
    assert next(out.parameters()).dtype == torch.float32


def test_corrupt_and_foreign_files_raise_clear_errors(tmp_path: Path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="format_version"):
        load_checkpoint(foreign)
    with pytest.raises(ModelNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_registry_resolves_names_aliases_and_channels(models_dir: Path):
    assert user_models_dir() == models_dir
    assert resolve_model("default") == models_dir / "photo.pt"
    assert resolve_model("gaussian", channels=1) == models_dir / "gaussian-gray.pt"
    assert resolve_model("gaussian", channels=3) == models_dir / "gaussian-color.pt"
    assert load_model("gaussian", channels=1).net.in_channels == 1
    names = {m.name for m in list_models() if m.source == "user"}
    assert names == {"photo", "gaussian-color", "gaussian-gray"}
    with pytest.raises(ModelNotFoundError, match="no model named"):
        resolve_model("nope")
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(str(models_dir / "nope.pt"))


def test_broken_user_model_does_not_hide_the_others(models_dir: Path):
    (models_dir / "broken.pt").write_bytes(b"junk")
    names = {m.name for m in list_models()}
    assert "broken" not in names and "photo" in names


def test_user_model_shadows_the_bundled_one_of_the_same_name(models_dir: Path):
    listed = [m for m in list_models() if m.name == "photo"]
    assert len(listed) == 1 and listed[0].source == "user"
    assert load_model("photo").info.path == models_dir / "photo.pt"
