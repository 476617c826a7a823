"""What both fine-tuning modes share: the config, the result and its verdict, the set-up of a run,
its `TrainConfig`, its progress events, and the card written into the fine-tuned checkpoint."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from denoiser import distributed
from denoiser.checkpoint import (
    LoadedModel,
    load_checkpoint,
    resolve_model,
    save_checkpoint,
    user_models_dir,
)
from denoiser.data import find_images, split_train_val
from denoiser.device import resolve_device
from denoiser.errors import DenoiserError
from denoiser.losses import LossConfig
from denoiser.training.config import (
    NoiseConfig,
    TrainConfig,
    check_output_writable,
    existing_run_files,
    read_training_state,
    state_path,
)
from denoiser.training.events import FinetuneProgress, TrainProgress

MODES = ("clean", "noisy")


MODE_DEFAULTS: dict[str, dict[str, float]] = {
    "clean": {"lr": 5e-5, "patch": 96, "batch": 8},
    "noisy": {"lr": 1e-5, "patch": 128, "batch": 4},
}


DEFAULT_MINUTES = 10.0


SCORE_NAMES = {"clean": "PSNR", "noisy": "N2N score"}


BETTER_MARGIN_DB = 0.01  # a gain smaller than the shown precision is not called better


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


@dataclass
class Setup:
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


def prepare(cfg: FinetuneConfig) -> Setup:
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
    elif blocking := existing_run_files(out):
        if not cfg.overwrite:
            raise DenoiserError(f"'{blocking[0]}' already exists: choose another name, resume it, or overwrite it")
        if distributed.from_environment().is_main:  # under torchrun, rank 0 alone touches the files
            out.unlink(missing_ok=True)
            state_path(out).unlink(missing_ok=True)
    check_output_writable(out)  # creates the models folder; a read-only one is found before any training
    minutes = cfg.minutes if cfg.minutes is not None else (DEFAULT_MINUTES if steps is None else None)
    return Setup(cfg, base_path, base, out, train_files, val_files, resolve_device(cfg.device), steps, minutes, state)


def train_config_for(s: Setup, steps: int) -> TrainConfig:
    cfg, info = s.cfg, s.base.info
    base_cfg = info.training.get("config", {}) if isinstance(info.training.get("config"), dict) else {}
    base_loss = base_cfg.get("loss", {}) if isinstance(base_cfg.get("loss"), dict) else {}
    loss = LossConfig(reconstruction=base_loss.get("reconstruction", "l1"),
                      ssim_weight=float(base_loss.get("ssim_weight", 0.0)))
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


def write_card(s: Setup, steps_done: int, steps_run: int, planned: int, before: float | None,
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


def agreed_steps(steps: int, ranks: distributed.Ranks, device: torch.device) -> int:
    """One step count for all ranks (each plans its own from the time budget; the largest is taken)."""
    return int(distributed.agree([float(steps)], ranks, device)[0])


def rank_result(s: Setup, steps: int, before: float | None, cancelled: bool) -> FinetuneResult:
    """What a rank other than 0 returns: rank 0 writes and reports the checkpoint and its card."""
    return FinetuneResult(s.out, s.cfg.mode, steps, SCORE_NAMES[s.cfg.mode], before, None, None, cancelled,
                          verified=s.cfg.mode == "clean")


def finetune_event(s: Setup, ev: TrainProgress | None, steps: int, elapsed: float, before: float | None,
                   message: str = "", **extra: Any) -> FinetuneProgress:
    """The trainer's step event `ev` (or, with None, a set-up event before the first step) with the
    fine-tuning run's context: mode, the base's score, the output and the ETA within the time budget."""
    step = {f.name: getattr(ev, f.name) for f in fields(TrainProgress)} if ev else {
        "done": 0, "total": steps, "message": message, "steps": steps, "eta_s": math.inf}
    if s.minutes is not None:
        step["eta_s"] = min(step["eta_s"], max(0.0, s.minutes * 60 - elapsed))
    return FinetuneProgress(**step, mode=s.cfg.mode, score_name=SCORE_NAMES[s.cfg.mode], before=before,
                            elapsed_s=elapsed, out=str(s.out), **extra)
