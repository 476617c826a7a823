"""Fine-tuning a model on a user's own photos, with clean photos or with noisy ones only.

`finetune(config)` yields `FinetuneProgress` events (loss, validation score, ETA; before/after thumbnails in
noisy mode) and returns a `FinetuneResult`. Closing the generator cancels: the best checkpoint so far
and a resumable state file are kept, and the checkpoint gets its card either way.

- **clean** mode: supervised, through `denoiser.training.train` from the base checkpoint, on pairs made
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

import time
from dataclasses import replace

from denoiser import distributed
from denoiser.checkpoint import read_info
from denoiser.errors import DenoiserError
from denoiser.progress import ProgressGen
from denoiser.training.config import read_training_state, state_path
from denoiser.training.events import FinetuneProgress
from denoiser.training.finetune_noisy import finetune_noisy
from denoiser.training.finetune_plan import plan_steps
from denoiser.training.finetune_setup import (
    FinetuneConfig,
    FinetuneResult,
    Setup,
    agreed_steps,
    finetune_event,
    prepare,
    rank_result,
    train_config_for,
    write_card,
)
from denoiser.training.supervised import train
from denoiser.training.validation import validate, validation_pairs


def finetune(cfg: FinetuneConfig) -> ProgressGen[FinetuneResult]:
    """Fine-tune `cfg.base` on the photos in `cfg.data`; yields progress, returns the outcome."""
    ranks = distributed.from_environment()
    s = prepare(cfg)
    # Under torchrun every rank trains on its share of each step's batch (see denoiser.distributed); rank 0
    # validates, saves and writes the card. The group is joined here so the ranks can agree on a step plan.
    s = replace(s, device=distributed.start(ranks, s.device, cfg.setting("batch")))
    finished = False
    try:
        run = finetune_clean if cfg.mode == "clean" else finetune_noisy
        result = yield from run(s, ranks)
        finished = True
    finally:
        distributed.stop(ranks, together=finished)
    return result


def finetune_clean(s: Setup, ranks: distributed.Ranks) -> ProgressGen[FinetuneResult]:
    """Supervised fine-tuning through `train()` (which runs the ranks' data parallelism), with the base's
    score on the same validation pairs."""
    yield FinetuneProgress(0, 0, "loading the base model and the validation images", mode="clean")
    base_net = s.base.net.to(s.device)
    if s.cfg.setting("patch") % max(1, base_net.size_multiple):
        raise DenoiserError(f"the patch size must be a multiple of {base_net.size_multiple} for this model")
    steps = s.steps or agreed_steps(plan_steps(s.cfg, base_net, base_net, s.device, s.base.net.in_channels,
                                               False), ranks, s.device)
    tcfg = train_config_for(s, steps)
    pairs = validation_pairs(s.val_files, tcfg) if ranks.is_main else []
    before = validate(base_net, pairs, s.device) if pairs else None
    elapsed_before = float(s.resume_state.get("elapsed", 0.0)) if s.resume_state else 0.0
    t0 = time.time()
    yield finetune_event(s, None, steps, elapsed_before, before,
                         message=f"base model: validation PSNR {before:.2f} dB" if before is not None else "training")
    inner = train(tcfg)
    step, completed, cancelled = 0, False, False
    result: FinetuneResult | None = None
    try:
        while True:
            try:
                ev = next(inner)
            except StopIteration:
                completed = True
                break
            step = ev.step
            yield finetune_event(s, ev, steps, elapsed_before + time.time() - t0, before)
    except (GeneratorExit, KeyboardInterrupt):
        cancelled = True
        raise
    finally:
        inner.close()  # on cancel: train() keeps the best checkpoint and writes its state file
        if not ranks.is_main:
            result = rank_result(s, step, before, cancelled)
        elif (completed or cancelled) and s.out.exists():
            saved = read_info(s.out)
            steps_run = int(read_training_state(state_path(s.out))["step"])
            result = write_card(s, int(saved.training.get("steps", step)), steps_run, steps, before,
                                saved.metrics.get("val_psnr"), cancelled, {})
    if result is None:
        raise DenoiserError(f"training ended without writing '{s.out}'")
    return result
