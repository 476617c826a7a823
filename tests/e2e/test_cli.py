"""End-to-end runs of the `denoiser` command on real images from ../shared/data (tiny models: quick)."""

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.cli import main
from denoiser.imageio import load_image
from tests.helpers import REPO, shared_data


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "denoiser", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_add_noise_estimate_denoise_eval_round_trip(tmp_path, models_dir, capsys):
    kodak = shared_data("test", "Kodak24")
    set12 = shared_data("test", "Set12")
    inputs = [str(kodak / "kodim03.png"), str(set12 / "01.png")]
    assert main(["add-noise", *inputs, "-o", str(tmp_path / "noisy"), "--noise", "gaussian", "--sigma", "25", "--seed", "7"]) == 0
    noisy = sorted((tmp_path / "noisy").glob("*.png"))
    assert [p.name for p in noisy] == ["01.png", "kodim03.png"]
    clean = np.asarray(PILImage.open(kodak / "kodim03.png"), dtype=np.float64)
    diff = np.asarray(PILImage.open(tmp_path / "noisy" / "kodim03.png"), dtype=np.float64) - clean
    assert 20 < diff.std() < 26  # σ 25, clipped and rounded like a saved photo
    capsys.readouterr()
    assert main(["estimate", *map(str, noisy)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all(20 < float(line.split("\t")[1]) < 30 for line in lines)
    assert main(["denoise", str(tmp_path / "noisy"), "-o", str(tmp_path / "out"), "--suffix", "_dn", "-q"]) == 0
    out = load_image(tmp_path / "out" / "kodim03_dn.png")
    assert out.channels == 3 and out.data.shape == (500, 500, 3)
    assert load_image(tmp_path / "out" / "01_dn.png").channels == 1
    capsys.readouterr()
    assert main(["eval", str(set12), "--sigma", "15,50", "--limit", "2", "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["sigma"] for r in report["rows"]] == [15, 50]
    assert report["device"] == "cpu" and report["precision"] in ("fp32", "bf16")  # figures name the precision that ran
    assert report["rows"][0]["noisy_psnr"] == pytest.approx(24.6, abs=0.3)  # 20·log10(255/15)


def test_bad_inputs_are_reported_and_the_rest_go_on(tmp_path, models_dir):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(shared_data("test", "CBSD68") / "3096.png", src / "good.png")
    (src / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (src / "empty.png").write_bytes(b"")
    PILImage.new("RGB", (1, 1), (200, 10, 10)).save(src / "one.png")
    PILImage.new("CMYK", (40, 30), (10, 200, 30, 0)).save(src / "cmyk.jpg")
    PILImage.new("RGBA", (40, 30), (10, 200, 30, 128)).save(src / "alpha.png")
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    (src / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)))
    res = run_cli("denoise", str(src), str(tmp_path / "missing.png"), "-o", str(tmp_path / "out"), "-q",
                  env={"DENOISER_MODELS_DIR": str(models_dir)})
    assert res.returncode == 1
    assert "4 done, 0 skipped, 4 failed" in res.stderr
    for name in ("corrupt.png", "empty.png", "missing.png", "huge.png"):
        assert name in res.stderr
    assert load_image(tmp_path / "out" / "alpha.png").alpha is not None
    assert load_image(tmp_path / "out" / "one.png").data.shape == (1, 1, 3)
    assert (src / "good.png").read_bytes() == (shared_data("test", "CBSD68") / "3096.png").read_bytes()


def test_usage_errors_exit_2_and_help_everywhere(models_dir):
    assert run_cli("denoise", "x.png").returncode == 2
    assert run_cli("add-noise", "x.png", "-o", "y", "--noise", "gaussian", "--sigma", "999").returncode == 2
    assert run_cli("denoise", "x.png", "-o", "y", "--sigma", "loud").returncode == 2
    fp16_on_cpu = run_cli("denoise", "x.png", "-o", "y", "--device", "cpu", "--precision", "fp16")
    assert fp16_on_cpu.returncode == 2 and "fp16 inference needs CUDA" in fp16_on_cpu.stderr
    for cmd in ("denoise", "add-noise", "estimate", "eval", "models", "train"):
        res = run_cli(cmd, "--help")
        assert res.returncode == 0 and "usage:" in res.stdout


def test_train_takes_its_whole_recipe_from_config_and_the_command_line_overrides_it(tmp_path):
    out = tmp_path / "m.pt"
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(f"""data = [{json.dumps(str(shared_data("train", "gray")))}]
out = {json.dumps(str(out))}
channels = 1
patch = 32
batch = 2
steps = 3
lr = 3e-4
val_every = 3
val_fraction = 0.01

[noise]
sigma_range = [10.0, 20.0]
clip_prob = 0.0

[arch_config]
channels = [8, 16]
""")
    res = run_cli("train", "--config", str(recipe), "--lr", "2e-4", "--clip-prob", "1")
    assert res.returncode == 0, res.stderr
    cfg = torch.load(out, map_location="cpu", weights_only=True)["training"]["config"]
    assert cfg["lr"] == 2e-4 and cfg["steps"] == 3 and cfg["channels"] == 1 and cfg["arch_config"] == {"channels": [8, 16]}
    assert cfg["noise"]["sigma_range"] == [10.0, 20.0] and cfg["noise"]["clip_prob"] == 1.0
    recipe.write_text(recipe.read_text().replace("clip_prob", "clip_probability"))
    typo = run_cli("train", "--config", str(recipe), "--out", str(tmp_path / "n.pt"))
    assert typo.returncode == 2 and "unknown NoiseConfig setting clip_probability" in typo.stderr
    bare = run_cli("train", "--out", str(tmp_path / "n.pt"))
    assert bare.returncode == 2 and "--data is needed" in bare.stderr and not (tmp_path / "n.pt").exists()


def test_models_lists_user_models_and_train_writes_one(tmp_path, models_dir):
    train = ("train", "--data", str(shared_data("train", "gray")), "--out", str(models_dir / "mine.pt"),
             "--channels", "1", "--arch-config", '{"channels": [8, 16]}', "--patch", "32", "--batch", "2",
             "--steps", "4", "--val-every", "2", "--val-fraction", "0.01")
    res = run_cli(*train, env={"DENOISER_MODELS_DIR": str(models_dir)})
    assert res.returncode == 0, res.stderr
    assert "val" in res.stderr
    before = (models_dir / "mine.pt").read_bytes()
    again = run_cli(*train, env={"DENOISER_MODELS_DIR": str(models_dir)})
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr
    assert (models_dir / "mine.pt").read_bytes() == before
    listing = run_cli("models", "--json", env={"DENOISER_MODELS_DIR": str(models_dir)})
    names = {m["name"]: m for m in json.loads(listing.stdout)}
    assert {"mine", "photo", "gaussian-gray"} <= set(names)
    assert names["mine"]["training"]["steps"] == 4


def test_read_only_output_folder(tmp_path, models_dir):
    blocker = tmp_path / "ro"
    blocker.write_text("file, not a folder")
    res = run_cli("denoise", str(shared_data("test", "Set12") / "02.png"), "-o", str(blocker / "out"), "-q",
                  env={"DENOISER_MODELS_DIR": str(models_dir)})
    assert res.returncode == 1 and "1 failed" in res.stderr
    assert Path(blocker).read_text() == "file, not a folder"


def test_ensemble_flag_improves_eval_and_denoises_files(tmp_path, models_dir, capsys):
    set12 = shared_data("test", "Set12")
    gray = str(REPO / "resources" / "models" / "gaussian-gray.pt")
    scores = {}
    for n in ("1", "8"):
        capsys.readouterr()
        assert main(["eval", str(set12), "--model", gray, "--sigma", "25", "--limit", "1", "--ensemble", n, "--json", "-q"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["ensemble"] == int(n)
        scores[n] = report["rows"][0]["psnr"]
    assert scores["8"] > scores["1"] + 0.03
    assert main(["denoise", str(set12 / "01.png"), "-o", str(tmp_path / "out.png"), "--ensemble", "4", "-q"]) == 0
    assert load_image(tmp_path / "out.png").data.shape == (256, 256, 1)
    bad = run_cli("denoise", str(set12 / "01.png"), "-o", str(tmp_path / "x.png"), "--ensemble", "3")
    assert bad.returncode == 2 and "--ensemble" in bad.stderr and not (tmp_path / "x.png").exists()


def test_eval_leaves_out_unreadable_images_and_scores_16_bit_files_on_their_own_scale(tmp_path, models_dir, capsys):
    set12 = shared_data("test", "Set12")
    eight, deep, mixed = (tmp_path / n for n in ("eight", "deep", "mixed"))
    for d in (eight, deep, mixed):
        d.mkdir()
    shutil.copy(set12 / "01.png", eight / "a.png")
    a = np.asarray(PILImage.open(set12 / "01.png"), dtype=np.uint16) * 257  # the same picture in 16 bits
    PILImage.fromarray(a).save(deep / "a.png")
    shutil.copy(set12 / "01.png", mixed / "a.png")
    (mixed / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # sorts after a.png: not the first file
    scores = {}
    for d in (eight, deep, mixed):
        code = main(["eval", str(d), "--sigma", "25", "--json", "-q"])
        out = capsys.readouterr()
        scores[d.name] = (code, json.loads(out.out)["rows"][0], out.err)
    assert scores["eight"][0] == 0 and scores["deep"][0] == 0
    assert scores["deep"][1]["psnr"] == pytest.approx(scores["eight"][1]["psnr"], abs=0.05)
    code, row, err = scores["mixed"]
    assert code == 1 and row["images"] == 1 and row["psnr"] == scores["eight"][1]["psnr"]
    assert "skipped (left out of the means)" in err and "b.png" in err and "Traceback" not in err


def test_bad_arguments_are_usage_errors_before_any_work(tmp_path, models_dir):
    src = shared_data("test", "Set12") / "02.png"
    out = tmp_path / "out"
    cases = {
        ("eval", str(src.parent), "--sigma", ","): "one or more σ",
        ("eval", str(src.parent), "--limit", "0"): "positive",
        ("denoise", str(src), "-o", str(out), "--model", "nosuch"): "no model named 'nosuch'",
        ("denoise", str(src), "-o", str(out), "--quality", "0"): "quality must be between 1 and 100",
        ("denoise", str(src), "-o", str(out / "result.txt")): "end it with /",
        ("add-noise", str(src), "-o", str(out / "noisy.gif"), "--noise", "gaussian", "--sigma", "5"): "end it with /",
        ("denoise", str(src), "-o", str(out), "--format", "jpeg", "--bit-depth", "16"): "JPEG cannot store 16-bit",
        ("train", "--data", str(src.parent), "--out", str(tmp_path / "m.pt"), "--arch", "nosuch"): "unknown architecture",
        ("train", "--data", str(src.parent), "--out", str(tmp_path / "m.pt"), "--arch-config", "{bad"): "not valid JSON",
        ("train", "--data", str(src.parent), "--out", str(tmp_path / "m.pt"), "--patch", "0"): "positive",
        ("train", "--data", str(src.parent), "--out", str(tmp_path / "m.pt"), "--patch", "50"): "multiple of",
        ("train", "--data", str(src.parent), "--out", str(tmp_path / "m.pt"), "--base", str(src)): "--base",
        ("denoise", str(src), "-o", str(out), "--suffix", "/../../x"): "part of a file name",
        ("denoise", str(src), "-o", str(out), "--suffix", "../esc"): "part of a file name",
        ("add-noise", str(src), "-o", str(out), "--noise", "gaussian", "--suffix", "a/b"): "part of a file name",
        ("train", "--data", str(src.parent), "--out", str(tmp_path / "m.pt"), "--clean-prob", "2"): "from 0 to 1",
    }
    for args, message in cases.items():
        res = run_cli(*args)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr, (args, res.stderr)
    assert not out.exists() and not (tmp_path / "m.pt").exists()
    resume = run_cli("train", "--data", str(src.parent), "--out", str(tmp_path / "m.pt"), "--resume", str(src))
    assert resume.returncode == 1 and "not a training state" in resume.stderr and "Traceback" not in resume.stderr


def test_add_noise_mirrors_the_tree_and_refuses_clashing_names(tmp_path, capsys):
    src = tmp_path / "shoot"
    for rel in ("a/x.png", "b/x.png", "c/y.png", "c/y.jpg"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(np.full((9, 7, 3), 120, np.uint8)).save(src / rel)
    code = main(["add-noise", str(src), "-o", str(tmp_path / "noisy"), "--recursive", "--noise", "camera", "--level", "0.5"])
    err = capsys.readouterr().err
    assert code == 1 and "also the output of" in err
    written = sorted(p.relative_to(tmp_path / "noisy").as_posix() for p in (tmp_path / "noisy").rglob("*.png"))
    assert written == ["a/x.png", "b/x.png", "c/y.png"]


def test_estimate_takes_folders_and_reports_bad_files(tmp_path, capsys):
    folder = tmp_path / "noisy"
    folder.mkdir()
    clean = np.asarray(PILImage.open(shared_data("test", "Set12") / "02.png"), dtype=np.float64)
    PILImage.fromarray(np.clip(clean + 20 * np.random.default_rng(0).standard_normal(clean.shape), 0, 255)
                       .round().astype(np.uint8)).save(folder / "house.png")
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    assert main(["estimate", str(folder)]) == 1
    out = capsys.readouterr()
    name, sigma = out.out.strip().split("\t")
    assert name.endswith("house.png") and float(sigma) == pytest.approx(20, abs=2)
    assert "bad.png" in out.err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["estimate", str(empty)]) == 1
    assert "no input images found" in capsys.readouterr().err


def test_a_clean_overexposed_photo_comes_back_as_it_went_in(tmp_path, monkeypatch):
    """Fidelity through the CLI with the bundled default model: σ estimated, blown highlights kept, no shift."""
    from denoiser.fidelity import clipped_interior, overexpose

    monkeypatch.setenv("DENOISER_MODELS_DIR", str(tmp_path / "no-user-models"))  # the bundled models, not tiny ones

    x = overexpose(np.asarray(PILImage.open(shared_data("test", "Kodak24") / "kodim23.png").convert("RGB"), np.float64))
    PILImage.fromarray(x.astype(np.uint8)).save(tmp_path / "bright.png")
    for extra, name in (((), "kept.png"), (("--denoise-clipped", "--model", "gaussian-color"), "free.png")):
        res = run_cli("denoise", str(tmp_path / "bright.png"), "-o", str(tmp_path / name), "-q", *extra)
        assert res.returncode == 0, res.stderr
    y = np.asarray(PILImage.open(tmp_path / "kept.png"), np.float64)
    free = np.asarray(PILImage.open(tmp_path / "free.png"), np.float64)
    interior = clipped_interior(torch.from_numpy(x / 255).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert interior.mean() > 0.05 and np.array_equal(y[interior], x[interior])  # blown stays blown, black black
    assert (free[interior] != x[interior]).mean() > 0.01  # without the guard the network moves clipped regions
    unsat = ~(x >= 255).any(-1)
    assert np.abs((y - x)[unsat].mean(0)).max() <= 0.25
    assert 10 * np.log10(255**2 / np.mean((y - x) ** 2)) >= 40


def test_luma_and_chroma_strength_flags_keep_grain_or_colour_noise(tmp_path, monkeypatch):
    from denoiser.blend import luma

    monkeypatch.setenv("DENOISER_MODELS_DIR", str(tmp_path / "no-user-models"))  # the bundled default: it denoises
    kodak = tmp_path / "kodim03.png"
    PILImage.open(shared_data("test", "Kodak24") / "kodim03.png").crop((100, 100, 356, 356)).save(kodak)
    assert main(["add-noise", str(kodak), "-o", str(tmp_path / "noisy.png"), "--noise", "gaussian", "--sigma", "20",
                 "--seed", "3"]) == 0
    outs = {}
    for name, flags in (("full", []), ("grain", ["--luma-strength", "0", "--chroma-strength", "1"]),
                        ("colour", ["--chroma-strength", "0"])):
        assert main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / f"{name}.png"), "-q", *flags]) == 0
        outs[name] = np.asarray(PILImage.open(tmp_path / f"{name}.png"), np.float64) / 255
    noisy = np.asarray(PILImage.open(tmp_path / "noisy.png"), np.float64) / 255
    inside = ((noisy > 0.15) & (noisy < 0.85) & (outs["full"] > 0.15) & (outs["full"] < 0.85)).all(-1)
    def within_rounding(a: np.ndarray, b: np.ndarray) -> bool:  # 8-bit steps; a few pixels clip at 0 or 1
        d = np.abs(a - b)[inside]
        return float(np.percentile(d, 99)) <= 1.0 / 255 and float(d.mean()) <= 0.4 / 255

    colour = lambda x: x - luma(x)  # noqa: E731
    assert within_rounding(luma(outs["grain"]), luma(noisy))  # the grain kept
    assert not within_rounding(luma(outs["full"]), luma(noisy))
    assert within_rounding(colour(outs["colour"]), colour(noisy))  # the colour noise kept
    assert within_rounding(luma(outs["colour"]), luma(outs["full"]))
    res = run_cli("denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "x.png"), "--chroma-strength", "2")
    assert res.returncode == 2 and "--chroma-strength must be within 0–1" in res.stderr
    for name, seed in (("g1", "5"), ("g2", "5"), ("g3", "6")):
        assert main(["denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / f"{name}.png"), "-q", "--grain", "0.5",
                     "--grain-seed", seed, "--detail", "0.5"]) == 0
    g1, g2, g3 = (np.asarray(PILImage.open(tmp_path / f"{n}.png"), np.float64) / 255 for n in ("g1", "g2", "g3"))
    assert np.array_equal(g1, g2) and not np.array_equal(g1, g3)  # seeded grain
    grain = luma(g1) - luma(outs["full"])
    assert 0.5 / 255 < float(grain[inside].std()) < 0.8 * float(luma(noisy - outs["full"])[inside].std())
    res = run_cli("denoise", str(tmp_path / "noisy.png"), "-o", str(tmp_path / "y.png"), "--grain-size", "20")
    assert res.returncode == 2 and "--grain-size must be within 0.5–8 px" in res.stderr


def test_train_records_the_camera_pipeline_options(tmp_path):
    from denoiser.checkpoint import load_model

    out = tmp_path / "cam.pt"
    code = main(["train", "--data", str(shared_data("train", "color")), "--out", str(out), "--noise", "camera",
                 "--arch-config", '{"channels": [8, 16]}', "--patch", "32", "--batch", "2", "--steps", "2",
                 "--val-every", "2", "--val-fraction", "0.01", "--sigma-map", "estimate", "--device", "cpu",
                 "--white-prob", "0.5", "--white-range", "0.2,0.9", "--sharpen-prob", "0.3", "--sharpen-range", "0.1,0.6",
                 "--chroma-nr-prob", "0.4", "--chroma-nr-range", "0.1,0.7", "--jpeg-prob", "0.5", "--jpeg-range", "30,60",
                 "--ema", "0.9"])
    assert code == 0
    assert load_model(out).info.training["config"]["ema"] == 0.9
    noise = load_model(out).info.noise
    assert noise["white_prob"] == 0.5 and tuple(noise["white_range"]) == (0.2, 0.9)
    assert noise["sharpen_prob"] == 0.3 and tuple(noise["sharpen_range"]) == (0.1, 0.6)
    assert noise["chroma_nr_prob"] == 0.4 and tuple(noise["chroma_nr_range"]) == (0.1, 0.7)
    assert noise["jpeg_prob"] == 0.5 and tuple(noise["jpeg_quality"]) == (30, 60)
    assert run_cli("train", "--data", "x", "--out", str(tmp_path / "m.pt"), "--white-prob", "1.5").returncode == 2
    res = run_cli("train", "--data", "x", "--out", str(tmp_path / "m.pt"), "--ema", "1")
    assert res.returncode == 2 and "--ema takes a decay within [0, 1)" in res.stderr
    for bad in ("0,50", "60,30", "30.5,60", "30,101"):
        res = run_cli("train", "--data", "x", "--out", str(tmp_path / "m.pt"), "--jpeg-range", bad)
        assert res.returncode == 2 and "JPEG qualities" in res.stderr, bad


def test_tile_and_minutes_out_of_range_are_usage_errors(tmp_path):
    from denoiser.inference import min_tile

    src = str(shared_data("test", "Set12") / "02.png")
    for bad in ("0", "-5", "1", "16", str(min_tile() - 1), "big"):
        res = run_cli("denoise", src, "-o", str(tmp_path / "out"), "--tile", bad)
        assert res.returncode == 2 and "--tile" in res.stderr and "Traceback" not in res.stderr, (bad, res.stderr)
        if bad != "big":
            assert f"at least {min_tile()}" in res.stderr
    assert run_cli("eval", src, "--tile", "16").returncode == 2
    res = run_cli("train", "--data", src, "--out", str(tmp_path / "m.pt"), "--minutes", "0")
    assert res.returncode == 2 and "positive" in res.stderr and not (tmp_path / "m.pt").exists()
    assert not (tmp_path / "out").exists()


def test_a_broken_user_model_is_listed_and_does_not_hide_the_bundled_one(tmp_path):
    user = tmp_path / "models"
    user.mkdir()
    (user / "photo.pt").write_bytes(b"not a checkpoint")
    env = {"DENOISER_MODELS_DIR": str(user)}
    listing = run_cli("models", env=env)
    assert listing.returncode == 0 and "BROKEN" in listing.stdout and str(user / "photo.pt") in listing.stdout
    entries = json.loads(run_cli("models", "--json", env=env).stdout)
    assert any(e.get("broken") and e["path"] == str(user / "photo.pt") for e in entries)
    assert any(e["name"] == "photo" and e.get("source") == "bundled" for e in entries)
    src = shared_data("test", "Kodak24") / "kodim01.png"
    small = tmp_path / "small.png"
    PILImage.open(src).crop((0, 0, 96, 80)).save(small)
    res = run_cli("denoise", str(small), "-o", str(tmp_path / "out") + "/", "-q", env=env)
    assert res.returncode == 0, res.stderr
    assert "warning" in res.stderr and "unreadable" in res.stderr and "bundled 'photo'" in res.stderr
    assert (tmp_path / "out" / "small.png").exists() and (user / "photo.pt").read_bytes() == b"not a checkpoint"
    unreadable = run_cli("eval", str(shared_data("test", "Set12")), "--model", str(user / "photo.pt"), "--limit", "1")
    assert unreadable.returncode == 2 and "Traceback" not in unreadable.stderr


def test_ray_flags_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    assert main(["denoise", str(tmp_path), "-o", str(tmp_path / "o"), "--ray-workers", "2"]) == 2
    assert "need --ray" in capsys.readouterr().err
    assert main(["denoise", str(tmp_path), "-o", str(tmp_path / "o"), "--ray", "--ray-workers", "0"]) == 2
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["denoise", str(tmp_path), "-o", str(tmp_path / "o"), "--ray"]) == 1
    assert 'pip install -e ".[cluster]"' in capsys.readouterr().err


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_a_leftover_state_alone_blocks_a_new_run_and_is_named(tmp_path, models_dir, capsys, command):
    """A stopped run leaves only `x.state.pt`; a fresh run must refuse and name that file, not `x.pt`."""
    out = tmp_path / "x.pt"
    leftover = tmp_path / "x.state.pt"
    leftover.write_bytes(b"state of a stopped run")
    if command == "train":
        args = ["train", "--data", str(shared_data("train", "gray")), "--out", str(out), "--channels", "1", "--steps", "1"]
    else:
        args = ["finetune", str(shared_data("train", "gray")), "-o", str(out), "--steps", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{leftover} already exists" in err and f"--resume {leftover}" in err
    assert leftover.read_bytes() == b"state of a stopped run" and not out.exists()


def test_bf16_asked_for_on_a_cpu_without_it_is_warned_about_and_still_runs(tmp_path, models_dir, capsys, monkeypatch):
    from denoiser import device as dv

    photo = tmp_path / "in.png"
    PILImage.open(shared_data("test", "Kodak24") / "kodim03.png").convert("RGB").crop((0, 0, 64, 48)).save(photo)
    for native in (False, True):
        monkeypatch.setattr(dv, "cpu_has_native_bf16", lambda native=native: native)
        out = tmp_path / f"out-{native}.png"
        assert main(["denoise", str(photo), "-o", str(out), "--precision", "bf16", "--device", "cpu", "-q"]) == 0
        assert load_image(out).data.shape == (48, 64, 3)
        assert ("bf16 is emulated on this CPU" in capsys.readouterr().err) is not native


def test_estimate_with_a_model_reads_real_camera_noise_the_blind_sigma_reads_low(tmp_path, capsys):
    """A real ISO-3200-class JPEG pair from PolyU40: the blind σ reads under a level; the model's reading does not."""
    polyu = shared_data("train", "real", "PolyU40")
    paths = []
    for part in ("noisy", "clean"):
        a = np.asarray(PILImage.open(polyu / part / "Nikon800_wall.jpg").convert("RGB"))
        h, w = a.shape[:2]
        paths.append(tmp_path / f"{part}.png")
        PILImage.fromarray(a[h // 2 - 384 : h // 2 + 384, w // 2 - 384 : w // 2 + 384]).save(paths[-1])
    assert main(["estimate", "--model", "photo", "--device", "cpu", *map(str, paths)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.strip().splitlines()]
    (noisy, sigma, level), (clean, _clean_sigma, clean_level) = [(r[0], float(r[1]), float(r[2])) for r in rows]
    assert noisy.endswith("noisy.png") and clean.endswith("clean.png")
    assert sigma < 2.0 and level > 2 * sigma and level > 1.3 * clean_level
    assert main(["estimate", "--model", "no-such-model", str(paths[0])]) == 2
    assert "no model named 'no-such-model'" in capsys.readouterr().err
