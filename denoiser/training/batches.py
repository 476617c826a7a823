"""Each step's training batch, drawn from (seed, step) alone.

A resumed run therefore sees exactly the data an uninterrupted one would, and batches can be made in
loader processes (`workers`) while a GPU trains, with the same result.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from denoiser.data import (
    PairSampler,
    PatchSampler,
)
from denoiser.raw import raw_training_pair
from denoiser.training.config import TrainConfig
from denoiser.training.synthesis import expose, make_gray, make_noisy, real_sigma


class StepBatches(torch.utils.data.Dataset):
    """Item `step` is that step's training batch, drawn from (seed, step) alone.

    An item is (clean, noisy, σ/255), or with `noise_later` (clean, noise seed): Gaussian noise is then
    made where the model trains (`finish_batch`), so a GPU makes it instead of the loader's CPU cores.
    """

    def __init__(self, files: list[Path], cfg: TrainConfig, noise_later: bool = False,
                 real: list[tuple[Path, Path]] | None = None) -> None:
        self.cfg = cfg
        self.noise_later = noise_later
        self.sampler = PatchSampler(files, cfg.patch, cfg.channels, seed=cfg.seed, cache_mb=cfg.cache_mb)
        self.real = PairSampler(real, cfg.patch, cfg.channels, match_radius=cfg.match_radii(),
                                 weights=cfg.folder_weights()) if real else None
        self.n_real = min(cfg.batch, int(round(cfg.batch * cfg.real_share))) if real else 0

    def __len__(self) -> int:
        return self.cfg.steps

    def __getitem__(self, step: int) -> tuple[torch.Tensor, ...]:
        rng = np.random.default_rng([self.cfg.seed, step])
        clean = self.sampler.sample(self.cfg.batch - self.n_real, rng)
        seed = int(rng.integers(2**62))
        clean = expose(clean, self.cfg.noise, rng)
        if self.cfg.noise.name == "raw":  # clean sRGB patches unprocessed to raw planes, noise added there
            gen = torch.Generator().manual_seed(seed)
            return raw_training_pair(clean, self.cfg.noise.level_range, self.cfg.noise.clean_prob, gen)
        if self.noise_later:
            return clean, torch.tensor(seed)
        noisy, sigma = make_noisy(clean, self.cfg.noise, torch.Generator().manual_seed(seed))
        if self.real is not None and self.n_real:
            real_clean, real_noisy = self.real.sample(self.n_real, rng)
            clean = torch.cat([clean, real_clean])
            noisy = torch.cat([noisy, real_noisy])
            sigma = torch.cat([sigma.float(), real_sigma(real_noisy, real_clean, self.cfg.noise).float()])
        return make_gray(clean, noisy, sigma, self.cfg.noise, rng)


def noise_on_device(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether the training device makes the noise: Gaussian noise on a GPU (all of it is tensor work there).
    A σ estimate (of the noisy inputs, or of the noise-free ones) is NumPy work, so it stays in the loaders."""
    n = cfg.noise
    estimates = n.sigma_map == "estimate" or (n.clean_prob > 0 and n.clean_sigma == "estimate")
    return device.type == "cuda" and n.name == "gaussian" and not estimates and not cfg.real_data and n.gray_prob <= 0


def finish_batch(item: tuple[torch.Tensor, ...], cfg: TrainConfig, device: torch.device) -> tuple[torch.Tensor, ...]:
    """(clean, noisy, σ/255) on `device`, channels-last, from a `StepBatches` item of either form."""
    clean = item[0].to(device, non_blocking=True)
    if len(item) == 2:
        gen = torch.Generator(device=device).manual_seed(int(item[1]))
        noisy, sigma = make_noisy(clean, cfg.noise, gen)
    else:
        noisy, sigma = item[1].to(device, non_blocking=True), item[2].to(device, non_blocking=True)
    cl = torch.channels_last
    return clean.contiguous(memory_format=cl), noisy.contiguous(memory_format=cl), sigma


def loader_workers(requested: int | None, device: torch.device) -> int:
    """Batch-making processes: as asked, else none on the CPU (they would take the training's cores)
    and up to 8 beside a GPU, leaving two cores for the training process."""
    if requested is not None:
        return max(0, requested)
    if device.type == "cpu":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 2))


def batch_stream(batches: StepBatches, start: int, workers: int, device: torch.device) -> Iterator[tuple[torch.Tensor, ...]]:
    """The batches of steps start, start+1, … in order, made here or in `workers` processes."""
    if workers == 0:
        for step in range(start, batches.cfg.steps):
            yield batches[step]
        return
    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, sampler=range(start, batches.cfg.steps), num_workers=workers,
        pin_memory=device.type == "cuda", prefetch_factor=4,
    )
    yield from loader
