"""The recipe of a training run, and the files a run writes beside its checkpoint.

`TrainConfig` (with its `NoiseConfig` and `LossConfig`) is typed, refuses unknown keys, and is what a
checkpoint stores and `denoiser train --config recipe.toml` reads; a resume that changes the recipe
is refused with each difference named.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from denoiser.atomic import probe_writable
from denoiser.checkpoint import torch_file
from denoiser.config_dict import config_changes, config_from_dict
from denoiser.errors import CheckpointError, DenoiserError
from denoiser.losses import LossConfig

SIGMA_MAPS = ("true", "estimate")  # NoiseConfig.sigma_map: which σ a noisy sample is told
CLEAN_SIGMAS = ("zero", "estimate")  # NoiseConfig.clean_sigma: which σ a noise-free sample is told
VAL_ON = ("all", "real")  # TrainConfig.val_on: which crops validate (and so choose the best checkpoint)


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
    clean_sigma: str = "zero"  # σ a noise-free sample is told: "zero" (its truth) or "estimate" (what auto σ reads)
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
    gray_prob: float = 0.0  # colour: share of samples (rendered and real) made black-and-white, input and target
    ccm_prob: float = 0.0  # camera (colour): share of samples developed with a random camera's colour matrix
    val_sigma: float = 25.0  # validation: gaussian σ (or camera level × 100 for camera)

    def __post_init__(self) -> None:
        for name, allowed in (("sigma_map", SIGMA_MAPS), ("clean_sigma", CLEAN_SIGMAS)):
            if getattr(self, name) not in allowed:
                raise DenoiserError(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")

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
    # > 0: real clean targets take the noisy shot's low frequencies (Gaussian, px); a list gives each real_data
    # folder its own radius (0 for pairs that already agree in light and tone, as rendered ones do)
    real_match_radius: float | list[float] = 0.0
    # each real_data folder's weight in the draw of real samples, in order (empty: equal parts, whatever the sizes)
    real_weights: list[float] = field(default_factory=list)
    val_on: str = "all"  # "all": synthetic and held-out real crops validate; "real": the held-out real scenes alone
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
    ema: float = 0.0  # decay of the moving average of the weights that validates and is saved (0: off)
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

    def __post_init__(self) -> None:
        if self.val_on not in VAL_ON:
            raise DenoiserError(f"val_on must be one of {', '.join(VAL_ON)}, not {self.val_on!r}")
        radii = self.real_match_radius if isinstance(self.real_match_radius, (list, tuple)) else [self.real_match_radius]
        if not all(isinstance(r, (int, float)) and r >= 0 for r in radii):
            raise DenoiserError(f"real_match_radius must be 0 (off) or a radius in px, not {self.real_match_radius}")
        if isinstance(self.real_match_radius, (list, tuple)):
            self.real_match_radius = [float(r) for r in self.real_match_radius]
            self.match_radii()
        if not all(isinstance(w, (int, float)) and w > 0 for w in self.real_weights):
            raise DenoiserError(f"real_weights must be positive numbers, one per real_data folder, not {self.real_weights}")
        self.real_weights = [float(w) for w in self.real_weights]
        if self.real_data:
            self.folder_weights()

    def match_radii(self) -> float | dict[Path, float]:
        """The match radius of the real pairs: one for all, or each real_data folder (resolved) → its own."""
        if not isinstance(self.real_match_radius, list):
            return float(self.real_match_radius)
        if self.real_data and len(self.real_match_radius) != len(self.real_data):
            raise DenoiserError(f"real_match_radius gives {len(self.real_match_radius)} radii for "
                                f"{len(self.real_data)} real_data folders: give one, or one per folder")
        return {Path(folder).resolve(): r for folder, r in zip(self.real_data, self.real_match_radius, strict=True)}

    def folder_weights(self) -> dict[Path, float] | None:
        """Each real_data folder (resolved) → its weight in the draw of real samples; None: equal parts."""
        if not self.real_weights:
            return None
        if len(self.real_weights) != len(self.real_data):
            raise DenoiserError(f"real_weights gives {len(self.real_weights)} weights for {len(self.real_data)} "
                                "real_data folders: give one per folder, in order")
        return {Path(folder).resolve(): w for folder, w in zip(self.real_data, self.real_weights, strict=True)}

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
    try:  # settings added since the state was written take their defaults there, as they did in its run
        stored = TrainConfig.from_dict(stored).to_dict()
    except DenoiserError:
        pass  # a setting since removed: compared as stored, so it is named
    changes = config_changes(stored, cfg.to_dict(), RESUME_MAY_CHANGE)
    if changes:
        raise DenoiserError(f"'{cfg.resume}' was written by a run with other settings: {'; '.join(changes)}. "
                            "Resume with the same settings, or start a new run with --base from its checkpoint")


def state_path(out: str | Path) -> Path:
    """The resumable state file beside a checkpoint: `model.pt` → `model.state.pt`."""
    out = Path(out)
    return out.with_name(out.stem + ".state.pt")


def existing_run_files(out: str | Path) -> list[Path]:
    """The files a new run at `out` would replace: the checkpoint and its state, whichever exist.

    Either one blocks a fresh run (a leftover state from a stopped run would be overwritten), and the
    refusal names the one that is there, so the user is not told about a checkpoint they cannot see."""
    return [p for p in (Path(out), state_path(out)) if p.exists()]


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
