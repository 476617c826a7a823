"""Fine-tuning a model on a user's own photos, with clean photos or with noisy ones only.

`finetune(config)` yields `Progress` events (loss, validation score, ETA; before/after thumbnails in
noisy mode) and returns a `FinetuneResult`. Closing the generator cancels: the best checkpoint so far
and a resumable state file are kept, and the checkpoint gets its card either way.

- **clean** mode: supervised, through `denoiser.train.train` from the base checkpoint, on pairs made
  with the base model's own noise model (or a chosen one) — validation PSNR on synthetic pairs.
- **noisy** mode: self-supervised Neighbor2Neighbor on pixel-shuffle down-sampled patches, with the
  full-resolution output distilled from the model's own output on those sub-images and an anchor to
  the base model (`denoiser.selfsupervised`) — a no-reference validation score (how well the
  model predicts an independent noisy neighbour, in dB), the residual noise σ of its output, and
  thumbnails of a validation crop before and after.

At the end the fine-tuned model is compared with the base on the validation images; the card (the
checkpoint's description and `training["finetune"]`) says whether it is better — in clean mode. In
noisy mode there is no clean image to compare with, and the no-reference score is only a proxy that
has risen while the true PSNR fell (measured in `denoiser.selfsupervised`), so the card says "unverified".
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from denoiser import distributed
from denoiser.archs import DenoiserNet, build_arch
from denoiser.checkpoint import (
    LoadedModel,
    load_checkpoint,
    read_info,
    resolve_model,
    save_checkpoint,
    user_models_dir,
    write_torch_file,
)
from denoiser.data import PatchSampler, find_images, split_train_val, validation_crops
from denoiser.device import resolve_device
from denoiser.errors import DenoiserError
from denoiser.estimate import estimate_sigma
from denoiser.imageio import read_header
from denoiser.losses import LossConfig
from denoiser.progress import Progress, ProgressGen
from denoiser.selfsupervised import full_resolution_pass, n2n_score, self_supervised_loss
from denoiser.train import (
    NoiseConfig,
    TrainConfig,
    adam_for,
    check_output_writable,
    check_resume_config,
    lr_at,
    read_training_state,
    state_path,
    train,
    training_precision,
    validate,
    validation_pairs,
)

MODES = ("clean", "noisy")
MODE_DEFAULTS: dict[str, dict[str, float]] = {
    "clean": {"lr": 5e-5, "patch": 96, "batch": 8},
    "noisy": {"lr": 1e-5, "patch": 128, "batch": 4},
}
DEFAULT_MINUTES = 10.0
SCORE_NAMES = {"clean": "PSNR", "noisy": "N2N score"}
THUMB = 128
NOISY_VAL_LIMIT = 8
SIGMA_CROP = 1024
BETTER_MARGIN_DB = 0.01  # a gain smaller than the shown precision is not called better
#: Noisy mode keeps the base unchanged when its output still holds less than this share of the noise σ
#: estimated on the user's photos: such a base already removes their noise, and self-supervised
#: fine-tuning pulls a model towards what the N2N objective reaches, not beyond. The shares measured
#: for matched and mismatched bases, and what fine-tuning such a base cost, are in
#: docs/notes/self_supervised.md and docs/bench/finetune.md.
NOTHING_TO_LEARN = 0.5


@dataclass
class FinetuneConfig:
    """A fine-tuning run; None means the mode's default (see `MODE_DEFAULTS`)."""

    data: list[str]
    base: str
    out: str
    mode: str = "clean"
    steps: int | None = None  # None: as many as `minutes` allows
    minutes: float | None = None  # None with steps None: DEFAULT_MINUTES
    val_fraction: float = 0.1
    freeze_encoder: bool = False
    device: str = "auto"
    precision: str = "auto"  # as `TrainConfig.precision`: mixed on CUDA and on CPUs with native bf16, else fp32
    resume: str | None = None
    noise: str | None = None  # clean mode: noise model (default: the base model's)
    sigma_range: tuple[float, float] | None = None  # clean mode, gaussian σ range (default: the base's)
    lr: float | None = None
    patch: int | None = None
    batch: int | None = None
    seed: int = 0
    pd: int = 2  # noisy mode: pixel-shuffle down-sampling stride (1 = off)
    gamma: float = 2.0  # noisy mode: weight of the Neighbor2Neighbor regulariser
    anchor: float = 0.1  # noisy mode: weight of ‖f(y) − f_base(y)‖² (1.0 would stop halfway to the N2N optimum)
    distill: float = 1.0  # noisy mode: weight of the full-resolution self-distillation from the PD sub-images
    cache_mb: float = 256.0  # decoded-image cache budget of the patch sampler
    overwrite: bool = False
    threads: int | None = None
    description: str = ""
    force: bool = False  # noisy mode: fine-tune even a base that already removes the photos' noise

    def setting(self, name: str) -> Any:
        """A hyper-parameter with the mode's default filled in."""
        value = getattr(self, name)
        if value is not None:
            return value
        default = MODE_DEFAULTS[self.mode][name]
        return int(default) if name in ("patch", "batch") else default


@dataclass
class FinetuneResult:
    """How a run ended: the checkpoint, and the base and fine-tuned scores on the validation images.

    In clean mode the scores are PSNR against clean images, so `better` is established. In noisy mode
    they are a no-reference proxy (`verified` False): measured on SIDD (`denoiser.selfsupervised`), it
    rose while the PSNR against the clean references fell, so a noisy-mode run never claims to be
    better, it only says which way the proxy moved.
    """

    path: Path
    mode: str
    steps: int
    score_name: str
    before: float | None
    after: float | None
    better: bool | None  # None: not established (no validation images, or only a no-reference proxy)
    cancelled: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    verified: bool = True  # False: the scores are a no-reference proxy, not an error against clean images

    def verdict(self) -> str:
        """One line for the user: better or not, by how much, and how far the scores can be trusted."""
        if self.before is None or self.after is None:
            return "no validation images: the fine-tuned model could not be compared with the base"
        unit = " dB"
        delta = self.after - self.before
        text = (f"validation {self.score_name} base {self.before:.2f}{unit} → fine-tuned {self.after:.2f}{unit} "
                f"({delta:+.2f}{unit})")
        if self.extra.get("kept_base"):
            return (f"the base already removes this noise (its output keeps {self.extra['noise_left']:.0%} of the "
                    "σ estimated on your photos): self-supervised fine-tuning cannot improve such a model and "
                    "lowered one in our benchmark (docs/bench/finetune.md), so the saved model is the base, unchanged "
                    "(the command line's --force fine-tunes anyway)")
        if not self.verified:
            moved = "rose" if delta >= BETTER_MARGIN_DB else "did not rise"
            return (f"{text}: the no-reference score {moved}, but it is not PSNR and on real camera noise it can "
                    "rise while quality falls; compare the before/after thumbnails before relying on this model")
        if self.better:
            return f"{text}: better than the base"
        return f"{text}: NOT better than the base — the file is kept but flagged in its card"


def output_path(name_or_path: str | Path) -> Path:
    """`NAME` (no folder, no .pt) → the user models folder's NAME.pt; anything else is a path."""
    s = str(name_or_path)
    if not s or s in (".", ".."):
        raise DenoiserError("the output model needs a name")
    if os.sep in s or "/" in s or s.endswith(".pt"):
        return Path(s).expanduser()
    return user_models_dir() / f"{s}.pt"


def unique_output_name(base_name: str) -> str:
    """'<base>-ft', or '<base>-ft-2', … — the first name not used in the user models folder."""
    stem = Path(base_name).stem or "model"
    name, n = f"{stem}-ft", 1
    while (user_models_dir() / f"{name}.pt").exists():
        n += 1
        name = f"{stem}-ft-{n}"
    return name


def base_noise_config(noise: dict[str, Any], name: str | None = None,
                      sigma_range: tuple[float, float] | None = None) -> NoiseConfig:
    """The noise config of a checkpoint's `noise` dict, optionally with another noise model or σ range."""
    known = {f.name for f in fields(NoiseConfig)}
    values = {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in noise.items() if k in known}
    if name is not None and name != values.get("name"):
        values = {"name": name, **({"sigma_map": values["sigma_map"]} if "sigma_map" in values else {})}
    cfg = NoiseConfig(**values)
    if sigma_range is not None:
        lo, hi = sigma_range
        if not 0 <= lo <= hi <= 255:
            raise DenoiserError(f"the σ range must satisfy 0 ≤ LO ≤ HI ≤ 255, not {lo:g},{hi:g}")
        cfg.sigma_range = (float(lo), float(hi))
    return cfg


# --- memory -------------------------------------------------------------------------------------------


@torch.no_grad()
def _activation_bytes_per_pixel(net: DenoiserNet) -> float:
    """Bytes autograd keeps per input pixel: the leaf modules' outputs, plus a quarter for sums and reshapes.

    Checked against the resident-memory growth of a training step of the bundled UNet (within ~10 %).
    """
    size = max(64, net.size_multiple * 4)
    total = 0

    def hook(_m: torch.nn.Module, _i: Any, out: Any) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out.numel()

    leaves = [m for m in net.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        net(torch.zeros(1, net.in_channels, size, size), torch.zeros(1))
    finally:
        for h in handles:
            h.remove()
    return 1.25 * 4 * total / (size * size)


def _decoded_mb(files: list[Path], channels: int, sample: int = 200) -> float:
    """Size of the images decoded as the sampler stores them (headers only; a sample, scaled)."""
    if not files:
        return 0.0
    step = max(1, len(files) // sample)
    sizes = []
    for f in files[::step][:sample]:
        try:
            w, h, _c = read_header(f)
        except DenoiserError:
            continue
        sizes.append(w * h * channels)
    return float(np.mean(sizes)) * len(files) / 1e6 if sizes else 0.0


def estimate_memory_mb(cfg: FinetuneConfig) -> dict[str, float]:
    """Rough peak memory of a run beyond the Python/PyTorch runtime, in MB, with its parts.

    Model: weights, gradients and Adam's two moments (plus the frozen base in noisy mode); activations
    of the batch kept for the backward pass; the decoded-image cache (bounded by `cache_mb`); the
    validation crops.
    """
    info = read_info(resolve_model(cfg.base))
    net = build_arch(info.arch, **info.arch_config).eval()
    channels = info.in_channels
    patch, batch = cfg.setting("patch"), cfg.setting("batch")
    params_mb = net.parameter_count() * 4 / 1e6
    model = params_mb * (4 + (1 if cfg.mode == "noisy" else 0))
    full_res = full_resolution_pass(cfg.anchor, cfg.distill, cfg.pd)
    grad_pixels = batch * patch * patch * ((0.25 + (1.0 if full_res else 0.0)) if cfg.mode == "noisy" else 1.0)
    activations = _activation_bytes_per_pixel(net) * grad_pixels / 1e6
    files = find_images(cfg.data)
    if not files:
        raise DenoiserError(f"no images found in {', '.join(map(str, cfg.data))}")
    n_val = len(split_train_val(files, cfg.val_fraction, cfg.seed)[1])
    images = min(cfg.cache_mb, _decoded_mb(files, channels))
    validation = min(n_val, 16) * 256 * 256 * channels * 4 * (2 if cfg.mode == "clean" else 3) / 1e6
    parts = {"model": model, "activations": activations, "images": images, "validation": validation}
    parts["total"] = sum(parts.values())
    return parts


# --- shared set-up --------------------------------------------------------------------------------------


def _seconds_per_step(step: Callable[[], None], reps: int = 2) -> float:
    step()  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        step()
    return (time.perf_counter() - t) / reps


def _plan_steps(cfg: FinetuneConfig, net: DenoiserNet, base: DenoiserNet, device: torch.device,
                channels: int, sigma_per_input: bool) -> int:
    """Steps that fit the time budget, from a timed step on random data (15 % kept for validation)."""
    patch, batch = cfg.setting("patch"), cfg.setting("batch")
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        x = torch.rand(batch, channels, patch, patch, generator=gen).to(device)
        sigma = torch.full((batch,), 0.05, device=device)
        if cfg.mode == "clean":
            loss = net.encode_decode(x, sigma).image.float().abs().mean()
        else:
            loss = self_supervised_loss(net, x, None if sigma_per_input else sigma, gen=gen, gamma=cfg.gamma,
                                        pd=cfg.pd, base=base, anchor=cfg.anchor, distill=cfg.distill).total
        loss.backward()
        net.zero_grad(set_to_none=True)

    minutes = cfg.minutes if cfg.minutes is not None else DEFAULT_MINUTES
    return max(1, int(minutes * 60 * 0.85 / max(_seconds_per_step(step), 1e-6)))


@dataclass
class _Setup:
    cfg: FinetuneConfig
    base_path: Path
    base: LoadedModel
    out: Path
    train_files: list[Path]
    val_files: list[Path]
    device: torch.device
    steps: int | None  # fixed by --steps or by the resumed state; None: plan from the time budget
    minutes: float | None
    resume_state: dict[str, Any] | None


def _prepare(cfg: FinetuneConfig) -> _Setup:
    if cfg.mode not in MODES:
        raise DenoiserError(f"unknown mode '{cfg.mode}' (use clean or noisy)")
    if not 0 <= cfg.val_fraction < 1:
        raise DenoiserError("the validation fraction must be within [0, 1)")
    if cfg.pd < 1:
        raise DenoiserError("the PD stride must be 1 (off) or more")
    for name in ("steps", "minutes", "lr", "patch", "batch"):
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise DenoiserError(f"{name} must be positive")
    base_path = resolve_model(cfg.base)
    base = load_checkpoint(base_path)
    out = output_path(cfg.out)
    if out.resolve() == base_path.resolve():
        raise DenoiserError("the output would replace the base model: choose another name")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    files = find_images(cfg.data)
    if not files:
        raise DenoiserError(f"no images found in {', '.join(map(str, cfg.data))}")
    train_files, val_files = split_train_val(files, cfg.val_fraction, cfg.seed)
    state = None
    steps = cfg.steps
    if cfg.resume:
        state = read_training_state(cfg.resume)
        saved_mode = state.get("finetune", {}).get("mode", "clean")
        if saved_mode != cfg.mode:
            raise DenoiserError(f"'{cfg.resume}' is the state of a {saved_mode}-mode run, not {cfg.mode}")
        steps = steps or int(state["config"]["steps"])
    elif out.exists() or state_path(out).exists():
        if not cfg.overwrite:
            raise DenoiserError(f"'{out}' already exists: choose another name, resume it, or overwrite it")
        if distributed.from_environment().is_main:  # under torchrun, rank 0 alone touches the files
            out.unlink(missing_ok=True)
            state_path(out).unlink(missing_ok=True)
    check_output_writable(out)  # creates the models folder; a read-only one is found before any training
    minutes = cfg.minutes if cfg.minutes is not None else (DEFAULT_MINUTES if steps is None else None)
    return _Setup(cfg, base_path, base, out, train_files, val_files, resolve_device(cfg.device), steps, minutes, state)


def _train_config(s: _Setup, steps: int) -> TrainConfig:
    cfg, info = s.cfg, s.base.info
    base_cfg = info.training.get("config", {}) if isinstance(info.training.get("config"), dict) else {}
    loss = LossConfig(reconstruction=base_cfg.get("loss", {}).get("reconstruction", "l1"))
    lr = float(cfg.setting("lr"))
    val_every = max(1, math.ceil(steps / 10))
    stored = s.resume_state.get("config", {}) if s.resume_state else {}
    warmup = int(stored.get("warmup", max(1, min(100, steps // 10))))  # more steps on resume keep the schedule's start
    return TrainConfig(
        data=[str(d) for d in cfg.data], out=str(s.out), arch=info.arch, arch_config=dict(info.arch_config),
        channels=info.in_channels, noise=base_noise_config(info.noise, cfg.noise, cfg.sigma_range), loss=loss,
        patch=cfg.setting("patch"), batch=cfg.setting("batch"), steps=steps, lr=lr, min_lr=lr / 10,
        warmup=warmup, device=cfg.device, precision=cfg.precision, seed=cfg.seed, val_fraction=cfg.val_fraction,
        val_every=val_every, checkpoint_every=max(1, min(250, val_every)), log_every=max(1, min(10, steps // 20)),
        minutes=s.minutes, base=str(s.base_path), freeze_encoder=cfg.freeze_encoder, resume=cfg.resume,
        threads=cfg.threads, cache_mb=cfg.cache_mb, description=cfg.description,
    )


def _finetune_card(s: _Setup, steps_done: int, steps_run: int, planned: int, before: float | None,
                   after: float | None, cancelled: bool, extra_metrics: dict[str, Any]) -> FinetuneResult:
    """Rewrite the saved checkpoint with its card: base, data, mode, steps, scores and the verdict.

    `steps_done` counts the steps of the saved (best) weights, `steps_run` those the run reached.
    """
    loaded = load_checkpoint(s.out)
    cfg = s.cfg
    valid = before is not None and after is not None and math.isfinite(before) and math.isfinite(after)
    verified = cfg.mode == "clean"
    better = (after - before >= BETTER_MARGIN_DB) if valid and verified else None
    result = FinetuneResult(s.out, cfg.mode, steps_done, SCORE_NAMES[cfg.mode], before if valid else None,
                            after if valid else None, better, cancelled, extra_metrics, verified)
    info = {
        "base": s.base.info.name, "base_path": str(s.base_path), "data": [str(d) for d in cfg.data],
        "mode": cfg.mode, "steps": steps_done, "steps_run": steps_run, "planned_steps": planned,
        "score": SCORE_NAMES[cfg.mode],
        "score_before": result.before, "score_after": result.after, "better": better, "verified": verified,
        "cancelled": cancelled,
        "train_images": len(s.train_files), "val_images": len(s.val_files),
        "settings": {k: v for k, v in asdict(cfg).items() if k not in ("data", "base", "out", "resume", "description")},
    }
    folders = ", ".join(Path(d).name or str(d) for d in cfg.data[:3]) + (", …" if len(cfg.data) > 3 else "")
    kept = bool(extra_metrics.get("kept_base"))
    info["kept_base"] = kept
    if kept:
        verdict = "the base, unchanged: it already removes this noise"
    elif not valid:
        verdict = "not compared"
    elif not verified:
        verdict = "unverified (no clean references: compare before/after)"
    else:
        verdict = "better than the base" if better else "NOT better than the base"
    description = cfg.description or (
        f"Fine-tuned from {s.base.info.name} on {folders} ({cfg.mode} photos, {steps_done} steps"
        f"{', cancelled' if cancelled else ''}): {verdict}")
    if better is False and cfg.description:
        description += " — NOT better than the base"
    save_checkpoint(s.out, loaded.net, noise=loaded.info.noise,
                    training={**loaded.info.training, "steps": steps_done, "finetune": info},
                    metrics={**loaded.info.metrics, **extra_metrics}, description=description)
    return result


def finetune(cfg: FinetuneConfig) -> ProgressGen[FinetuneResult]:
    """Fine-tune `cfg.base` on the photos in `cfg.data`; yields progress, returns the outcome."""
    ranks = distributed.from_environment()
    s = _prepare(cfg)
    # Under torchrun every rank trains on its share of each step's batch (see denoiser.distributed); rank 0
    # validates, saves and writes the card. The group is joined here so the ranks can agree on a step plan.
    s = replace(s, device=distributed.start(ranks, s.device, cfg.setting("batch")))
    try:
        if cfg.mode == "clean":
            return (yield from _finetune_clean(s, ranks))
        return (yield from _finetune_noisy(s, ranks))
    finally:
        distributed.stop(ranks)


def _agreed_steps(steps: int, ranks: distributed.Ranks, device: torch.device) -> int:
    """One step count for all ranks (each plans its own from the time budget; the largest is taken)."""
    return int(distributed.agree([float(steps)], ranks, device)[0])


def _rank_result(s: _Setup, steps: int, before: float | None, cancelled: bool) -> FinetuneResult:
    """What a rank other than 0 returns: rank 0 writes and reports the checkpoint and its card."""
    return FinetuneResult(s.out, s.cfg.mode, steps, SCORE_NAMES[s.cfg.mode], before, None, None, cancelled,
                          verified=s.cfg.mode == "clean")


def _common_data(s: _Setup, step: int, steps: int, elapsed: float, eta: float, before: float | None,
                 best: float | None) -> dict[str, Any]:
    if s.minutes is not None:
        eta = min(eta, max(0.0, s.minutes * 60 - elapsed))
    return {"mode": s.cfg.mode, "step": step, "steps": steps, "eta_s": eta, "elapsed_s": elapsed,
            "score_name": SCORE_NAMES[s.cfg.mode], "before": before,
            "best": best if best is not None and math.isfinite(best) else None, "out": str(s.out)}


# --- clean mode -----------------------------------------------------------------------------------------


def _finetune_clean(s: _Setup, ranks: distributed.Ranks) -> ProgressGen[FinetuneResult]:
    """Supervised fine-tuning through `train()` (which runs the ranks' data parallelism), with the base's
    score on the same validation pairs."""
    yield Progress(0, 0, "loading the base model and the validation images", {"mode": "clean"})
    base_net = s.base.net.to(s.device)
    if s.cfg.setting("patch") % max(1, base_net.size_multiple):
        raise DenoiserError(f"the patch size must be a multiple of {base_net.size_multiple} for this model")
    steps = s.steps or _agreed_steps(_plan_steps(s.cfg, base_net, base_net, s.device, s.base.net.in_channels,
                                                 False), ranks, s.device)
    tcfg = _train_config(s, steps)
    pairs = validation_pairs(s.val_files, tcfg) if ranks.is_main else []
    before = validate(base_net, pairs, s.device) if pairs else None
    elapsed_before = float(s.resume_state.get("elapsed", 0.0)) if s.resume_state else 0.0
    t0 = time.time()
    yield Progress(0, steps, f"base model: validation PSNR {before:.2f} dB" if before is not None else "training",
                   _common_data(s, 0, steps, elapsed_before, math.inf, before, None))
    inner = train(tcfg)
    step, best, completed, cancelled = 0, None, False, False
    result: FinetuneResult | None = None
    try:
        while True:
            try:
                ev = next(inner)
            except StopIteration:
                completed = True
                break
            step = int(ev.data.get("step", step))
            if "best_val_psnr" in ev.data and math.isfinite(ev.data["best_val_psnr"]):
                best = float(ev.data["best_val_psnr"])
            elapsed = elapsed_before + time.time() - t0
            data = {**ev.data, **_common_data(s, step, steps, elapsed, float(ev.data.get("eta_s", 0.0)), before, best)}
            if "val_psnr" in ev.data:
                data["val_score"] = ev.data["val_psnr"]
            yield Progress(ev.done, ev.total, ev.message, data)
    except (GeneratorExit, KeyboardInterrupt):
        cancelled = True
        raise
    finally:
        inner.close()  # on cancel: train() keeps the best checkpoint and writes its state file
        if not ranks.is_main:
            result = _rank_result(s, step, before, cancelled)
        elif (completed or cancelled) and s.out.exists():
            saved = read_info(s.out)
            steps_run = int(read_training_state(state_path(s.out))["step"])
            result = _finetune_card(s, int(saved.training.get("steps", step)), steps_run, steps, before,
                                    saved.metrics.get("val_psnr"), cancelled, {})
    if result is None:
        raise DenoiserError(f"training ended without writing '{s.out}'")
    return result


# --- noisy mode ----------------------------------------------------------------------------------------


def _image_sigma(img: np.ndarray) -> float:
    """σ (0–255) of an image as inference estimates it: on its centre crop."""
    h, w = img.shape[:2]
    y, x = max(0, (h - SIGMA_CROP) // 2), max(0, (w - SIGMA_CROP) // 2)
    return estimate_sigma(img[y : y + SIGMA_CROP, x : x + SIGMA_CROP])


def _noisy_batch(sampler: PatchSampler, batch: int, sigmas: dict[Path, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """Patches of the noisy photos and the σ/255 of the image each came from (`sigmas` caches it per image)."""
    patches, levels = [], []
    for _ in range(batch):
        patch, (path,) = sampler.sample_with_sources(1)
        if path not in sigmas:
            sigmas[path] = _image_sigma(sampler.cache.get(path))
        patches.append(patch)
        levels.append(sigmas[path] / 255.0)
    return torch.cat(patches), torch.tensor(levels, dtype=torch.float32)


@dataclass
class _NoisyVal:
    crop: torch.Tensor  # (1, C, h, w), sides multiples of the training unit
    sigma: torch.Tensor  # (1,) σ/255 of the crop


def _noisy_validation(files: list[Path], channels: int, unit: int) -> list[_NoisyVal]:
    out = []
    for crop in validation_crops(files, channels, size=256, limit=NOISY_VAL_LIMIT):
        h, w = crop.shape[2] // unit * unit, crop.shape[3] // unit * unit
        if h == 0 or w == 0:
            continue
        y, x = (crop.shape[2] - h) // 2, (crop.shape[3] - w) // 2
        c = crop[:, :, y : y + h, x : x + w].contiguous()
        out.append(_NoisyVal(c, torch.tensor([estimate_sigma(c[0].permute(1, 2, 0).numpy()) / 255.0])))
    return out


def _thumb(x: torch.Tensor) -> np.ndarray:
    """Centre THUMB×THUMB of a (1, C, h, w) image as (h, w, C) uint8."""
    a = x[0].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    h, w = a.shape[:2]
    y, x0 = max(0, (h - THUMB) // 2), max(0, (w - THUMB) // 2)
    return np.ascontiguousarray((a[y : y + THUMB, x0 : x0 + THUMB] * 255 + 0.5).astype(np.uint8))


@torch.no_grad()
def _score_noisy(net: DenoiserNet, val: list[_NoisyVal], pd: int, per_input: bool,
                 device: torch.device) -> tuple[float, float, np.ndarray | None]:
    """(mean N2N score dB, mean residual σ of the output, output thumbnail of the first crop)."""
    was = net.training
    net.eval()
    scores, residual, thumb = [], [], None
    for i, v in enumerate(val):
        crop = v.crop.to(device)
        sigma = None if per_input else v.sigma.to(device)
        scores.append(n2n_score(net, crop, sigma, pd, seed=1000 + i))
        out = net(crop, v.sigma.to(device)).float().clamp(0, 1)
        residual.append(estimate_sigma(out[0].permute(1, 2, 0).cpu().numpy()))
        if i == 0:
            thumb = _thumb(out)
    net.train(was)
    return float(np.mean(scores)), float(np.mean(residual)), thumb


def _noise_left(residual_sigma: float | None, val: list[_NoisyVal]) -> float | None:
    """Share of the photos' estimated noise σ still in the base's output (None without validation crops)."""
    if residual_sigma is None or not val:
        return None
    sigma = float(np.mean([float(v.sigma) for v in val])) * 255.0
    return residual_sigma / sigma if sigma > 0 else None


def _finetune_noisy(s: _Setup, ranks: distributed.Ranks) -> ProgressGen[FinetuneResult]:
    """Self-supervised fine-tuning (Neighbor2Neighbor + PD + anchor) with a resumable state file; under
    torchrun each rank takes its share of every step's patches and the gradients are averaged."""
    cfg, device = s.cfg, s.device
    yield Progress(0, 0, "loading the base model and the validation images", {"mode": "noisy"})
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    base = s.base.net.to(device).eval()
    for p in base.parameters():
        p.requires_grad_(False)
    net = copy.deepcopy(base)
    for p in net.parameters():
        p.requires_grad_(True)
    if device.type == "cpu":
        base = base.to(memory_format=torch.channels_last)
        net = net.to(memory_format=torch.channels_last)
    per_input = s.base.info.noise.get("sigma_map") == "estimate"
    unit = 2 * cfg.pd * max(1, net.size_multiple)
    patch, batch = cfg.setting("patch"), cfg.setting("batch")
    if patch % unit:
        raise DenoiserError(f"the patch size must be a multiple of {unit} for this model and PD stride")
    val = _noisy_validation(s.val_files, net.in_channels, unit)
    before, before_sigma, before_thumb = _score_noisy(base, val, cfg.pd, per_input, device) if val else (None, None, None)
    thumbs = {"noisy": _thumb(val[0].crop), "before": before_thumb} if val else {}
    noise_left = _noise_left(before_sigma, val)
    if noise_left is not None and noise_left < NOTHING_TO_LEARN and not cfg.force and s.resume_state is None:
        if not ranks.is_main:
            return _rank_result(s, 0, before, False)
        yield Progress(0, 0, f"the base already removes this noise (its output keeps {noise_left:.0%} of it): "
                             "keeping it unchanged", {"mode": "noisy", "noise_left": noise_left, "thumbnails": thumbs})
        save_checkpoint(s.out, base, noise=s.base.info.noise, description=cfg.description,
                        metrics={"val_n2n_score": before, "residual_sigma": before_sigma, "history": []},
                        training={"data": [str(d) for d in cfg.data], "device": str(device), "steps": 0,
                                  "base": str(s.base_path), "wall_time_s": 0.0})
        return _finetune_card(s, 0, 0, 0, before, before, False,
                              {"residual_sigma_before": before_sigma, "noise_left": noise_left, "kept_base": True})
    steps = s.steps or _agreed_steps(_plan_steps(cfg, net, base, device, net.in_channels, per_input), ranks, device)
    tcfg = _train_config(s, steps)
    if not ranks.is_main:
        val = []  # rank 0 validates for all
    params, opt = adam_for(net, tcfg.lr, cfg.freeze_encoder)
    sampler = PatchSampler(s.train_files, patch, net.in_channels, seed=cfg.seed, cache_mb=cfg.cache_mb)
    image_sigmas: dict[Path, float] = {}
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step, best, history, elapsed_before, running = 0, -math.inf, [], 0.0, []
    last_score: dict[str, float] = {}
    if s.resume_state is not None:
        st = s.resume_state
        check_resume_config(st.get("config"), tcfg)
        net.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        step, best, history = st["step"], st["best"], st["history"]
        elapsed_before = float(st.get("elapsed", 0.0))
        sampler.set_state(st["sampler"])
        gen.set_state(st["gen"])
        torch.set_rng_state(st["torch_rng"])
        random.setstate(st["py_rng"])
        last_score = st.get("last_score", {})
    use_amp, amp_dtype = training_precision(cfg.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    info = {"data": [str(d) for d in cfg.data], "train_images": len(s.train_files), "val_images": len(s.val_files),
            "device": str(device), "config": tcfg.to_dict(), "base": str(s.base_path)}
    t0 = time.time()
    last_log = (t0, step)
    yield Progress(step, steps, f"base model: {SCORE_NAMES['noisy']} {before:.2f} dB" if before is not None else "training",
                   {**_common_data(s, step, steps, elapsed_before, math.inf, before, None),
                    "residual_sigma_before": before_sigma, "thumbnails": thumbs})

    def elapsed() -> float:
        return elapsed_before + time.time() - t0

    def save_state() -> None:
        if not ranks.is_main:
            return
        write_torch_file({"model": net.state_dict(), "optimizer": opt.state_dict(), "step": step, "best": best,
                    "history": history, "elapsed": elapsed(), "sampler": sampler.state(), "gen": gen.get_state(),
                    "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(), "config": tcfg.to_dict(),
                    "finetune": {"mode": "noisy"}, "last_score": last_score}, state_path(s.out))

    def save_best(score: float | None, residual: float | None) -> None:
        metrics = {"val_n2n_score": score, "residual_sigma": residual, "history": history[-50:]}
        save_checkpoint(s.out, net, noise=s.base.info.noise, metrics=metrics, description=cfg.description,
                        training={**info, "steps": step, "wall_time_s": round(elapsed(), 1)})

    completed = cancelled = False
    result: FinetuneResult | None = None
    net.train()
    try:
        while step < steps:
            (now_elapsed,) = distributed.agree([elapsed()], ranks, device)  # one schedule and stop on every rank
            if s.minutes is not None and now_elapsed > s.minutes * 60:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, tcfg, now_elapsed)
            noisy, sigma = distributed.share(_noisy_batch(sampler, batch, image_sigmas), ranks)
            noisy = noisy.to(device)
            if device.type == "cpu":
                noisy = noisy.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                parts = self_supervised_loss(net, noisy, None if per_input else sigma.to(device), gen=gen,
                                             gamma=cfg.gamma, pd=cfg.pd, base=base, anchor=cfg.anchor,
                                             distill=cfg.distill)
            opt.zero_grad(set_to_none=True)
            scaler.scale(parts.total).backward()
            distributed.average_gradients(params, ranks)
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(opt)
            scaler.update()
            step += 1
            running.append(distributed.mean(float(parts.total.detach()), ranks, device))
            if not ranks.is_main:
                continue
            data: dict[str, Any] = {"anchor_loss": float(parts.anchor.detach()),
                                    "distill_loss": float(parts.distill.detach()),
                                    "reconstruction_loss": float(parts.reconstruction.detach())}
            if val and (step % tcfg.val_every == 0 or step == steps):
                score, residual, thumb = _score_noisy(net, val, cfg.pd, per_input, device)
                history.append([step, round(float(np.mean(running[-tcfg.val_every:])), 6), round(score, 3)])
                last_score = {"score": score, "residual": residual}
                data.update(val_score=score, residual_sigma=residual, thumbnails={**thumbs, "after": thumb})
                if score > best:
                    best = score
                    save_best(score, residual)
                    data["saved"] = str(s.out)
            if step % tcfg.checkpoint_every == 0:
                save_state()
            if step % tcfg.log_every == 0 or "val_score" in data or step == steps:
                now = time.time()
                ips = (step - last_log[1]) * batch / max(1e-6, now - last_log[0])
                last_log = (now, step)
                eta = (steps - step) * batch / max(ips, 1e-6)
                loss = float(np.mean(running[-tcfg.log_every:]))
                data.update(loss=loss, images_per_s=ips, lr=lr_at(step, tcfg, elapsed()),
                            **_common_data(s, step, steps, elapsed(), eta, before, best))
                msg = f"step {step}/{steps} loss {loss:.5f}"
                if "val_score" in data:
                    msg += f" {SCORE_NAMES['noisy']} {data['val_score']:.2f} dB"
                yield Progress(step, steps, msg, data)
        completed = True
    except (GeneratorExit, KeyboardInterrupt):
        cancelled = True
        raise
    finally:
        save_state()
        if not ranks.is_main:
            result = _rank_result(s, step, before, cancelled)
        elif not s.out.exists():
            score, residual, _ = _score_noisy(net, val, cfg.pd, per_input, device) if val else (None, None, None)
            last_score = {"score": score, "residual": residual} if val else {}
            best = score if score is not None else best
            save_best(score, residual)
        if ranks.is_main and (completed or cancelled):
            saved = read_info(s.out)
            after = saved.metrics.get("val_n2n_score")
            extra = {"residual_sigma_before": before_sigma, "noise_left": noise_left}
            result = _finetune_card(s, int(saved.training.get("steps", step)), step, steps, before, after,
                                    cancelled, extra)
    if result is None:
        raise DenoiserError(f"fine-tuning ended without writing '{s.out}'")
    return result
