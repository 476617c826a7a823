"""bench/gpu_train.sh, the one-command recipe a session lent a GPU runs: a CPU smoke run of its photo stage."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, shared_data

pytestmark = pytest.mark.slow  # the slow tier: `pytest -m slow` (scripts/run-tests.sh runs both)


def _crops(src: list[Path], dest: Path, size: int) -> None:
    from PIL import Image as PILImage

    dest.mkdir(parents=True)
    for f in src:
        PILImage.open(f).convert("RGB").crop((0, 0, size, size)).save(dest / f"{f.stem}.png")


def test_gpu_train_photo_trains_on_polyu40_and_develop_pairs_and_bundles_half_precision(tmp_path: Path) -> None:
    pytest.importorskip("rawpy")
    import torch

    from denoiser.checkpoint import load_checkpoint

    data = tmp_path / "data"
    _crops(sorted(shared_data("train", "color").glob("*.jpg"))[:8], data / "color", 192)
    polyu = shared_data("train", "real", "PolyU40")
    names = sorted(p.name for p in (polyu / "noisy").iterdir())[:5]
    for part in ("noisy", "clean"):
        _crops([polyu / part / n for n in names], data / "real" / "PolyU40" / part, 256)
    out = tmp_path / "out"
    env = {**os.environ, "DEVICE": "cpu", "MODELS": "photo", "PHOTO_WORKERS": "0", "PHOTO_DEVELOP_PAIRS": "3",
           "PHOTO_DEMOSAIC": "DCB,VNG", "TMPDIR": str(tmp_path)}
    res = subprocess.run(["bash", str(REPO / "bench" / "gpu_train.sh"), str(data), str(out), "0.02", sys.executable],
                         env=env, capture_output=True, text=True, timeout=900, cwd=REPO)
    assert res.returncode == 0, res.stderr + (out / "photo.log").read_text()
    assert "photo: step" in res.stdout, res.stdout + (out / "photo.log").read_text()
    m = load_checkpoint(out / "photo.pt")
    cfg = m.info.training["config"]
    assert cfg["real_data"] == [str(data / "real" / "PolyU40"), cfg["real_data"][1]]
    assert cfg["real_match_radius"] == [8.0, 0.0] and cfg["real_share"] == 0.5 and cfg["val_on"] == "real"
    assert cfg["loss"]["ssim_weight"] == 0.05 and m.info.training["steps"] >= 1
    header, *rows = (out / "develop-pairs.tsv").read_text().splitlines()
    assert header.startswith("name\tdemosaic") and len(rows) == 3
    assert {r.split("\t")[1] for r in rows} <= {"DCB", "VNG"}
    stored = torch.load(out / "photo.pt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float16 for v in stored.values() if v.is_floating_point())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp")]  # its work folder is removed
