"""The set-up scripts a new user runs: the display check names the missing system package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import REPO, shared_data


def test_display_check_names_the_package_qt_needs(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "ldd").write_text("#!/bin/sh\necho '\tlibxcb-cursor.so.0 => not found'\necho '\tlibc.so.6 => /lib/libc.so.6'\n")
    (fake / "id").write_text("#!/bin/sh\necho 1000\n")  # not root: it must say what to install, not install
    for f in fake.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "QT_QPA_PLATFORM": ""}
    res = subprocess.run(["bash", str(REPO / "scripts" / "check-qt-display.sh")], env=env, capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0
    assert "libxcb-cursor0" in res.stderr and "apt-get install libxcb-cursor0" in res.stderr
    assert res.stderr.count("\n") == 1  # one line
    quiet = subprocess.run(["bash", str(REPO / "scripts" / "check-qt-display.sh")],
                           env={**env, "QT_QPA_PLATFORM": "offscreen"}, capture_output=True, text=True, timeout=60)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_every_package_is_in_the_install() -> None:
    """A non-editable `pip install .` ships only the packages pyproject.toml lists: a new subpackage
    left out of it imports here and fails on a user's machine."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {str(p.parent.relative_to(REPO)).replace(os.sep, ".") for top in ("denoiser", "gui", "resources")
             for p in (REPO / top).rglob("__init__.py")}
    assert found - listed == set()


def test_average_checkpoints_writes_the_mean_of_the_weights(tmp_path: Path) -> None:

    import torch

    from denoiser.checkpoint import load_checkpoint
    from tests.helpers import make_tiny_model

    a, b = make_tiny_model(tmp_path / "a.pt", seed=1), make_tiny_model(tmp_path / "b.pt", seed=2)
    res = subprocess.run([sys.executable, str(REPO / "bench" / "average_checkpoints.py"), str(a), str(b), "-o",
                          str(tmp_path / "m.pt")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    m, wa, wb = (load_checkpoint(p).net.state_dict() for p in (tmp_path / "m.pt", a, b))
    assert all(torch.allclose(m[k], (wa[k].float() + wb[k].float()) / 2) for k in m)
    assert not torch.equal(wa["head.weight"], wb["head.weight"])
    assert load_checkpoint(tmp_path / "m.pt").info.training["weight_average_of"] == [str(a), str(b)]


def test_average_checkpoints_validate_scores_the_average_on_the_runs_validation_set(tmp_path: Path) -> None:
    """--validate rebuilds the first checkpoint's validation set from its stored config and stores the
    average's own PSNR on it, not the first checkpoint's; a config whose data is gone is refused by name."""

    import numpy as np
    import torch
    from PIL import Image

    from denoiser.checkpoint import load_checkpoint, save_checkpoint
    from denoiser.data import find_images, split_train_val
    from denoiser.training.config import TrainConfig
    from denoiser.training.validation import validate, validation_pairs
    from tests.helpers import make_tiny_model

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(data / f"img{i}.png")
    cfg = TrainConfig(data=[str(data)], out=str(tmp_path / "run.pt"), val_fraction=0.5, seed=3)
    first = load_checkpoint(make_tiny_model(tmp_path / "a.pt", seed=1))
    save_checkpoint(tmp_path / "run.pt", first.net, noise={"name": "gaussian"},
                    training={"steps": 5, "config": cfg.to_dict()}, metrics={"val_psnr": 99.0}, description="run")
    b = make_tiny_model(tmp_path / "b.pt", seed=2)
    script = [sys.executable, str(REPO / "bench" / "average_checkpoints.py")]
    res = subprocess.run([*script, str(tmp_path / "run.pt"), str(b), "-o", str(tmp_path / "m.pt"), "--validate"],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert res.returncode == 0, res.stderr
    avg = load_checkpoint(tmp_path / "m.pt")
    pairs = validation_pairs(split_train_val(find_images([data]), 0.5, 3)[1], cfg)
    expected = validate(avg.net.float(), pairs, torch.device("cpu"))
    assert avg.info.metrics["val_psnr"] == expected != 99.0
    assert f"{expected:.3f} dB" in res.stdout

    for f in data.iterdir():
        f.unlink()
    data.rmdir()
    gone = subprocess.run([*script, str(tmp_path / "run.pt"), str(b), "-o", str(tmp_path / "m2.pt"), "--validate"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert gone.returncode != 0 and str(data) in gone.stderr and not (tmp_path / "m2.pt").exists()


def test_develop_pairs_makes_libraw_pairs_and_keeps_the_runs_validation_images_out(tmp_path: Path) -> None:
    pytest.importorskip("rawpy")
    from denoiser.data import find_images, find_pairs, split_train_val
    from denoiser.imageio import load_image

    photos = tmp_path / "photos"
    photos.mkdir()
    for f in sorted(shared_data("train", "color").glob("*.jpg"))[:6]:
        (photos / f.name).write_bytes(f.read_bytes())
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    script = [sys.executable, str(REPO / "bench" / "develop_pairs.py"), str(photos)]
    res = subprocess.run([*script, "--out", str(tmp_path / "pairs"), "--exclude-val", "0.34,10"], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "skipped broken.jpg" in res.stderr  # a bad file is named and the rest goes on
    res = subprocess.run([*script, "--out", str(tmp_path / "val"), "--only-val", "0.34,10", "--levels", "0.5,1"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    train, val = split_train_val(find_images([photos]), 0.34, 10)
    made = {n.stem for n, _ in find_pairs([tmp_path / "pairs"])}
    assert made == {f.stem for f in train if f.name != "broken.jpg"}
    val_pairs = find_pairs([tmp_path / "val"])
    assert {n.stem for n, _ in val_pairs} == {f"{f.stem}_{lv}" for f in val if f.name != "broken.jpg" for lv in ("0.5", "1")}
    noisy, clean = (load_image(p) for p in val_pairs[0])
    assert noisy.bit_depth == clean.bit_depth == 16 and noisy.data.shape == clean.data.shape
    low = next(p for p in val_pairs if p[0].stem.endswith("_0.5"))
    high = next(p for p in val_pairs if p[0].stem.endswith("_1") and p[0].stem[:-2] == low[0].stem[:-4])
    err = [float(np.abs(load_image(n).data - load_image(c).data).mean()) for n, c in (low, high)]
    assert 0 < err[0] < err[1]  # the develop's noise grows with the camera level; the clean develop has none
    res = subprocess.run([*script, "--out", str(tmp_path / "some"), "--exclude-val", "0.34,10", "--count", "2",
                          "--seed", "3"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    some = {n.stem for n, _ in find_pairs([tmp_path / "some"])}
    assert len(some) + ("skipped broken.jpg" in res.stderr) == 2  # two drawn photos (the broken one is named)
    assert some <= {f.stem for f in train}  # and still none of the validation images
    res = subprocess.run([*script, "--out", str(tmp_path / "vng"), "--exclude-val", "0.34,10", "--count", "2",
                          "--seed", "3", "--demosaic", "VNG"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    vng = find_pairs([tmp_path / "vng"])
    assert {n.stem for n, _ in vng} == some  # the same photos, developed by another demosaic
    ahd = load_image(tmp_path / "some" / "clean" / vng[0][1].name).data
    assert np.abs(load_image(vng[0][1]).data - ahd).mean() > 1e-3
    header, *rows = (tmp_path / "vng" / "pairs.tsv").read_text().splitlines()
    assert header.split("\t") == ["name", "demosaic", "level", "wb_red", "wb_blue"]
    recorded = {r.split("\t")[0]: r.split("\t") for r in rows}
    assert set(recorded) == {n.name for n, _ in vng}
    assert all(r[1] == "VNG" and 0.25 <= float(r[2]) <= 1 for r in recorded.values())
    res = subprocess.run([*script, "--out", str(tmp_path / "bad"), "--demosaic", "AHD,NOPE"], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 2 and "NOPE" in res.stderr and not (tmp_path / "bad").exists()


def test_photo_candidates_reports_the_training_side_figures_and_names_missing_develops(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    from denoiser.data import find_images, split_train_val
    from tests.helpers import make_tiny_model

    photos = tmp_path / "photos"
    photos.mkdir()
    for f in sorted(shared_data("train", "color").glob("*.jpg"))[:20]:
        PILImage.open(f).convert("RGB").crop((0, 0, 64, 64)).save(photos / f"{f.stem}.png")
    _train, val = split_train_val(find_images([photos]), 0.05, 16)
    develops = tmp_path / "dev"
    rng = np.random.default_rng(0)
    for part in ("noisy", "clean"):
        (develops / part).mkdir(parents=True)
    for f in val:
        clean = np.asarray(PILImage.open(f), dtype=np.float64)
        for level in ("0.5", "1"):
            PILImage.fromarray(clean.astype(np.uint8)).save(develops / "clean" / f"{f.stem}_{level}.png")
            noisy = np.clip(clean + rng.normal(0, 10 * float(level), clean.shape), 0, 255).astype(np.uint8)
            PILImage.fromarray(noisy).save(develops / "noisy" / f"{f.stem}_{level}.png")
    model = make_tiny_model(tmp_path / "tiny.pt")
    script = [sys.executable, str(REPO / "bench" / "photo_candidates.py"), str(model), "--photos", str(photos),
              "--limit", "1"]
    res = subprocess.run([*script, "--develops", str(develops), "--json", str(tmp_path / "figures.json")],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    header, _rule, row = res.stdout.strip().splitlines()
    assert "PolyU40 PSNR" in header and "develop 1" in header and "JPEG q20" in header and "fidelity ×1.5 PSNR" in header
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == str(model) and len(cells) == len(header.strip("|").split("|"))
    values = dict(zip([c.strip() for c in header.strip("|").split("|")], cells, strict=True))
    assert 20 < float(values["PolyU40 PSNR"]) < 60 and 0 < float(values["PolyU40 SSIM"]) <= 1
    assert float(values["develop 0.5"]) > float(values["develop 1"])  # the tiny model leaves the noise: level 1 is worse
    assert float(values["fidelity ×1 PSNR"]) > 40  # a near-identity changes a clean photo little
    unrounded = json.loads((tmp_path / "figures.json").read_text())[str(model)]
    assert f"{unrounded['develop 0.5']:.3f}" == values["develop 0.5"] and len(unrounded["fidelity ×1 shift"]) == 3
    (tmp_path / "taken").mkdir()
    res = subprocess.run([*script, "--develops", str(develops), "--json", str(tmp_path / "taken")],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode == 1 and "cannot write" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([*script, "--develops", str(tmp_path / "none")], capture_output=True, text=True, timeout=300,
                         cwd=REPO)
    assert res.returncode == 1 and "no develops at level 0.5" in res.stderr and "develop_pairs.py" in res.stderr
    res = subprocess.run([*script, "--develops", str(develops), "--levels", "1"], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    header = res.stdout.strip().splitlines()[0]
    assert res.returncode == 0 and "develop 1" in header and "develop 0.5" not in header
    res = subprocess.run([*script, "--develops", str(develops), "--levels", "0.2"], capture_output=True, text=True,
                         timeout=300, cwd=REPO)
    assert res.returncode == 1 and "no develops at level 0.2" in res.stderr and "--levels 0.2" in res.stderr
    other = tmp_path / "dev-mix"
    shutil.copytree(develops, other)
    for f in (other / "noisy").glob("*_1.png"):
        PILImage.fromarray(np.asarray(PILImage.open(develops / "clean" / f.name))).save(f)  # noise-free: a higher score
    res = subprocess.run([*script, "--develops", str(develops), str(other), "--levels", "1"], capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert res.returncode == 0, res.stderr
    header, _rule, row = res.stdout.strip().splitlines()
    values = dict(zip([c.strip() for c in header.strip("|").split("|")],
                      [c.strip() for c in row.strip("|").split("|")], strict=True))
    assert float(values["dev-mix 1"]) > float(values["dev 1"]) and "develop 1" not in values
    res = subprocess.run([*script, "--develops", str(develops), str(tmp_path / "x" / "dev")], capture_output=True,
                         text=True, timeout=300, cwd=REPO)
    assert res.returncode == 1 and "distinct names" in res.stderr


def test_state_weights_writes_the_last_steps_average_of_a_frozen_encoder_run(tmp_path: Path) -> None:
    """The EMA of a --freeze-encoder run covers the decoder alone: state_weights puts each averaged tensor
    on the parameter it averages (not on the first ones of the model), keeps the encoder as trained, and
    writes the trained weights with --trained; a state without its checkpoint is refused by name."""
    import torch
    from PIL import Image

    from denoiser.checkpoint import load_checkpoint
    from denoiser.training.config import read_training_state
    from tests.helpers import train_frozen_encoder_run

    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(data / f"img{i}.png")
    _, run = train_frozen_encoder_run(data, tmp_path, steps=6, ema=0.5)
    state = read_training_state(tmp_path / "frozen.state.pt")
    script = [sys.executable, str(REPO / "bench" / "state_weights.py"), str(tmp_path / "frozen.state.pt")]
    res = subprocess.run([*script, "-o", str(tmp_path / "last.pt")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "EMA weights at step 6" in res.stdout
    last = load_checkpoint(tmp_path / "last.pt").net
    encoder = {id(p) for m in last.encoder_modules() for p in m.parameters()}
    decoder = [(n, p) for n, p in last.named_parameters() if id(p) not in encoder]
    assert encoder and len(decoder) == len(state["ema"])
    assert all(torch.allclose(p.float(), t) for (_, p), t in zip(decoder, state["ema"], strict=True))
    assert not all(torch.allclose(p.float(), state["model"][n].float()) for n, p in decoder)  # the average, not the last
    assert all(torch.equal(p.float(), state["model"][n].float()) for n, p in last.named_parameters() if id(p) in encoder)

    res = subprocess.run([*script, "-o", str(tmp_path / "trained.pt"), "--trained"], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "trained weights at step 6" in res.stdout
    trained = load_checkpoint(tmp_path / "trained.pt").net.state_dict()
    assert all(torch.equal(trained[k].float(), v.float()) for k, v in state["model"].items())

    clobber = subprocess.run([*script, "-o", str(run)], capture_output=True, text=True, timeout=120)
    assert clobber.returncode == 2 and "would overwrite" in clobber.stderr
    run.unlink()
    alone = subprocess.run([*script, "-o", str(tmp_path / "x.pt")], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and str(run) in alone.stderr and not (tmp_path / "x.pt").exists()
