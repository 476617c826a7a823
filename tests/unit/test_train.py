from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.checkpoint import read_info
from denoiser.data import PatchSampler, find_images, split_train_val
from denoiser.errors import DenoiserError
from denoiser.losses import LossConfig
from denoiser.progress import drain
from denoiser.training import (
    NoiseConfig,
    StepBatches,
    TrainConfig,
    batch_stream,
    finish_batch,
    loader_workers,
    lr_at,
    make_noisy,
    noise_on_device,
    read_training_state,
    state_path,
    train,
)


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
    vals = [e.val_score for e in events if e.validation is not None]
    assert len(vals) == 2 and all(np.isfinite(vals))
    assert events[-1].done == events[-1].step == 12 and events[-1].images_per_s > 0 and events[-1].eta_s == 0
    assert events[-1].best_score == max(vals) and [e.saved for e in events if e.saved] != []
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
    # a resume that changes the recipe is refused, naming each change; one that runs longer is not
    stopped = str(state_path(cfg_b.out))
    with pytest.raises(DenoiserError, match=r"lr \(stored 0\.002, now 0\.001\); noise\.sigma_range \(stored \[20, 30\]"):
        next(train(TrainConfig(**{**cfg_b.__dict__, "resume": stopped, "lr": 1e-3,
                                  "noise": NoiseConfig(sigma_range=(5.0, 20.0))})))
    drain(train(TrainConfig(**{**cfg_b.__dict__, "resume": stopped, "steps": 9})))
    assert torch.load(stopped, weights_only=False)["step"] == 9
    # a state written before a setting existed resumes with that setting at its default
    old = torch.load(stopped, weights_only=False)
    del old["config"]["ema"]
    torch.save(old, stopped)
    drain(train(TrainConfig(**{**cfg_b.__dict__, "resume": stopped, "steps": 10})))
    with pytest.raises(DenoiserError, match=r"ema \(stored 0\.0, now 0\.9\)"):
        next(train(TrainConfig(**{**cfg_b.__dict__, "resume": stopped, "steps": 11, "ema": 0.9})))


def test_a_config_survives_its_dict_and_a_misspelt_key_is_refused(tmp_path):
    cfg = TrainConfig(data=["x"], out="m.pt", noise=NoiseConfig(name="camera", level_range=(0.1, 0.9)),
                      loss=LossConfig(sparsity_beta=0.1), arch_config={"channels": [8, 16]})
    stored = cfg.to_dict()
    stored["noise"]["level_range"] = list(stored["noise"]["level_range"])  # as a JSON or TOML recipe gives it
    assert TrainConfig.from_dict(stored) == cfg and "resume" not in stored
    with pytest.raises(DenoiserError, match="unknown NoiseConfig setting jpeg_probability"):
        TrainConfig.from_dict({**stored, "noise": {**stored["noise"], "jpeg_probability": 0.5}})
    with pytest.raises(DenoiserError, match="TrainConfig needs out"):
        TrainConfig.from_dict({"data": ["x"]})


def test_sparsity_and_robustness_terms_train(folder, tmp_path):
    cfg = TrainConfig(data=[str(folder)], out=str(tmp_path / "ae.pt"), arch="conv-ae",
                      arch_config={"width": 8, "depth": 1, "code_channels": 8}, patch=32, batch=4, steps=3,
                      val_every=3, loss=LossConfig("l2", robustness_lambda=1.0, sparsity_beta=0.1))
    assert drain(train(cfg)).exists()


def test_step_batches_depend_on_seed_and_step_only_and_loader_processes_change_nothing(folder):
    files = find_images([folder])
    cfg = TrainConfig(data=[str(folder)], out="unused.pt", patch=32, batch=3, steps=6, seed=5,
                      noise=NoiseConfig(sigma_range=(5, 50), clip_prob=0.5))
    a, b = StepBatches(files, cfg), StepBatches(files, cfg)
    b[1]  # another history of draws before step 4 changes nothing
    for x, y in zip(a[4], b[4], strict=True):
        assert torch.equal(x, y)
    assert not torch.equal(a[4][1], a[5][1])
    assert not torch.equal(a[4][0], StepBatches(files, TrainConfig(**{**cfg.__dict__, "seed": 6}))[4][0])
    here = list(batch_stream(a, 2, workers=0, device=torch.device("cpu")))
    forked = list(batch_stream(b, 2, workers=2, device=torch.device("cpu")))
    assert len(here) == len(forked) == 4
    for x, y in zip(here, forked, strict=True):
        for u, v in zip(x, y, strict=True):
            assert torch.equal(u, v)


def test_loader_workers_default_to_none_on_the_cpu():
    assert loader_workers(None, torch.device("cpu")) == 0
    assert loader_workers(3, torch.device("cpu")) == 3
    assert 0 <= loader_workers(None, torch.device("cuda")) <= 8


def test_time_budget_anneals_the_schedule_and_validates_at_the_stop(folder, tmp_path):
    cfg = TrainConfig(data=[str(folder)], out="x.pt", lr=1e-3, min_lr=1e-5, warmup=0, steps=1000, minutes=1.0)
    assert lr_at(10, cfg) == pytest.approx(lr_at(10, cfg, elapsed=0.0))
    assert lr_at(10, cfg, elapsed=30.0) == pytest.approx((1e-3 + 1e-5) / 2)
    assert lr_at(10, cfg, elapsed=90.0) == pytest.approx(1e-5)
    assert lr_at(900, cfg, elapsed=1.0) < lr_at(10, cfg, elapsed=1.0)
    out = tmp_path / "budget.pt"
    run = TrainConfig(data=[str(folder)], out=str(out), arch_config={"channels": [8, 16]}, patch=32, batch=2,
                      steps=10**6, minutes=0.03, val_every=10**6, val_fraction=0.2, warmup=1)
    events = []
    gen = train(run)
    while True:
        try:
            events.append(next(gen))
        except StopIteration:
            break
    last = events[-1]
    assert 0 < last.done < run.steps and last.validation is not None and last.message.startswith("stopped at step")
    assert read_info(out).metrics["history"][-1][0] == last.done


def test_noise_made_where_the_model_trains_follows_the_items_seed(folder):
    files = find_images([folder])
    cfg = TrainConfig(data=[str(folder)], out="unused.pt", patch=32, batch=4, steps=3, seed=2,
                      noise=NoiseConfig(sigma_range=(20, 20), clip_prob=0.0))
    cpu = torch.device("cpu")
    assert not noise_on_device(cfg, cpu) and noise_on_device(cfg, torch.device("cuda"))
    assert not noise_on_device(TrainConfig(**{**cfg.__dict__, "noise": NoiseConfig(name="camera")}), torch.device("cuda"))
    told_estimates = NoiseConfig(sigma_range=(20, 20), clean_prob=0.2, clean_sigma="estimate")
    assert not noise_on_device(TrainConfig(**{**cfg.__dict__, "noise": told_estimates}), torch.device("cuda"))
    later = StepBatches(files, cfg, noise_later=True)[1]
    now = StepBatches(files, cfg)[1]
    assert len(later) == 2 and torch.equal(later[0], now[0])
    clean, noisy, sigma = finish_batch(later, cfg, cpu)
    assert noisy.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(sigma, torch.full((4,), 20 / 255))
    assert (noisy - clean).std().item() * 255 == pytest.approx(20, rel=0.05)
    torch.testing.assert_close(finish_batch(later, cfg, cpu)[1], noisy)
    torch.testing.assert_close(finish_batch(now, cfg, cpu)[1], now[1])  # the CPU form passes through


def test_resume_from_a_file_that_is_not_a_training_state_says_so(tmp_path):
    from denoiser.errors import CheckpointError

    with pytest.raises(CheckpointError, match="does not exist"):
        read_training_state(tmp_path / "nothing.state.pt")
    picture = tmp_path / "photo.png"
    PILImage.fromarray(np.zeros((8, 8), np.uint8)).save(picture)
    with pytest.raises(CheckpointError, match="not a training state"):
        read_training_state(picture)
    torch.save({"model": {}}, tmp_path / "partial.pt")
    with pytest.raises(CheckpointError, match="no optimizer, step"):
        read_training_state(tmp_path / "partial.pt")


def test_sigma_power_puts_more_samples_at_low_sigma_and_power_1_is_unchanged():
    clean = torch.zeros(4000, 1, 2, 2)
    fractions = {}
    for power in (1.0, 2.0):
        cfg = NoiseConfig(sigma_range=(0.0, 75.0), sigma_power=power, clip_prob=0.0)
        _, sigma = make_noisy(clean, cfg, torch.Generator().manual_seed(3))
        fractions[power] = float((sigma * 255 < 15).float().mean())
        assert 0 <= float(sigma.min()) and float(sigma.max()) * 255 <= 75.0 + 1e-4
    assert abs(fractions[1.0] - 0.2) < 0.03 and abs(fractions[2.0] - 0.447) < 0.03
    _, sigma = make_noisy(clean, NoiseConfig(clip_prob=0.0), torch.Generator().manual_seed(3))
    expected = 75.0 * torch.rand(4000, generator=torch.Generator().manual_seed(3)) / 255.0
    assert torch.allclose(sigma, expected)  # the uniform default draws exactly as before


class _Payload:
    """Pickles to a call that creates a marker file: what a crafted *.state.pt would run on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 (pickle protocol)
        return (Path.touch, (self.marker,))


def test_a_crafted_training_state_is_refused_without_running_code(tmp_path: Path) -> None:
    from denoiser.errors import CheckpointError

    marker = tmp_path / "ran"
    bad = tmp_path / "evil.state.pt"
    torch.save({"model": _Payload(marker), "optimizer": {}, "step": 0, "best": 0.0, "history": [], "torch_rng": None,
                "py_rng": None, "config": {}}, bad)
    with pytest.raises(CheckpointError, match="not a training state"):
        read_training_state(bad)
    assert not marker.exists()  # weights_only loading refused the payload instead of calling it


def test_a_run_that_cannot_train_or_save_is_refused_before_the_first_step(folder, tmp_path, monkeypatch):
    from denoiser.errors import DenoiserError

    base = {"data": [str(folder)], "arch_config": {"channels": [8, 16]}, "patch": 32, "batch": 2, "steps": 50}
    with pytest.raises(DenoiserError, match="minutes must be positive"):
        next(train(TrainConfig(**base, out=str(tmp_path / "m.pt"), minutes=0)))
    blocker = tmp_path / "a-file"
    blocker.write_text("in the way")
    built = []
    monkeypatch.setattr("denoiser.training.supervised.build_model", lambda cfg: built.append(cfg))  # no training may start
    with pytest.raises(DenoiserError, match="cannot write"):
        next(train(TrainConfig(**base, out=str(blocker / "m.pt"))))
    assert not built and blocker.read_text() == "in the way" and not (tmp_path / "m.pt").exists()


def test_raw_noise_trains_a_four_plane_model_on_unprocessed_patches(folder, tmp_path):
    cfg = TrainConfig(data=[str(folder)], out=str(tmp_path / "raw.pt"), arch_config={"channels": [8, 16]},
                      noise=NoiseConfig(name="raw", level_range=(0.3, 0.9), val_sigma=50), patch=32, batch=4,
                      steps=6, val_every=3, lr=1e-3, warmup=0)
    clean, noisy, sigma = StepBatches(find_images([folder]), cfg)[0]
    assert clean.shape == noisy.shape == (4, 4, 16, 16) and sigma.shape == (4, 1, 16, 16)
    out = drain(train(cfg))
    info = read_info(out)
    assert info.in_channels == 4 and info.noise["name"] == "raw"
    vals = [h[2] for h in info.metrics["history"]]
    assert len(vals) == 2 and all(v > 10 for v in vals)  # scored at 16 bits on the linear planes
    with pytest.raises(DenoiserError, match="without real pairs"):
        drain(train(TrainConfig(**{**cfg.__dict__, "real_data": [str(folder)], "out": str(tmp_path / "r.pt")})))


def test_the_sampler_names_the_image_each_patch_came_from(tmp_path):
    d = tmp_path / "flat"
    d.mkdir()
    for i in range(3):  # each image one flat value, so a patch tells its source
        PILImage.fromarray(np.full((40, 40, 3), 40 * (i + 1), np.uint8)).save(d / f"{i}.png")
    files = find_images([str(d)])
    patches, sources = PatchSampler(files, 16, 3, seed=2).sample_with_sources(12)
    assert len(sources) == 12 and len(set(sources)) > 1
    for patch, src in zip(patches, sources, strict=True):
        assert round(float(patch.mean()) * 255) == 40 * (int(src.stem) + 1)
    torch.testing.assert_close(PatchSampler(files, 16, 3, seed=2).sample(12), patches)  # the same draws


def test_the_cosine_schedule_runs_from_lr_to_min_lr_and_stays_there():
    from denoiser.training import cosine_lr

    assert cosine_lr(0.0, 1e-3, 1e-5) == pytest.approx(1e-3)
    assert cosine_lr(0.5, 1e-3, 1e-5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert cosine_lr(1.0, 1e-3, 1e-5) == cosine_lr(3.0, 1e-3, 1e-5) == pytest.approx(1e-5)


def test_a_learning_rate_under_the_floor_stays_constant_instead_of_climbing(folder):
    gentle = TrainConfig(data=[str(folder)], out="x.pt", lr=5e-6, warmup=0, steps=1000, minutes=1.0)
    assert gentle.min_lr == 1e-5  # the default floor sits above this --lr
    rates = [lr_at(s, gentle, elapsed=e) for s, e in ((0, 0.0), (500, 30.0), (999, 60.0), (999, 90.0))]
    assert rates == pytest.approx([5e-6] * 4)
    usual = TrainConfig(data=[str(folder)], out="x.pt", lr=5e-5, warmup=0, steps=1000)
    assert lr_at(999, usual) == pytest.approx(1e-5, rel=1e-3) and lr_at(0, usual) == pytest.approx(5e-5)


def test_train_cli_takes_the_floor_of_the_schedule_and_freezing_the_encoder(tmp_path):
    from denoiser.cli import build_parser
    from denoiser.cli.train import _train_config

    argv = ["train", "--data", "d", "--out", str(tmp_path / "m.pt")]
    plain = _train_config(build_parser().parse_args(argv))
    assert plain.min_lr == 1e-5 and plain.freeze_encoder is False
    cfg = _train_config(build_parser().parse_args([*argv, "--min-lr", "0", "--freeze-encoder"]))
    assert cfg.min_lr == 0.0 and cfg.freeze_encoder is True
    assert TrainConfig.from_dict(cfg.to_dict()).freeze_encoder is True  # as a checkpoint stores it
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--min-lr", "-1e-5"])


def test_freezing_the_encoder_trains_the_decoder_alone(folder, tmp_path):
    from denoiser.checkpoint import load_model
    from tests.helpers import train_frozen_encoder_run

    base, out = train_frozen_encoder_run(folder, tmp_path, steps=4)
    before, after = load_model(base).net, load_model(out).net
    encoder = {id(p) for m in after.encoder_modules() for p in m.parameters()}
    moved = {name: not torch.equal(p, before.state_dict()[name]) for name, p in after.named_parameters()}
    frozen = {name for name, p in after.named_parameters() if id(p) in encoder}
    assert frozen and not any(moved[n] for n in frozen)
    assert any(moved[n] for n in moved if n not in frozen)
