"""The autoencoder lab: AUROC, defect planting, report formatting, and every experiment in a micro run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.archs import DenoiserNet, ModelOutput, build_arch
from denoiser.checkpoint import list_models, load_checkpoint, read_info, save_checkpoint
from denoiser.lab import EXPERIMENTS, LabConfig, Scale, run_lab, select
from denoiser.lab.anomaly import DEFECTS, anomaly_scores, auroc, plant_defect
from denoiser.lab.common import SPARSE, LabContext, ModelSpec, Table, check, psnr_batch, stable_seed
from denoiser.lab.inspect import (
    activation_grid,
    centre_crop,
    heatmap,
    inspect_work,
    is_lab_model,
    sparsity_target,
)
from denoiser.lab.report import format_value, markdown_table, render_report
from denoiser.lab.robustness import explain_centred_distortion
from denoiser.progress import drain

MICRO = Scale("micro", steps=3, batch=4, patch=16, pool=24, train_images=None, test_images=4, test_size=32,
              wide=False)


def write_images(folder: Path, n: int, size: int, seed: int) -> Path:
    """Smooth gray test pictures with edges and a little texture."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(n):
        img = 0.5 + 0.3 * np.sin(6 * xx + i) * np.cos(4 * yy - i) + 0.15 * (xx > rng.uniform(0.3, 0.7))
        img += 0.02 * rng.standard_normal(img.shape)
        PILImage.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "L").save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("labdata")
    return write_images(root / "train", 6, 48, 0), write_images(root / "test", 4, 40, 1)


@pytest.fixture(scope="module")
def micro_run(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("lab") / "out"
    cfg = LabConfig(out=out, train_data=data[0], test_data=data[1], scale=MICRO)
    events = []
    gen = run_lab(cfg)
    while True:
        try:
            events.append(next(gen))
        except StopIteration as stop:
            return stop.value, events


# --- AUROC and defects ----------------------------------------------------------------------------------
def test_auroc_known_values() -> None:
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert auroc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0
    assert auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert auroc([0, 1, 1], [0.3, 0.3, 0.9]) == pytest.approx(0.75)  # one tie (half) and one win


def test_auroc_equals_pairwise_probability(rng: np.random.Generator) -> None:
    labels = rng.integers(0, 2, 60)
    labels[:2] = [0, 1]
    scores = np.round(rng.random(60), 1)  # many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean()
    assert auroc(labels, scores) == pytest.approx(pairs)


def test_auroc_needs_both_classes() -> None:
    with pytest.raises(ValueError):
        auroc([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError):
        auroc([0, 1], [0.2])


@pytest.mark.parametrize("kind", DEFECTS)
def test_plant_defect_changes_only_the_masked_pixels(kind: str) -> None:
    image = np.full((48, 48), 0.3, np.float32)
    image[:, 24:] = 0.6
    out, mask = plant_defect(image, kind, np.random.default_rng(5))
    assert out.shape == image.shape and mask.shape == image.shape
    assert 0 <= mask.min() and mask.max() <= 1 and mask.sum() > 10
    assert np.array_equal(out[mask == 0], image[mask == 0])
    assert np.abs(out - image)[mask > 0.5].mean() > 0.2  # clearly visible
    again, mask2 = plant_defect(image, kind, np.random.default_rng(5))
    assert np.array_equal(out, again) and np.array_equal(mask, mask2)
    assert 0 <= out.min() and out.max() <= 1


def test_scratch_contrasts_with_the_image_under_it() -> None:
    dark = np.full((40, 40), 0.1, np.float32)
    out, mask = plant_defect(dark, "scratch", np.random.default_rng(0))
    assert out[mask == 1].min() > 0.9
    out, mask = plant_defect(1 - dark, "scratch", np.random.default_rng(0))
    assert out[mask == 1].max() < 0.1
    with pytest.raises(ValueError):
        plant_defect(dark, "crack", np.random.default_rng(0))


def test_anomaly_score_is_the_largest_local_mean_error() -> None:
    err = torch.zeros(2, 20, 20)
    err[1, 5:8, 5:8] = 1.0
    scores = anomaly_scores(err, window=3)
    assert scores[0] == 0 and scores[1] == pytest.approx(1.0)


# --- small pieces -------------------------------------------------------------------------------------------
def test_select_accepts_names_and_numbers() -> None:
    assert select(()) == list(EXPERIMENTS)
    assert select(("6", "identity")) == ["identity", "anomaly"]
    with pytest.raises(ValueError, match="unknown experiment"):
        select(("9",))


def test_format_and_markdown_table() -> None:
    assert [format_value(v) for v in (None, 3, 26.456, -0.7078, 0.0123456, 0.0, math.inf, "a|b")] == [
        "—", "3", "26.46", "-0.708", "0.0123", "0", "∞", "a\\|b"]
    text = markdown_table(Table("t", "", ["a", "b"], [["x", 1.0], ["y", None]]))
    assert text.splitlines() == ["| a | b |", "|---|---:|", "| x | 1.00 |", "| y | — |"]


def test_check_keeps_the_reason_only_on_disagreement() -> None:
    assert check(True, "fine", "reason").why == ""
    assert check(False, "bad", "reason").why == "reason"


def test_robustness_explains_a_rising_centred_distortion_from_the_measurements() -> None:
    lams = [math.inf, 100.0, 10.0, 1.0, 0.1]  # the lab report's measured sweep
    d_enc = dict(zip(lams, [0.0267, 0.00698, 0.00187, 0.000168, 7.83e-05], strict=True))
    d_centred = dict(zip(lams, [0.176, 0.0941, 0.0315, 0.0484, 0.0626], strict=True))
    why = explain_centred_distortion(lams, d_enc, d_centred)
    assert "past λ=10" in why and "collapses" in why and "7.8e-05" in why
    flat = dict.fromkeys(lams, 0.02)
    assert "does not fall" in explain_centred_distortion(lams, flat, flat)


class _Identity(DenoiserNet):
    def __init__(self) -> None:
        super().__init__({"in_channels": 1})

    def encode_decode(self, x: torch.Tensor, sigma: torch.Tensor | None = None) -> ModelOutput:
        return ModelOutput(x, x)


def test_noise_transfer_is_one_for_the_identity(tmp_path: Path) -> None:
    ctx = LabContext(LabConfig(out=tmp_path, scale=MICRO))
    clean = torch.full((2, 1, 8, 8), 0.5)
    noisy = clean + 0.05 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    assert ctx.noise_transfer(_Identity(), clean, noisy) == pytest.approx(1.0, abs=1e-5)
    assert psnr_batch(clean, clean) == pytest.approx(100.0)
    assert stable_seed(0, "a") == stable_seed(0, "a") != stable_seed(1, "a")


# --- the whole lab in a micro configuration -------------------------------------------------------------
def test_micro_run_writes_report_results_figures_and_models(micro_run, monkeypatch) -> None:
    result, events = micro_run
    assert [r.key for r in result.experiments] == list(EXPERIMENTS)
    assert events[-1].done == events[-1].total > 0
    assert all(b.done >= a.done for a, b in zip(events, events[1:], strict=False))
    data = json.loads(result.results.read_text())
    assert [e["key"] for e in data["experiments"]] == list(EXPERIMENTS)
    report = result.report.read_text()
    for e in data["experiments"]:
        assert e["expectation"] in report
        for name, _caption in e["figures"]:
            assert (result.out / name).stat().st_size > 1000
            assert f"]({name})" in report
        for c in e["checks"]:
            assert isinstance(c["agrees"], bool) and c["text"] in report
            assert (c["why"] == "") == c["agrees"]
    assert render_report(data) == report  # the report is a pure function of results.json
    names = {m["name"] for m in data["models"]}
    assert len(names) == len(result.models) == len(set(result.models))
    monkeypatch.setenv("DENOISER_MODELS_DIR", str(result.out / "models"))
    listed = {m.name for m in list_models() if m.source == "user"}
    assert names <= listed
    info = read_info(result.out / "models" / "lab-ae-bottleneck-c4.pt")
    assert info.arch == "conv-ae" and info.training["lab"] and is_lab_model(info)
    assert load_checkpoint(info.path).net.config["code_channels"] == 4


def test_micro_run_experiment_structure(micro_run) -> None:
    result, _ = micro_run
    by_key = {r.key: r for r in result.experiments}
    ident = by_key["identity"].tables[0]
    assert [row[0] for row in ident.rows] == ["ae-overcomplete", "dae-overcomplete-g25", "ae-bottleneck-c4"]
    assert ident.rows[0][2] == 8 and ident.rows[2][2] == 0.25  # code values per pixel
    cross = by_key["corruptions"].tables[0]
    assert len(cross.rows) == 5 and all(len(r) == 5 for r in cross.rows)
    var = by_key["variance"].values
    assert set(var["psnr"]) == {"dae-overcomplete-g10", "dae-overcomplete-g25", "dae-overcomplete-g50",
                                "dae-overcomplete-g5-55"}
    rob = by_key["robustness"].values
    assert rob["lambda"][0] is None and len(rob["d_enc"]) == len(rob["psnr"]) == 3
    assert all(d >= 0 for d in rob["d_enc"])
    sp = by_key["sparsity"].values["stats"]
    assert all(0 <= s["mean_activation"] <= 1 for s in sp.values())
    assert len(by_key["sparsity"].values["unit_means"]["sae-rho0.05-beta0.01"]) == dict(SPARSE)["code_channels"]
    auc = by_key["anomaly"].values["auroc"]
    assert all(0 <= a["all"] <= 1 for a in auc.values())
    comp = by_key["compression"].tables[0]
    assert [r[0] for r in comp.rows] == [1, 4]
    gen = by_key["generation"].values
    assert gen["step_ratio"] >= 1 and set(gen["stats"]) == {"real patches (reconstructed)", "full-covariance samples",
                                                            "diagonal samples"}


def test_only_and_save_models(data: tuple[Path, Path], tmp_path: Path, monkeypatch) -> None:
    user = tmp_path / "user-models"
    monkeypatch.setenv("DENOISER_MODELS_DIR", str(user))
    cfg = LabConfig(out=tmp_path / "out", only=("7",), train_data=data[0], test_data=data[1], scale=MICRO,
                    save_models=True)
    result = drain(run_lab(cfg))
    assert [r.key for r in result.experiments] == ["compression"]
    assert sorted(p.name for p in user.glob("*.pt")) == ["lab-ae-bottleneck-c1.pt", "lab-ae-bottleneck-c4.pt"]


@pytest.fixture
def one_thread():
    """Tiny convolutions run fastest on one thread, and much slower on two when the CPU is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_sparse_penalty_moves_mean_activation_towards_rho(data: tuple[Path, Path], tmp_path: Path, one_thread) -> None:
    scale = Scale("t", steps=60, batch=8, patch=16, pool=64, train_images=None, test_images=4, test_size=32,
                  lr=1e-2, wide=False)
    ctx = LabContext(LabConfig(out=tmp_path, train_data=data[0], test_data=data[1], scale=scale))
    rho = 0.05
    means = {}
    for beta in (0.0, 0.5):
        spec = ModelSpec(f"s{beta:g}", SPARSE, sparsity_beta=beta, sparsity_rho=rho)
        net = drain(ctx.model(spec))
        code = ctx.codes(net, ctx.test_images)
        means[beta] = code.mean(dim=(0, 2, 3))
    assert (means[0.5] - rho).abs().mean() < 0.5 * (means[0.0] - rho).abs().mean()


# --- the GUI's engine side -------------------------------------------------------------------------------
def test_activation_grid_and_heatmap() -> None:
    code = np.stack([np.full((4, 5), v, np.float32) for v in np.linspace(0, 1, 5)])
    grid = activation_grid(code, in_unit_interval=True, gap=1)
    assert grid.shape == (2 * 4 + 1, 3 * 5 + 2)
    assert grid[0, 0] == 0 and grid[0, 6] == 0.25 and grid[5, 0] == 0.75 and grid[5, 12] == 0.5  # last cell empty
    scaled = activation_grid(np.stack([np.arange(20.0).reshape(4, 5) - 7]), in_unit_interval=False)
    assert scaled.min() == 0 and scaled.max() == 1
    heat = heatmap(np.linspace(0, 1, 100).reshape(10, 10))
    assert heat.shape == (10, 10, 3) and heat[0, 0].tolist() == [0, 0, 0] and np.allclose(heat[-1, -1], 1)
    assert centre_crop(np.zeros((300, 70, 1), np.float32)).shape == (256, 64, 1)


def test_inspect_work_on_a_sparse_lab_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = build_arch("conv-ae", in_channels=1, width=4, depth=1, code_channels=6, code_activation="sigmoid")
    training = {"lab": True, "training_noise": "clean", "config": {"loss": {"sparsity_beta": 0.1, "sparsity_rho": 0.05}}}
    path = save_checkpoint(tmp_path / "lab-tiny.pt", net, training=training)
    info = read_info(path)
    assert sparsity_target(info) == 0.05 and is_lab_model(info)
    image = (0.3 + 0.4 * np.random.default_rng(0).random((70, 90, 3))).astype(np.float32)
    res = drain(inspect_work(image, info, [info, info], sigma=20, seed=3))
    assert res.image.shape == (64, 64, 1) and res.output.shape == (64, 64, 1) and res.error.shape == (64, 64)
    assert res.code.shape == (6, 32, 32) and res.unit_means.shape == (6,) and res.in_unit_interval
    assert res.rho == 0.05 and len(res.psnr_rows) == 2
    assert res.psnr_rows[0].psnr == res.psnr_rows[1].psnr  # seeded noise: the same twice
    assert res.psnr_rows[0].noisy_psnr == pytest.approx(20 * math.log10(255 / 20), abs=0.6)
