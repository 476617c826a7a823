"""Noisy-mode fine-tuning: self-supervised Neighbor2Neighbor on the user's noisy photos, scored without
a reference (`denoiser.selfsupervised`), with before/after thumbnails of a validation crop."""

from __future__ import annotations

import copy
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from denoiser import distributed
from denoiser.archs import DenoiserNet
from denoiser.checkpoint import (
    read_info,
    save_checkpoint,
)
from denoiser.data import PatchSampler, validation_crops
from denoiser.errors import DenoiserError
from denoiser.estimate import estimate_sigma
from denoiser.progress import ProgressGen
from denoiser.selfsupervised import n2n_score, self_supervised_loss
from denoiser.training.config import check_resume_config, state_path
from denoiser.training.events import FinetuneProgress, Validation
from denoiser.training.finetune_plan import plan_steps
from denoiser.training.finetune_setup import (
    SCORE_NAMES,
    FinetuneResult,
    Setup,
    agreed_steps,
    finetune_event,
    rank_result,
    train_config_for,
    write_card,
)
from denoiser.training.trainer import Cadence, StepLoss, Trainer, adam_for, lr_at

THUMB = 128


NOISY_VAL_LIMIT = 8


SIGMA_CROP = 1024


#: Noisy mode keeps the base unchanged when its output still holds less than this share of the noise σ
#: estimated on the user's photos: such a base already removes their noise, and self-supervised
#: fine-tuning pulls a model towards what the N2N objective reaches, not beyond. The shares measured
#: for matched and mismatched bases, and what fine-tuning such a base cost, are in
#: docs/notes/self_supervised.md and docs/bench/finetune.md.
NOTHING_TO_LEARN = 0.5


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
def _score_noisy(net: DenoiserNet, val: list[_NoisyVal], pd: int, per_input: bool, device: torch.device) -> Validation:
    """The mean N2N score (dB), the mean residual σ of the output and the first crop's output thumbnail."""
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
    return Validation(float(np.mean(scores)), float(np.mean(residual)), thumb)


def _noise_left(residual_sigma: float | None, val: list[_NoisyVal]) -> float | None:
    """Share of the photos' estimated noise σ still in the base's output (None without validation crops)."""
    if residual_sigma is None or not val:
        return None
    sigma = float(np.mean([float(v.sigma) for v in val])) * 255.0
    return residual_sigma / sigma if sigma > 0 else None


def finetune_noisy(s: Setup, ranks: distributed.Ranks) -> ProgressGen[FinetuneResult]:
    """Self-supervised fine-tuning (Neighbor2Neighbor + PD + anchor) with a resumable state file; under
    torchrun each rank takes its share of every step's patches and the gradients are averaged."""
    cfg, device = s.cfg, s.device
    yield FinetuneProgress(0, 0, "loading the base model and the validation images", mode="noisy")
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
    scored = _score_noisy(base, val, cfg.pd, per_input, device) if val else None
    before, before_sigma = (scored.score, scored.residual_sigma) if scored else (None, None)
    thumbs = {"noisy": _thumb(val[0].crop), "before": scored.thumbnail} if scored else {}
    noise_left = _noise_left(before_sigma, val)
    if noise_left is not None and noise_left < NOTHING_TO_LEARN and not cfg.force and s.resume_state is None:
        if not ranks.is_main:
            return rank_result(s, 0, before, False)
        yield FinetuneProgress(0, 0, f"the base already removes this noise (its output keeps {noise_left:.0%} of "
                                     "it): keeping it unchanged", mode="noisy", noise_left=noise_left, thumbnails=thumbs)
        save_checkpoint(s.out, base, noise=s.base.info.noise, description=cfg.description,
                        metrics={"val_n2n_score": before, "residual_sigma": before_sigma, "history": []},
                        training={"data": [str(d) for d in cfg.data], "device": str(device), "steps": 0,
                                  "base": str(s.base_path), "wall_time_s": 0.0})
        return write_card(s, 0, 0, 0, before, before, False,
                          {"residual_sigma_before": before_sigma, "noise_left": noise_left, "kept_base": True})
    steps = s.steps or agreed_steps(plan_steps(cfg, net, base, device, net.in_channels, per_input), ranks, device)
    tcfg = train_config_for(s, steps)
    if not ranks.is_main:
        val = []  # rank 0 validates for all
    params, opt = adam_for(net, tcfg.lr, cfg.freeze_encoder)
    sampler = PatchSampler(s.train_files, patch, net.in_channels, seed=cfg.seed, cache_mb=cfg.cache_mb)
    image_sigmas: dict[Path, float] = {}
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    info = {"data": [str(d) for d in cfg.data], "train_images": len(s.train_files), "val_images": len(s.val_files),
            "device": str(device), "config": tcfg.to_dict(), "base": str(s.base_path)}

    def save_best(v: Validation | None) -> None:
        metrics = {"val_n2n_score": v.score if v else None, "residual_sigma": v.residual_sigma if v else None,
                   "history": trainer.history[-50:]}
        save_checkpoint(s.out, net, noise=s.base.info.noise, metrics=metrics, description=cfg.description,
                        training={**info, "steps": trainer.step, "wall_time_s": round(trainer.elapsed(), 1)})

    def step_loss(item: tuple[torch.Tensor, torch.Tensor]) -> StepLoss:
        noisy, sigma = item[0].to(device), item[1]
        if device.type == "cpu":
            noisy = noisy.contiguous(memory_format=torch.channels_last)
        parts = self_supervised_loss(net, noisy, None if per_input else sigma.to(device), gen=gen, gamma=cfg.gamma,
                                     pd=cfg.pd, base=base, anchor=cfg.anchor, distill=cfg.distill)
        return StepLoss(parts.total, {"anchor_loss": float(parts.anchor.detach()),
                                      "distill_loss": float(parts.distill.detach()),
                                      "reconstruction_loss": float(parts.reconstruction.detach())})

    def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield distributed.share(_noisy_batch(sampler, batch, image_sigmas), ranks)

    trainer = Trainer(
        net, params, opt, steps=steps, batch=batch, schedule=lambda step, t: lr_at(step, tcfg, t), device=device,
        precision=cfg.precision, ranks=ranks, minutes=s.minutes,
        cadence=Cadence(tcfg.log_every, tcfg.val_every, tcfg.checkpoint_every),
        validate=(lambda: _score_noisy(net, val, cfg.pd, per_input, device)) if val else None,
        save_best=save_best, out=s.out, state_file=state_path(s.out), config=tcfg.to_dict(),
        extra_state=lambda: {"sampler": sampler.state(), "gen": gen.get_state(), "finetune": {"mode": "noisy"}},
        score_label=SCORE_NAMES["noisy"],
    )
    if s.resume_state is not None:
        check_resume_config(s.resume_state.get("config"), tcfg)
        trainer.resume(s.resume_state)
        sampler.set_state(s.resume_state["sampler"])
        gen.set_state(s.resume_state["gen"])
    yield finetune_event(s, None, steps, trainer.elapsed_before, before, thumbnails=thumbs,
                         residual_sigma_before=before_sigma,
                         message=f"base model: {SCORE_NAMES['noisy']} {before:.2f} dB"
                         if before is not None else "training")
    completed = cancelled = False
    result: FinetuneResult | None = None
    try:
        for ev in trainer.run(batches(), step_loss):
            after = {"after": ev.validation.thumbnail} if ev.validation and ev.validation.thumbnail is not None else {}
            yield finetune_event(s, ev, steps, trainer.elapsed(), before, thumbnails={**thumbs, **after} if after else None)
        completed = True
    except (GeneratorExit, KeyboardInterrupt):
        cancelled = True
        raise
    finally:
        if not ranks.is_main:
            result = rank_result(s, trainer.step, before, cancelled)
        elif completed or cancelled:
            saved = read_info(s.out)
            after_score = saved.metrics.get("val_n2n_score")
            extra = {"residual_sigma_before": before_sigma, "noise_left": noise_left}
            result = write_card(s, int(saved.training.get("steps", trainer.step)), trainer.step, steps, before,
                                after_score, cancelled, extra)
    if result is None:
        raise DenoiserError(f"fine-tuning ended without writing '{s.out}'")
    return result
