"""Training and fine-tuning as a generator of progress events.

`train(config)` yields `Progress` events (step, loss, validation PSNR, images/s, ETA) and returns the
path of the best checkpoint. The CLI drains it with a progress line; the GUI runs it in a worker and
stops it by closing the generator — the best checkpoint so far and a resumable state file are kept.
Noise is made on the fly per batch; a share of the noisy inputs is clipped and rounded to 8 bits as a
saved photo is, so the models do not break on real files. Each step's batch is a function of the seed
and the step alone (`StepBatches`), so a resumed run sees exactly the data an uninterrupted one would,
and batches can be made in loader processes (`workers`) while a GPU trains, with the same result.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from denoiser import distributed
from denoiser.archs import DenoiserNet, build_arch
from denoiser.archs.unet import UNet, unet_to_gray
from denoiser.atomic import probe_writable
from denoiser.checkpoint import load_checkpoint, save_checkpoint, torch_file, write_torch_file
from denoiser.config_dict import config_changes, config_from_dict
from denoiser.data import (
    PairSampler,
    PatchSampler,
    find_images,
    find_pairs,
    real_validation_crops,
    split_pairs,
    split_train_val,
    validation_crops,
)
from denoiser.device import cpu_has_native_bf16, resolve_device
from denoiser.errors import CheckpointError, DenoiserError
from denoiser.estimate import estimate_sigma
from denoiser.losses import LossConfig, training_loss
from denoiser.noise import (
    DAYLIGHT_GAINS,
    apply_noise,
    blur_noise,
    camera,
    camera_levels,
    jpeg_compress,
    quantize_8bit,
    reduce_chroma_noise,
    sharpen_noise,
)
from denoiser.progress import Progress, ProgressGen
from denoiser.raw import raw_training_pair


@dataclass
class NoiseConfig:
    """How noisy training inputs are made, and which noise level the model is told."""

    name: str = "gaussian"
    sigma_range: tuple[float, float] = (0.0, 75.0)  # gaussian σ, per sample, 0–255 scale
    sigma_power: float = 1.0  # σ = lo + (hi − lo)·uᵖ: 1 uniform, > 1 more low-σ samples (weaker noise)
    level_range: tuple[float, float] = (0.0, 1.0)  # camera noise level, per sample
    clip_prob: float = 0.5  # share of samples clipped and rounded to 8 bits
    jpeg_prob: float = 0.0  # camera: share of samples JPEG-compressed
    jpeg_quality: tuple[int, int] = (70, 95)
    params: dict[str, float] = field(default_factory=dict)  # fixed parameters of other noise models
    sigma_map: str = "true"  # "true": the σ used; "estimate": the blind estimate of the noisy input
    clean_prob: float = 0.0  # share of samples left noise-free (input = target): a clean photo is left alone
    exposure_prob: float = 0.0  # share of clean patches brightened by a gain from exposure_range, then clipped
    exposure_range: tuple[float, float] = (1.0, 2.0)  # so the model sees saturated highlights and keeps them
    blur_prob: float = 0.0  # camera: share of samples whose noise is low-passed (in-camera noise reduction)
    blur_range: tuple[float, float] = (0.3, 1.0)  # its Gaussian radius in px, drawn per sample
    white_prob: float = 0.0  # camera: share of samples whose sensor noise is partly per-pixel (after demosaicing)
    white_range: tuple[float, float] = (0.0, 1.0)  # that per-pixel share t of the noise variance, per sample
    sharpen_prob: float = 0.0  # camera: share of samples whose noise is unsharp-masked (in-camera sharpening)
    sharpen_range: tuple[float, float] = (0.2, 1.0)  # its amount, drawn per sample (radius 1 px)
    chroma_nr_prob: float = 0.0  # camera (colour): share of samples whose colour noise is reduced, luma kept
    chroma_nr_range: tuple[float, float] = (0.2, 0.8)  # the share of colour noise left, drawn per sample
    develop_prob: float = 0.0  # camera: share of samples whose input is (partly) the softer demosaiced develop
    develop_range: tuple[float, float] = (0.5, 1.0)  # d: the develop's share is d × the sample's noise level
    wb_prob: float = 0.0  # camera (colour): share of samples with their own white balance (red, blue gains)
    wb_range: tuple[float, float] = (0.7, 1.4)  # factors on the daylight red and blue gains, each drawn per sample
    val_sigma: float = 25.0  # validation: gaussian σ (or camera level × 100 for camera)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseConfig:
        """The config a checkpoint stored (or a recipe gives); unknown keys are refused."""
        return config_from_dict(cls, data)


@dataclass
class TrainConfig:
    """Everything a training or fine-tuning run needs; stored in the checkpoint."""

    data: list[str]
    out: str
    real_data: list[str] = field(default_factory=list)  # folders of real noisy/ and clean/ pairs
    real_share: float = 0.0  # share of each batch drawn from the real pairs (their held-out scenes validate)
    arch: str = "unet"
    arch_config: dict[str, Any] = field(default_factory=dict)
    channels: int = 3
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    patch: int = 96
    batch: int = 16
    steps: int = 10000
    lr: float = 5e-4  # the CLI's default too
    min_lr: float = 1e-5
    warmup: int = 200
    device: str = "auto"
    precision: str = "auto"  # auto: bf16/fp16 mixed precision on CUDA, bf16 on a CPU with native bf16, else fp32
    seed: int = 0
    val_fraction: float = 0.05
    val_every: int = 500
    checkpoint_every: int = 250
    log_every: int = 10
    minutes: float | None = None  # wall-time budget; the cosine schedule then anneals over it
    base: str | None = None  # initialise from this checkpoint (fine-tuning)
    freeze_encoder: bool = False
    resume: str | None = None
    threads: int | None = None
    workers: int | None = None  # batch-making processes; None: none on the CPU, several beside a GPU
    cache_mb: float = 1024  # budget of the decoded-image cache of the patch sampler
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data (what checkpoints store); `resume` is where a run came from, not the recipe."""
        d = asdict(self)
        d.pop("resume", None)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """A config from `to_dict`'s dict (a checkpoint's `config`); unknown keys are refused."""
        return config_from_dict(cls, data, nested={"noise": NoiseConfig, "loss": LossConfig})


# Settings a resumed run may change: where it writes, how long it runs, on what, and how often it reports.
# Every other one defines the training, and a resume that changes it would not continue the same run.
RESUME_MAY_CHANGE = ("out", "resume", "steps", "minutes", "device", "precision", "threads", "workers",
                     "log_every", "val_every", "checkpoint_every", "cache_mb", "description")


def check_resume_config(stored: Mapping[str, Any] | None, cfg: TrainConfig) -> None:
    """DenoiserError naming every recipe setting in which `cfg` differs from the state it resumes."""
    if not isinstance(stored, Mapping):
        return
    changes = config_changes(stored, cfg.to_dict(), RESUME_MAY_CHANGE)
    if changes:
        raise DenoiserError(f"'{cfg.resume}' was written by a run with other settings: {'; '.join(changes)}. "
                            "Resume with the same settings, or start a new run with --base from its checkpoint")


def state_path(out: str | Path) -> Path:
    """The resumable state file beside a checkpoint: `model.pt` → `model.state.pt`."""
    out = Path(out)
    return out.with_name(out.stem + ".state.pt")


def make_noisy(clean: torch.Tensor, cfg: NoiseConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt a clean batch; returns the noisy batch and the per-sample σ/255 the model is given.

    Camera noise keeps the clean image's detail (only the pipeline's noise is added), and with
    `clean_prob` some samples stay noise-free, so the model learns that a clean input is its own target.
    """
    b = clean.shape[0]
    dev = clean.device
    gdev = gen.device
    if cfg.name == "gaussian":
        lo, hi = cfg.sigma_range
        u = torch.rand(b, generator=gen, device=gdev)
        sigma = (lo + (hi - lo) * (u if cfg.sigma_power == 1.0 else u ** cfg.sigma_power)).to(dev) / 255.0
        noisy = clean + sigma.view(-1, 1, 1, 1) * torch.randn(clean.shape, generator=gen, device=gdev).to(dev)
    elif cfg.name == "camera":
        lo, hi = cfg.level_range
        levels = lo + (hi - lo) * torch.rand(b, generator=gen)
        sr = [camera_levels(float(v)) for v in levels]
        shot = torch.tensor([s for s, _ in sr], device=dev).view(-1, 1, 1, 1)
        read = torch.tensor([r for _, r in sr], device=dev).view(-1, 1, 1, 1)
        white = 0.0
        if cfg.white_prob > 0:
            picked, shares = _draw(b, cfg.white_prob, cfg.white_range, gen)
            white = torch.where(picked, shares, torch.zeros(b)).to(dev)
        keep = 1.0
        if cfg.develop_prob > 0:  # noisier samples come from a softer develop: at level 0 the detail is all kept
            picked, shares = _draw(b, cfg.develop_prob, cfg.develop_range, gen)
            keep = (1 - torch.where(picked, shares * levels, torch.zeros(b))).to(dev)
        wb = None
        if cfg.wb_prob > 0 and clean.shape[1] == 3:  # tungsten to shade: red and blue noise amplified apart
            picked, red = _draw(b, cfg.wb_prob, cfg.wb_range, gen)
            _, blue = _draw(b, 0.0, cfg.wb_range, gen)
            factors = torch.stack([torch.where(picked, red, torch.ones(b)), torch.ones(b),
                                   torch.where(picked, blue, torch.ones(b))], dim=1)
            wb = DAYLIGHT_GAINS * factors
        noisy = camera(clean, gen, demosaic=1, jpeg_quality=0, keep_detail=keep, white=white, wb_gains=wb,
                       shot=shot, read=read)
        if cfg.sharpen_prob > 0:
            noisy = _each(noisy, clean, *_draw(b, cfg.sharpen_prob, cfg.sharpen_range, gen), sharpen_noise)
        if cfg.chroma_nr_prob > 0 and clean.shape[1] == 3:
            picked, keep = _draw(b, cfg.chroma_nr_prob, cfg.chroma_nr_range, gen)
            if picked.any():
                noisy = torch.where(picked.to(dev).view(-1, 1, 1, 1),
                                    reduce_chroma_noise(noisy, clean, torch.where(picked, keep, torch.ones(b)).to(dev)),
                                    noisy)
        if cfg.blur_prob > 0:
            noisy = _each(noisy, clean, *_draw(b, cfg.blur_prob, cfg.blur_range, gen), blur_noise)
        jpeg = torch.rand(b, generator=gen) < cfg.jpeg_prob
        for i in torch.nonzero(jpeg).flatten().tolist():
            q = int(torch.randint(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, (1,), generator=gen))
            noisy[i : i + 1] = jpeg_compress(noisy[i : i + 1], q)
        sigma = (noisy - clean).flatten(1).std(dim=1)
    else:
        noisy = apply_noise(clean, cfg.name, gen, **cfg.params)
        sigma = torch.full((b,), float(cfg.params.get("sigma", 0.0)) / 255.0, device=dev)
    if cfg.clean_prob > 0:
        keep = (torch.rand(b, generator=gen, device=gdev) < cfg.clean_prob).to(dev)
        noisy = torch.where(keep.view(-1, 1, 1, 1), clean, noisy)
        sigma = torch.where(keep, torch.zeros_like(sigma), sigma)
    clip = torch.rand(b, generator=gen, device=gdev).to(dev) < cfg.clip_prob
    if clip.any():
        noisy = torch.where(clip.view(-1, 1, 1, 1), quantize_8bit(noisy), noisy)
    if cfg.sigma_map == "estimate":
        sigma = estimated_sigmas(noisy)
    return noisy, sigma


def _draw(b: int, prob: float, value_range: tuple[float, float], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of `b` samples a pipeline step picks (each with probability `prob`), and a value for each
    drawn uniformly from `value_range`: the step's strength."""
    lo, hi = value_range
    picked = torch.rand(b, generator=gen) < prob
    return picked, lo + (hi - lo) * torch.rand(b, generator=gen)


def _each(noisy: torch.Tensor, clean: torch.Tensor, picked: torch.Tensor, values: torch.Tensor,
          step: Any) -> torch.Tensor:
    """`step(noisy_i, clean_i, value_i)` on each picked sample of the batch, in place."""
    for i in torch.nonzero(picked).flatten().tolist():
        noisy[i : i + 1] = step(noisy[i : i + 1], clean[i : i + 1], float(values[i]))
    return noisy


def estimated_sigmas(noisy: torch.Tensor) -> torch.Tensor:
    """The blind σ estimate (σ/255, float32) of each image of a batch, on the batch's device."""
    est = [estimate_sigma(n.permute(1, 2, 0).cpu().numpy()) / 255.0 for n in noisy]
    return torch.tensor(est, device=noisy.device, dtype=torch.float32)


def expose(clean: torch.Tensor, cfg: NoiseConfig, rng: np.random.Generator) -> torch.Tensor:
    """Brighten a share (`exposure_prob`) of the clean patches by a random gain and clip them, as an
    over-exposed photo is: the model then sees saturated highlights as clean content to keep."""
    if cfg.exposure_prob <= 0:
        return clean
    lo, hi = cfg.exposure_range
    picked = rng.random(clean.shape[0]) < cfg.exposure_prob
    gains = np.where(picked, lo + (hi - lo) * rng.random(clean.shape[0]), 1.0).astype(np.float32)
    return (clean * torch.from_numpy(gains).view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def real_sigma(noisy: torch.Tensor, clean: torch.Tensor, cfg: NoiseConfig) -> torch.Tensor:
    """σ/255 the model is told for real pairs: the blind estimate, or the measured noise when trained on the true σ."""
    if cfg.sigma_map == "estimate":
        return estimated_sigmas(noisy)
    return (noisy - clean).flatten(1).std(dim=1)


def validation_pairs(files: list[Path], cfg: TrainConfig,
                     real: list[tuple[Path, Path]] | None = None) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Fixed (clean, noisy, σ) validation crops, seeded so every validation sees the same noise; crops
    of the held-out real scenes join them when the run trains on real pairs."""
    pairs = []
    if cfg.noise.name == "raw":
        level = cfg.noise.val_sigma / 100.0
        for i, crop in enumerate(validation_crops(files, 3)):
            clean, noisy, sigma = raw_training_pair(crop, (level, level), 0.0, torch.Generator().manual_seed(1000 + i))
            pairs.append((clean, noisy, sigma))
        return pairs
    noise = NoiseConfig(**{**asdict(cfg.noise), "clip_prob": 0.0, "clean_prob": 0.0})
    if noise.name == "gaussian":
        noise.sigma_range = (noise.val_sigma, noise.val_sigma)
    elif noise.name == "camera":
        noise.level_range = (noise.val_sigma / 100.0, noise.val_sigma / 100.0)
        noise.jpeg_prob = 0.0
    for i, crop in enumerate(validation_crops(files, cfg.channels)):
        noisy, sigma = make_noisy(crop, noise, torch.Generator().manual_seed(1000 + i))
        pairs.append((crop, quantize_8bit(noisy) if noise.name == "camera" else noisy, sigma))
    for clean, noisy in real_validation_crops(real or [], cfg.channels):
        pairs.append((clean, noisy, real_sigma(noisy, clean, cfg.noise)))
    return pairs


@torch.no_grad()
def run_padded(net: DenoiserNet, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """`net(x, sigma)` on an image of any size: padded at the bottom and right to the network's size
    multiple (mirrored, or repeated where the image is too small to mirror), then cropped back."""
    mult = max(1, net.size_multiple)
    h, w = x.shape[-2:]
    ph, pw = -h % mult, -w % mult
    if not ph and not pw:
        return net(x, sigma)
    mode = "reflect" if ph < h and pw < w else "replicate"
    if sigma.dim() == 4:  # a per-pixel noise map is padded with the image
        sigma = F.pad(sigma, (0, pw, 0, ph), mode="replicate")
    return net(F.pad(x, (0, pw, 0, ph), mode=mode), sigma)[..., :h, :w]


def validate(net: DenoiserNet, pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], device: torch.device,
             levels: int = 255) -> float:
    """Mean PSNR (dB) of the model's output on the validation pairs, rounded to `levels` (8 bits as a
    saved photo is; a raw model's linear planes are kept at 16 bits, where 8-bit rounding would swamp
    the shadows)."""
    if not pairs:
        return float("nan")
    was = net.training
    net.eval()
    scores = []
    for clean, noisy, sigma in pairs:
        out = run_padded(net, noisy.to(device), sigma.to(device)).float().cpu()
        out = (out.clamp(0, 1) * levels).round()
        mse = torch.mean((out - clean * levels) ** 2).item()
        scores.append(10 * math.log10(levels**2 / max(mse, 1e-10)))
    net.train(was)
    return float(np.mean(scores))


def lr_at(step: int, cfg: TrainConfig, elapsed: float | None = None) -> float:
    """Linear warm-up, then cosine decay from `lr` to `min_lr` over the run.

    With a time budget (`minutes`) and the run's `elapsed` seconds, the decay follows whichever is
    further along, steps or time, so a run stopped by its budget still ends at a low learning rate.
    """
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.minutes and elapsed is not None:
        t = max(t, elapsed / (cfg.minutes * 60))
    return cosine_lr(t, cfg.lr, cfg.min_lr)


def cosine_lr(t: float, lr: float, min_lr: float) -> float:
    """The cosine decay from `lr` at t = 0 to `min_lr` at t ≥ 1 (the one schedule of training and the lab)."""
    return min_lr + 0.5 * (lr - min_lr) * (1 + math.cos(math.pi * min(1.0, t)))


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
        self.real = PairSampler(real, cfg.patch, cfg.channels) if real else None
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
        return clean, noisy, sigma


def noise_on_device(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether the training device makes the noise: Gaussian noise on a GPU (all of it is tensor work there)."""
    return device.type == "cuda" and cfg.noise.name == "gaussian" and cfg.noise.sigma_map == "true" and not cfg.real_data


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


def adam_for(net: DenoiserNet, lr: float, freeze_encoder: bool) -> tuple[list[torch.nn.Parameter], torch.optim.Adam]:
    """The parameters that train (the encoder's frozen when asked) and an Adam optimiser over them."""
    if freeze_encoder:
        for m in net.encoder_modules():
            for p in m.parameters():
                p.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    return params, torch.optim.Adam(params, lr=lr)


def model_channels(cfg: TrainConfig) -> int:
    """Channels of the model's input: the packed R, G, G, B planes for raw noise, else the data's."""
    return 4 if cfg.noise.name == "raw" else cfg.channels


def validation_levels(cfg: TrainConfig) -> int:
    """The rounding `validate` scores at: 16 bits for a raw model's linear planes, else 8 bits."""
    return 65535 if cfg.noise.name == "raw" else 255


def build_model(cfg: TrainConfig) -> DenoiserNet:
    """A fresh model of the configured arch, or the base checkpoint's model when fine-tuning."""
    if cfg.base:
        net = load_checkpoint(cfg.base).net
        if isinstance(net, UNet) and net.in_channels == 3 and cfg.channels == 1:
            net = unet_to_gray(net)
        return net
    arch_config = {"in_channels": model_channels(cfg), **cfg.arch_config}
    return build_arch(cfg.arch, **arch_config)


STATE_KEYS = ("model", "optimizer", "step", "best", "history", "torch_rng", "py_rng", "config")


def read_training_state(path: str | Path) -> dict:
    """The *.state.pt an earlier run wrote; CheckpointError (one line) for a missing or foreign file."""
    st = torch_file(path, "training state", "is not a training state written by `denoiser train`")
    missing = [k for k in STATE_KEYS if not isinstance(st, dict) or k not in st]
    if missing:
        raise CheckpointError(f"'{path}' is not a training state written by `denoiser train` (no {', '.join(missing)}); "
                              "--resume takes the *.state.pt beside a checkpoint")
    return st


def check_output_writable(out: str | Path) -> None:
    """DenoiserError before any work when the checkpoint (or its training state) cannot be written there."""
    for path in (Path(out), state_path(out)):
        try:
            probe_writable(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise DenoiserError(f"cannot write '{path}': {reason}; choose another --out") from None


def train(cfg: TrainConfig) -> ProgressGen[Path]:
    """Run (or resume) training; yields progress events and returns the best checkpoint's path."""
    if cfg.minutes is not None and cfg.minutes <= 0:
        raise DenoiserError(f"minutes must be positive, got {cfg.minutes} (a run of no time saves an untrained model)")
    if cfg.steps <= 0:
        raise DenoiserError(f"steps must be positive, got {cfg.steps}")
    if cfg.noise.name == "raw" and (cfg.channels != 3 or cfg.real_data):
        raise DenoiserError("raw noise is made from colour images (channels=3), without real pairs (they are developed sRGB)")
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
    step, best, history, elapsed_before = 0, -float("inf"), [], 0.0
    if cfg.resume:
        st = read_training_state(cfg.resume)
        check_resume_config(st.get("config"), cfg)
        net.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        step, best, history = st["step"], st["best"], st["history"]
        elapsed_before = st.get("elapsed", 0.0)
        torch.set_rng_state(st["torch_rng"])
        random.setstate(st["py_rng"])
    use_amp, amp_dtype = training_precision(cfg.precision, device)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    info = {
        "data": [str(d) for d in cfg.data],
        "train_images": len(train_files),
        "val_images": len(val_files),
        "real_train_scenes": [n.name for n, _ in real_train],
        "real_val_scenes": [n.name for n, _ in real_val],
        "device": str(device),
        "config": cfg.to_dict(),
    }
    t0 = time.time()
    last_log = (t0, step)
    running = []
    out = Path(cfg.out)

    def elapsed() -> float:
        return elapsed_before + time.time() - t0

    def save_state() -> None:
        write_torch_file(
            {
                "model": net.state_dict(),
                "optimizer": opt.state_dict(),
                "step": step,
                "best": best,
                "history": history,
                "elapsed": elapsed(),
                "torch_rng": torch.get_rng_state(),
                "py_rng": random.getstate(),
                "config": cfg.to_dict(),
            },
            state_path(out),
        )

    def save_best(val: float) -> None:
        save_checkpoint(
            out,
            net,
            noise=asdict(cfg.noise),
            training={**info, "steps": step, "wall_time_s": round(elapsed(), 1)},
            metrics={"val_psnr": val, "val_sigma": cfg.noise.val_sigma, "history": history[-50:]},
            description=cfg.description,
        )

    def validate_and_keep() -> tuple[float, bool]:
        """Validate now and record it; save the checkpoint when it is the best so far (then True)."""
        nonlocal best
        val = validate(net, pairs, device, validation_levels(cfg))
        recent = running[-cfg.val_every:]
        history.append([step, round(float(np.mean(recent)), 6) if recent else None, round(val, 3)])
        improved = not (val <= best)
        if improved:
            best = val
            save_best(val)
        return val, improved

    if not pairs and step == 0:
        best = float("nan")
    net.train()
    stream = batch_stream(batches, step, loader_workers(cfg.workers, device), device)
    try:
        for item in stream:
            (now_elapsed,) = distributed.agree([elapsed()], ranks, device)  # one schedule on every rank
            if cfg.minutes is not None and now_elapsed > cfg.minutes * 60:
                break
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg, now_elapsed)
            clean, noisy, sigma = distributed.share(finish_batch(item, cfg, device), ranks)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                loss = training_loss(cfg.loss, net, noisy, clean, sigma)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            distributed.average_gradients(params, ranks)
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            scaler.step(opt)
            scaler.update()
            step += 1
            running.append(distributed.mean(float(loss.detach()), ranks, device))
            if not ranks.is_main:
                continue  # rank 0 validates, saves and reports for all
            data: dict[str, Any] = {}
            if pairs and (step % cfg.val_every == 0 or step == cfg.steps):
                val, improved = validate_and_keep()
                data["val_psnr"] = val
                if improved:
                    data["saved"] = str(out)
            if step % cfg.checkpoint_every == 0:
                save_state()
            if step % cfg.log_every == 0 or data or step == cfg.steps:
                now = time.time()
                ips = (step - last_log[1]) * cfg.batch / max(1e-6, now - last_log[0])
                last_log = (now, step)
                eta = (cfg.steps - step) * cfg.batch / max(ips, 1e-6)
                if cfg.minutes is not None:
                    eta = max(0.0, min(eta, cfg.minutes * 60 - elapsed()))
                data.update(
                    step=step,
                    loss=float(np.mean(running[-cfg.log_every:])),
                    images_per_s=ips,
                    eta_s=eta,
                    lr=lr_at(step, cfg, elapsed()),
                    best_val_psnr=best,
                )
                msg = f"step {step}/{cfg.steps} loss {data['loss']:.5f}"
                if "val_psnr" in data:
                    msg += f" val {data['val_psnr']:.2f} dB"
                yield Progress(step, cfg.steps, msg, data)
        if ranks.is_main and pairs and step > 0 and (not history or history[-1][0] != step):
            val, _improved = validate_and_keep()
            yield Progress(step, cfg.steps, f"stopped at step {step}: val {val:.2f} dB", {
                "step": step, "val_psnr": val, "best_val_psnr": best})
    finally:
        stream.close()
        if ranks.is_main:
            save_state()
            if not pairs or not out.exists():
                save_best(validate(net, pairs, device, validation_levels(cfg)) if pairs else float("nan"))
        distributed.stop(ranks)
    return out


__all__ = ["NoiseConfig", "StepBatches", "adam_for", "TrainConfig", "check_resume_config", "batch_stream", "finish_batch", "loader_workers", "noise_on_device", "make_noisy", "state_path", "train", "validate"]
