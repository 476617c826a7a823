from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.checkpoint import read_info
from denoiser.data import PatchSampler, find_images, split_train_val
from denoiser.losses import LossConfig
from denoiser.progress import drain
from denoiser.train import NoiseConfig, TrainConfig, make_noisy, state_path, train


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    yy, xx = np.mgrid[0:64, 0:80]
    for i in range(6):
        a = (127 + 100 * np.sin(xx / (4 + i)) * np.cos(yy / 7))[..., None] * np.array([1.0, 0.8, 0.6])
        PILImage.fromarray(a.clip(0, 255).astype(np.uint8)).save(d / f"{i}.png")
    (d / "notes.txt").write_text("not an image")
    return d


def test_split_is_seeded_disjoint_and_keeps_one_val(folder):
    files = find_images([folder])
    assert len(files) == 6
    tr, va = split_train_val(files, 0.2, seed=1)
    assert set(tr).isdisjoint(va) and len(va) == 1 and len(tr) + len(va) == 6
    assert split_train_val(files, 0.2, seed=1) == (tr, va)


def test_patch_sampler_shapes_and_small_images(folder):
    s = PatchSampler(find_images([folder]), patch=96, channels=1, seed=0)
    b = s.sample(3)
    assert b.shape == (3, 1, 96, 96) and 0 <= b.min() and b.max() <= 1


def test_make_noisy_gaussian_and_camera_maps():
    clean = torch.full((4, 3, 32, 32), 0.5)
    g = torch.Generator().manual_seed(0)
    noisy, sigma = make_noisy(clean, NoiseConfig(sigma_range=(10, 10), clip_prob=0), g)
    assert torch.allclose(sigma, torch.full((4,), 10 / 255))
    assert (noisy - clean).std().item() * 255 == pytest.approx(10, rel=0.05)
    noisy, sigma = make_noisy(clean, NoiseConfig(sigma_range=(30, 30), clip_prob=1.0), g)
    assert torch.equal(noisy, (noisy * 255).round() / 255) and noisy.max() <= 1
    cam, cs = make_noisy(clean, NoiseConfig(name="camera", level_range=(0.7, 0.7), jpeg_prob=1.0, sigma_map="estimate"), g)
    assert cam.shape == clean.shape and (cs > 0).all()


def test_training_runs_improves_saves_and_resumes_exactly(folder, tmp_path):
    out = tmp_path / "m.pt"
    cfg = TrainConfig(data=[str(folder)], out=str(out), arch_config={"channels": [8, 16]}, patch=32, batch=4,
                      steps=12, lr=2e-3, warmup=2, val_every=6, checkpoint_every=6, log_every=3, val_fraction=0.2,
                      noise=NoiseConfig(sigma_range=(20, 30)))
    events = []
    gen = train(cfg)
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            assert stop.value == out
            break
    vals = [e.data["val_psnr"] for e in events if "val_psnr" in e.data]
    assert len(vals) == 2 and all(np.isfinite(vals))
    assert events[-1].done == 12 and "images_per_s" in events[-1].data and "eta_s" in events[-1].data
    info = read_info(out)
    assert info.training["steps"] in (6, 12) and info.metrics["val_psnr"] == max(vals)
    # an interrupted run resumed from its state file ends where an uninterrupted one ends
    cfg_a = TrainConfig(**{**cfg.__dict__, "out": str(tmp_path / "a.pt"), "steps": 8, "val_every": 100})
    cfg_b = TrainConfig(**{**cfg_a.__dict__, "out": str(tmp_path / "b.pt")})
    drain(train(cfg_a))
    gen_b = train(cfg_b)
    for _ in range(2):
        next(gen_b)  # log events at steps 3 and 6
    gen_b.close()  # cancel: the state file is written at the stop
    drain(train(TrainConfig(**{**cfg_b.__dict__, "resume": str(state_path(cfg_b.out))})))
    sa = torch.load(state_path(cfg_a.out), weights_only=False)["model"]
    sb = torch.load(state_path(cfg_b.out), weights_only=False)["model"]
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k])


def test_sparsity_and_robustness_terms_train(folder, tmp_path):
    cfg = TrainConfig(data=[str(folder)], out=str(tmp_path / "ae.pt"), arch="conv-ae",
                      arch_config={"width": 8, "depth": 1, "code_channels": 8}, patch=32, batch=4, steps=3,
                      val_every=3, loss=LossConfig("l2", robustness_lambda=1.0, sparsity_beta=0.1))
    assert drain(train(cfg)).exists()
