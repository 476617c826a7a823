"""Training on torchrun: two gloo processes take the step one process takes on the whole batch."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.training import TrainConfig, state_path, train
from tests.helpers import REPO, shared_data

pytestmark = pytest.mark.slow  # the slow tier: `pytest -m slow` (scripts/run-tests.sh runs both)


FLAGS = ["--arch-config", '{"channels": [8, 16]}', "--patch", "32", "--batch", "4", "--steps", "6", "--lr", "2e-3",
         "--warmup", "2", "--val-every", "3", "--checkpoint-every", "3", "--threads", "1",
         "--device", "cpu", "--precision", "fp32", "--seed", "5", "--sigma-range", "10,40"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("crops")
    for f in sorted(shared_data("test", "Kodak24").glob("*.png"))[:6]:
        PILImage.open(f).convert("RGB").crop((0, 0, 96, 96)).save(folder / f.name)
    return folder


def run(*args: str, processes: int = 1) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
                 "-m", "denoiser"] if processes > 1 else [sys.executable, "-m", "denoiser"])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([*launcher, "train", *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def state(out: Path) -> dict:
    return torch.load(state_path(out), map_location="cpu", weights_only=False)


def test_two_processes_train_as_one_and_resume_across_a_change_of_process_count(photos, tmp_path) -> None:
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    run("--data", str(photos), "--out", str(one), *FLAGS)
    res = run("--data", str(photos), "--out", str(two), *FLAGS, processes=2)
    assert res.stderr.count("step 6/6") == 1 and res.stdout.count("saved") == 1  # only rank 0 reports
    a, b = state(one), state(two)
    assert a["step"] == b["step"] == 6
    assert [h[0] for h in a["history"]] == [h[0] for h in b["history"]] == [3, 6]
    for (_, loss_a, val_a), (_, loss_b, val_b) in zip(a["history"], b["history"], strict=True):
        assert loss_b == pytest.approx(loss_a, rel=1e-4) and val_b == pytest.approx(val_a, abs=1e-3)
    for name, w in a["model"].items():
        torch.testing.assert_close(b["model"][name], w, rtol=1e-4, atol=1e-5, msg=name)
    # stopped after 3 steps by one process, resumed by two: ends where the uninterrupted run ends
    cfg = TrainConfig.from_dict(a["config"])
    cfg.out, cfg.log_every = str(tmp_path / "resumed.pt"), 1
    gen = train(cfg)
    for _ in range(3):
        next(gen)  # the log events of steps 1–3
    gen.close()
    assert state(Path(cfg.out))["step"] == 3
    run("--data", str(photos), "--out", cfg.out, *FLAGS, "--resume", str(state_path(cfg.out)), processes=2)
    resumed = state(Path(cfg.out))
    assert resumed["step"] == 6
    for name, w in a["model"].items():
        torch.testing.assert_close(resumed["model"][name], w, rtol=1e-4, atol=1e-5, msg=name)


def finetune(*args: str, processes: int = 1) -> subprocess.CompletedProcess:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
                 "-m", "denoiser"] if processes > 1 else [sys.executable, "-m", "denoiser"])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([*launcher, "finetune", *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def test_finetune_on_two_processes_matches_one_and_rank_0_alone_reports(photos, tmp_path) -> None:
    from tests.helpers import make_tiny_model

    base = make_tiny_model(tmp_path / "base.pt")
    flags = ["--base", str(base), "--steps", "4", "--patch", "32", "--batch", "4", "--threads", "1",
             "--device", "cpu", "--precision", "fp32", "--seed", "3", "--val-fraction", "0.34", "--lr", "1e-3"]
    one, two = tmp_path / "one.pt", tmp_path / "two.pt"
    finetune(str(photos), "-o", str(one), *flags)
    res = finetune(str(photos), "-o", str(two), *flags, processes=2)
    assert res.stdout.count("saved") == 1 and res.stderr.count("fine-tuning") == 1  # rank 0 speaks for all
    a, b = state(one), state(two)
    assert a["step"] == b["step"] == 4
    for name, w in a["model"].items():
        torch.testing.assert_close(b["model"][name], w, rtol=1e-4, atol=1e-5, msg=name)
    # noisy mode (its own loop): the ranks share each step's patches and rank 0 writes the model and its card
    noisy = tmp_path / "noisy"
    noisy.mkdir()
    rng = np.random.default_rng(0)
    for f in sorted(photos.glob("*.png")):
        x = np.asarray(PILImage.open(f), dtype=np.float32) + rng.normal(0, 20, (96, 96, 3))
        PILImage.fromarray(np.clip(x, 0, 255).astype(np.uint8)).save(noisy / f.name)
    out = tmp_path / "n2n.pt"
    res = finetune(str(noisy), "-o", str(out), "--mode", "noisy", *flags, processes=2)
    assert res.stdout.count("saved") == 1 and "before/after" in res.stdout
    st = state(out)
    assert st["step"] == 4 and st["finetune"]["mode"] == "noisy"
    start = torch.load(base, map_location="cpu", weights_only=True)["state_dict"]
    assert any(not torch.equal(w, start[k].to(w.dtype)) for k, w in st["model"].items())  # it trained
    assert torch.load(out, map_location="cpu", weights_only=True)["training"]["finetune"]["mode"] == "noisy"
