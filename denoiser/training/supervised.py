"""Supervised training (`denoiser train`): a model, its data and its validation handed to the `Trainer`.

`train(config)` yields `TrainProgress` events and returns the path of the best checkpoint. The CLI
drains it with a progress line; the GUI runs it in a worker and stops it by closing the generator —
the best checkpoint so far and a resumable state file are kept.
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path

import torch

from denoiser import distributed
from denoiser.archs import DenoiserNet, build_arch
from denoiser.archs.unet import UNet, unet_to_gray
from denoiser.checkpoint import load_checkpoint, save_checkpoint
from denoiser.data import (
    find_images,
    find_pairs,
    split_pairs,
    split_train_val,
)
from denoiser.device import resolve_device
from denoiser.errors import DenoiserError
from denoiser.losses import training_loss
from denoiser.progress import ProgressGen
from denoiser.training.batches import StepBatches, batch_stream, finish_batch, loader_workers, noise_on_device
from denoiser.training.config import (
    TrainConfig,
    check_output_writable,
    check_resume_config,
    read_training_state,
    state_path,
)
from denoiser.training.events import Validation
from denoiser.training.trainer import Cadence, StepLoss, Trainer, adam_for, lr_at
from denoiser.training.validation import validate, validation_levels, validation_pairs


def model_channels(cfg: TrainConfig) -> int:
    """Channels of the model's input: the packed R, G, G, B planes for raw noise, else the data's."""
    return 4 if cfg.noise.name == "raw" else cfg.channels


def build_model(cfg: TrainConfig) -> DenoiserNet:
    """A fresh model of the configured arch, or the base checkpoint's model when fine-tuning."""
    if cfg.base:
        net = load_checkpoint(cfg.base).net
        if isinstance(net, UNet) and net.in_channels == 3 and cfg.channels == 1:
            net = unet_to_gray(net)
        return net
    arch_config = {"in_channels": model_channels(cfg), **cfg.arch_config}
    return build_arch(cfg.arch, **arch_config)


def train(cfg: TrainConfig) -> ProgressGen[Path]:
    """Run (or resume) training; yields `TrainProgress` events and returns the best checkpoint's path."""
    if cfg.minutes is not None and cfg.minutes <= 0:
        raise DenoiserError(f"minutes must be positive, got {cfg.minutes} (a run of no time saves an untrained model)")
    if cfg.steps <= 0:
        raise DenoiserError(f"steps must be positive, got {cfg.steps}")
    if cfg.noise.name == "raw" and (cfg.channels != 3 or cfg.real_data):
        raise DenoiserError("raw noise is made from colour images (channels=3), without real pairs (they are developed sRGB)")
    if cfg.val_on == "real" and not cfg.real_data:
        raise DenoiserError("val_on 'real' validates on held-out real scenes: give real_data (--real-data) as well")
    check_output_writable(cfg.out)
    ranks = distributed.from_environment()
    device = distributed.start(ranks, resolve_device(cfg.device), cfg.batch)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    files = find_images(cfg.data)
    if not files:
        raise DenoiserError(f"no images found in {', '.join(cfg.data)}")
    train_files, val_files = split_train_val(files, cfg.val_fraction, cfg.seed)
    real_train, real_val = split_pairs(find_pairs(cfg.real_data)) if cfg.real_data else ([], [])
    net = build_model(cfg).to(device)
    if model_channels(cfg) != net.in_channels:
        raise DenoiserError(f"the model takes {net.in_channels} channels but the data gives {model_channels(cfg)}")
    net = net.to(memory_format=torch.channels_last)
    params, opt = adam_for(net, cfg.lr, cfg.freeze_encoder)
    batches = StepBatches(train_files, cfg, noise_later=noise_on_device(cfg, device), real=real_train)
    pairs = validation_pairs(val_files, cfg, real_val)
    out = Path(cfg.out)
    info = {
        "data": [str(d) for d in cfg.data],
        "train_images": len(train_files),
        "val_images": len(val_files),
        "real_train_scenes": [n.name for n, _ in real_train],
        "real_val_scenes": [n.name for n, _ in real_val],
        "device": str(device),
        "config": cfg.to_dict(),
    }

    def save_best(v: Validation | None) -> None:
        save_checkpoint(
            out,
            net,
            noise=asdict(cfg.noise),
            training={**info, "steps": trainer.step, "wall_time_s": round(trainer.elapsed(), 1)},
            metrics={"val_psnr": v.score if v else float("nan"), "val_sigma": cfg.noise.val_sigma,
                     "history": trainer.history[-50:]},
            description=cfg.description,
        )

    trainer = Trainer(
        net, params, opt, steps=cfg.steps, batch=cfg.batch, schedule=lambda step, t: lr_at(step, cfg, t),
        device=device, precision=cfg.precision, ranks=ranks, minutes=cfg.minutes,
        cadence=Cadence(cfg.log_every, cfg.val_every, cfg.checkpoint_every),
        validate=(lambda: Validation(validate(net, pairs, device, validation_levels(cfg)))) if pairs else None,
        save_best=save_best, out=out, state_file=state_path(out), config=cfg.to_dict(), ema=cfg.ema,
    )
    if cfg.resume:
        st = read_training_state(cfg.resume)
        check_resume_config(st.get("config"), cfg)
        trainer.resume(st)

    def step_loss(item: tuple[torch.Tensor, ...]) -> StepLoss:
        clean, noisy, sigma = distributed.share(finish_batch(item, cfg, device), ranks)
        return StepLoss(training_loss(cfg.loss, net, noisy, clean, sigma))

    finished = False
    try:
        yield from trainer.run(batch_stream(batches, trainer.step, loader_workers(cfg.workers, device), device),
                               step_loss)
        finished = True
    finally:
        distributed.stop(ranks, together=finished)
    return out
