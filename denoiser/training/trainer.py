"""The one training loop: supervised training, both fine-tuning modes and the lab hand it their steps.

A `Trainer` owns what every run needs and what had drifted apart in three copies: the device and
precision (autocast and the fp16 gradient scaler), the learning-rate schedule under a time budget,
gradient clipping, data-parallel ranks, the validation cadence and the best score, the atomic
checkpoint and resumable-state saves, the progress events with their ETA, and resume. A run gives it
an iterator of batches, a function from a batch to its loss, and optionally a validation and a save.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from denoiser import distributed
from denoiser.archs import DenoiserNet
from denoiser.checkpoint import write_torch_file
from denoiser.device import cpu_has_native_bf16
from denoiser.errors import DenoiserError
from denoiser.progress import ProgressGen
from denoiser.training.events import TrainProgress, Validation

if TYPE_CHECKING:
    from denoiser.training.config import TrainConfig


@dataclass
class StepLoss:
    """A step's loss to minimise, and named components to report (floats, for the progress events)."""

    total: torch.Tensor
    parts: dict[str, float] = field(default_factory=dict)


def training_precision(precision: str, device: torch.device) -> tuple[bool, torch.dtype]:
    """(autocast on?, its dtype) for a run: 'auto' mixes precision on CUDA (bf16 where supported, else fp16
    with a gradient scaler) and on a CPU with native bf16 (about twice as fast there); 'fp32' never does."""
    if precision not in ("auto", "fp32", "bf16"):
        raise DenoiserError(f"unknown training precision '{precision}' (use auto, fp32 or bf16)")
    if precision == "fp32":
        return False, torch.float32
    if device.type == "cuda":
        return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return precision == "bf16" or cpu_has_native_bf16(), torch.bfloat16


def lr_at(step: int, cfg: TrainConfig, elapsed: float | None = None) -> float:
    """Linear warm-up, then cosine decay from `lr` to `min_lr` over the run.

    A `min_lr` above `lr` (a gentle fine-tune at, say, 5e-6 under the default floor of 1e-5) is taken as
    `lr`: the rate then stays constant instead of climbing over the run. With a time budget (`minutes`) and the run's `elapsed` seconds, the decay follows whichever is
    further along, steps or time, so a run stopped by its budget still ends at a low learning rate.
    """
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.minutes and elapsed is not None:
        t = max(t, elapsed / (cfg.minutes * 60))
    return cosine_lr(t, cfg.lr, min(cfg.min_lr, cfg.lr))


def cosine_lr(t: float, lr: float, min_lr: float) -> float:
    """The cosine decay from `lr` at t = 0 to `min_lr` at t ≥ 1 (the one schedule of training and the lab)."""
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


def trainable_parameters(net: DenoiserNet, freeze_encoder: bool) -> list[tuple[str, torch.nn.Parameter]]:
    """The named parameters a run trains, in the order its optimiser and EMA hold them (the encoder's are
    frozen, and left out, when asked); a state file's EMA list is read back against this order."""
    if freeze_encoder:
        for m in net.encoder_modules():
            for p in m.parameters():
                p.requires_grad_(False)
    return [(n, p) for n, p in net.named_parameters() if p.requires_grad]


def adam_for(net: DenoiserNet, lr: float, freeze_encoder: bool) -> tuple[list[torch.nn.Parameter], torch.optim.Adam]:
    """The parameters that train (the encoder's frozen when asked) and an Adam optimiser over them."""
    params = [p for _, p in trainable_parameters(net, freeze_encoder)]
    return params, torch.optim.Adam(params, lr=lr)


@dataclass
class Cadence:
    """How often a run reports (`log_every` steps), validates and saves its resumable state (0: never)."""

    log_every: int = 10
    val_every: int = 0
    checkpoint_every: int = 0


class Trainer:
    """Trains `net` with `opt` over `params` for `steps` steps (or until `minutes` run out).

    `schedule(step, elapsed_s)` gives each step's learning rate. `validate()` scores the model (on rank
    0); the best score's model is handed to `save_best(validation)`, and at the end, when no validation
    ran or nothing was saved to `out` yet, the last model is. `state_file` receives the resumable state
    (the common fields plus `extra_state()`) every `cadence.checkpoint_every` steps and at the end.
    With `ema` > 0 it keeps an exponential moving average of the weights (decay `ema` per step), and
    validates and saves that average: a steadier model than the last step's weights.
    """

    def __init__(self, net: DenoiserNet, params: list[torch.nn.Parameter], opt: torch.optim.Optimizer, *,
                 steps: int, batch: int, schedule: Callable[[int, float], float], device: torch.device,
                 precision: str = "fp32", ranks: distributed.Ranks | None = None, minutes: float | None = None,
                 cadence: Cadence | None = None, validate: Callable[[], Validation] | None = None,
                 save_best: Callable[[Validation | None], None] | None = None, out: Path | None = None,
                 state_file: Path | None = None, extra_state: Callable[[], dict[str, Any]] | None = None,
                 config: dict[str, Any] | None = None, score_label: str = "val", clip_norm: float = 1.0,
                 ema: float = 0.0) -> None:
        self.net, self.params, self.opt = net, params, opt
        self.steps, self.batch, self.schedule, self.device = steps, batch, schedule, device
        self.ranks = ranks or distributed.Ranks()
        self.minutes = minutes
        self.cadence = cadence or Cadence()
        self.validate, self.save_best, self.out = validate, save_best, out
        self.state_file, self.extra_state, self.config = state_file, extra_state, config
        self.score_label, self.clip_norm = score_label, clip_norm
        self.use_amp, self.amp_dtype = training_precision(precision, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.step = 0
        self.best = -math.inf if validate is not None else math.nan
        self.history: list[list[Any]] = []  # [step, mean loss since the last validation, score]
        self.running: list[float] = []  # each step's loss
        self.elapsed_before = 0.0
        self._t0 = time.time()
        if not 0.0 <= ema < 1.0:
            raise DenoiserError(f"the EMA decay must be within [0, 1), got {ema:g}")
        self.ema = ema
        self.shadow = [p.detach().float().clone() for p in params] if ema > 0 else []

    # --- state ----------------------------------------------------------------------------------
    def resume(self, state: Mapping[str, Any]) -> None:
        """Continue from a state file's dict: weights, optimiser, counters, clock and random states."""
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step, self.best, self.history = state["step"], state["best"], state["history"]
        self.elapsed_before = float(state.get("elapsed", 0.0))
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["py_rng"])
        if self.shadow:
            self.shadow = [t.to(p.device) for t, p in zip(state["ema"], self.params, strict=True)]

    def elapsed(self) -> float:
        """Training seconds, counting those of the runs this one resumes."""
        return self.elapsed_before + time.time() - self._t0

    def save_state(self) -> None:
        """Write the resumable state (atomically), when the run keeps one."""
        if self.state_file is None or not self.ranks.is_main:
            return
        write_torch_file({
            "model": self.net.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step,
            "best": self.best, "history": self.history, "elapsed": self.elapsed(),
            "torch_rng": torch.get_rng_state(), "py_rng": random.getstate(), "config": self.config,
            **({"ema": self.shadow} if self.shadow else {}),
            **(self.extra_state() if self.extra_state else {}),
        }, self.state_file)

    @property
    def best_score(self) -> float | None:
        """The best validation score so far, or None."""
        return self.best if math.isfinite(self.best) else None

    def recent_loss(self, n: int) -> float | None:
        """Mean loss of the last `n` steps (None before the first)."""
        recent = self.running[-n:]
        return float(np.mean(recent)) if recent else None

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """With an EMA decay: the exponential moving average of the weights in the model while the block
        runs (what validation scores and what the checkpoint keeps), the trained weights again after it."""
        if not self.shadow:
            yield
            return
        trained = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p, s in zip(self.params, self.shadow, strict=True):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, t in zip(self.params, trained, strict=True):
                    p.copy_(t)

    def _update_average(self) -> None:
        with torch.no_grad():
            for s, p in zip(self.shadow, self.params, strict=True):
                s.lerp_(p.detach().float(), 1.0 - self.ema)

    # --- the loop -------------------------------------------------------------------------------
    def _validate_and_keep(self) -> tuple[Validation, bool]:
        """Validate now and record it; hand the model to `save_best` when it is the best so far."""
        assert self.validate is not None
        with self.averaged_weights():
            return self._keep(self.validate())

    def _keep(self, v: Validation) -> tuple[Validation, bool]:
        """Record a validation in the history; hand the model to `save_best` when it is the best so far."""
        loss = self.recent_loss(self.cadence.val_every or len(self.running))
        self.history.append([self.step, None if loss is None else round(loss, 6), round(v.score, 3)])
        improved = not (v.score <= self.best)  # a NaN score counts as better than nothing saved
        if improved:
            self.best = v.score
            if self.save_best is not None:
                self.save_best(v)
        return v, improved

    def _optimise(self, loss: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        distributed.average_gradients(self.params, self.ranks)
        self.scaler.unscale_(self.opt)
        torch.nn.utils.clip_grad_norm_(self.params, self.clip_norm)
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.shadow:
            self._update_average()

    def run(self, batches: Iterator[Any], loss_fn: Callable[[Any], StepLoss]) -> ProgressGen[None]:
        """Train from the current step; yields `TrainProgress`. Closing the generator stops at the next
        report with the state and the best (or, with no validation, the last) model saved."""
        self._t0 = time.time()
        last_log = (self._t0, self.step)
        cad, main = self.cadence, self.ranks.is_main
        self.net.train()
        try:
            while self.step < self.steps:
                (now,) = distributed.agree([self.elapsed()], self.ranks, self.device)  # one schedule on every rank
                if self.minutes is not None and now > self.minutes * 60:
                    break
                for g in self.opt.param_groups:
                    g["lr"] = self.schedule(self.step, now)
                item = next(batches, None)
                if item is None:
                    break
                with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
                    out = loss_fn(item)
                self._optimise(out.total)
                self.step += 1
                self.running.append(distributed.mean(float(out.total.detach()), self.ranks, self.device))
                if not main:
                    continue  # rank 0 validates, saves and reports for all
                validation, saved = None, None
                if self.validate is not None and cad.val_every and (self.step % cad.val_every == 0
                                                                    or self.step == self.steps):
                    validation, improved = self._validate_and_keep()
                    saved = str(self.out) if improved and self.out is not None else None
                if cad.checkpoint_every and self.step % cad.checkpoint_every == 0:
                    self.save_state()
                if self.step % cad.log_every == 0 or validation is not None or self.step == self.steps:
                    t = time.time()
                    ips = (self.step - last_log[1]) * self.batch / max(1e-6, t - last_log[0])
                    last_log = (t, self.step)
                    yield self._event(ips, validation, saved, out.parts)
            if main and self.validate is not None and self.step > 0 and (
                    not self.history or self.history[-1][0] != self.step):
                validation, improved = self._validate_and_keep()
                yield TrainProgress(self.step, self.steps, f"stopped at step {self.step}: {self.score_label} "
                                    f"{validation.score:.2f} dB", step=self.step, steps=self.steps,
                                    validation=validation, best_score=self.best_score,
                                    saved=str(self.out) if improved and self.out is not None else None)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            if main:
                self.save_state()
                if self.save_best is not None and (self.validate is None or self.out is None
                                                   or not self.out.exists()):
                    with self.averaged_weights():
                        self.save_best(self.validate() if self.validate is not None else None)

    def _event(self, ips: float, validation: Validation | None, saved: str | None,
               parts: dict[str, float]) -> TrainProgress:
        eta = (self.steps - self.step) * self.batch / max(ips, 1e-6)
        if self.minutes is not None:
            eta = max(0.0, min(eta, self.minutes * 60 - self.elapsed()))
        loss = self.recent_loss(self.cadence.log_every)
        msg = f"step {self.step}/{self.steps} loss {loss:.5f}"
        if validation is not None:
            msg += f" {self.score_label} {validation.score:.2f} dB"
        return TrainProgress(self.step, self.steps, msg, step=self.step, steps=self.steps, loss=loss,
                             validation=validation, best_score=self.best_score, images_per_s=ips, eta_s=eta,
                             lr=self.schedule(self.step, self.elapsed()), saved=saved, parts=dict(parts))
