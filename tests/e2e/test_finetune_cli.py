"""End-to-end `denoiser finetune` on real photos from ../shared/data/train with the tiny test models."""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from denoiser.cli import main
from denoiser.training import state_path
from tests.helpers import REPO, shared_data

SMALL = ["--patch", "32", "--batch", "2", "--val-fraction", "0.25"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "denoiser", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ}, timeout=300)


def photos(n: int = 4) -> list[str]:
    return [str(p) for p in sorted(shared_data("train", "color").glob("*.jpg"))[:n]]


def test_finetune_saves_a_model_that_denoiser_models_lists(models_dir: Path) -> None:
    done = run_cli("finetune", *photos(), "--base", "gaussian-color", "-o", "mine", "--steps", "4", *SMALL)
    assert done.returncode == 0, done.stderr
    assert "memory ≈" in done.stderr and "step 4/4" in done.stderr
    assert f"saved {models_dir / 'mine.pt'}" in done.stdout and "validation PSNR base" in done.stdout
    listed = run_cli("models", "--json")
    assert listed.returncode == 0
    models = {m["name"]: m for m in json.loads(listed.stdout)}
    mine = models["mine"]
    assert mine["source"] == "user" and mine["path"] == str(models_dir / "mine.pt")
    card = mine["training"]["finetune"]
    assert card["base"] == "gaussian-color" and card["mode"] == "clean" and card["steps_run"] == 4
    assert card["data"] == photos() and card["train_images"] == 3 and card["val_images"] == 1
    assert isinstance(card["better"], bool) and ("NOT better" in done.stdout) != card["better"]


def test_finetune_noisy_mode_resume_and_argument_errors(models_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "night.pt"
    base = ["finetune", *photos(3), "--base", "photo", "--mode", "noisy", "-o", str(out), *SMALL]
    assert main([*base, "--steps", "2"]) == 0
    assert "validation N2N score base" in capsys.readouterr().out and out.exists()
    assert main([*base, "--steps", "2"]) == 2  # the output exists: refuse without --overwrite
    assert "already exists" in capsys.readouterr().err
    assert main([*base, "--steps", "4", "--resume", str(state_path(out))]) == 0  # two more steps
    assert torch.load(state_path(out), weights_only=False)["step"] == 4
    assert main([*base, "--steps", "1", "--overwrite"]) == 0
    assert torch.load(state_path(out), weights_only=False)["step"] == 1
    one = photos(1)
    assert main(["finetune", *one, "-o", "x", "--sigma-range", "50,10"]) == 2
    assert main(["finetune", *one, "-o", "x", "--steps", "0"]) == 2
    assert main(["finetune", *one, "-o", "x", "--mode", "blurry"]) == 2
    assert main(["finetune", *one, "-o", "x", "--val-fraction", "1.5"]) == 2
    assert main(["finetune", *one, "--base", "no-such-model", "-o", "x", "--steps", "1"]) == 1
    assert main(["finetune", str(tmp_path / "empty"), "-o", "x", "--steps", "1"]) == 1
    assert not (models_dir / "x.pt").exists()


def test_finetune_on_a_folder_without_images_says_so_first(models_dir: Path, tmp_path: Path, capsys) -> None:
    empty = tmp_path / "no-photos"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a photo")
    assert main(["finetune", str(empty), "-o", "mine", "--steps", "2", *SMALL]) == 1
    err = capsys.readouterr().err
    assert "no images found" in err and "fine-tuning" not in err and "memory" not in err
    assert not (models_dir / "mine.pt").exists()
