"""Shared machinery of the autoencoder lab: run sizes, model specs, data, training, scores.

The lab trains many tiny `conv-ae` models on a fixed pool of small gray patches, through the engine's
one `Trainer` (without validation passes or a resumable state) and the same engine parts: architectures
from the registry, `make_noisy` for the corruptions, the engine losses (reconstruction, encoder
robustness, KL sparsity), `PatchSampler` for the patches and `save_checkpoint` for the models.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from denoiser.archs import DenoiserNet, build_arch
from denoiser.checkpoint import save_checkpoint
from denoiser.data import ImageCache, PatchSampler, find_images
from denoiser.errors import DenoiserError
from denoiser.losses import LossConfig, training_loss
from denoiser.progress import Progress, ProgressGen
from denoiser.training import NoiseConfig, cosine_lr, make_noisy
from denoiser.training.trainer import Cadence, StepLoss, Trainer

LAB_PREFIX = "lab-"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TRAIN = REPO_ROOT.parent / "shared" / "data" / "train" / "gray"
DEFAULT_TEST = REPO_ROOT.parent / "shared" / "data" / "test" / "BSD68"


@dataclass(frozen=True)
class Scale:
    """How much work a run does: training length, patch pool, test crops, and how wide the sweeps are."""

    name: str
    steps: int  # training steps per model
    batch: int
    patch: int  # training patch edge (a multiple of 4)
    pool: int  # training patches sampled once per run
    train_images: int | None  # first N training images (None: all)
    test_images: int  # first N test images, one centre crop each
    test_size: int  # test crop edge (a multiple of 4)
    lr: float = 2e-3
    wide: bool = True  # full sweeps; False runs each experiment's small subset


QUICK = Scale("quick", steps=70, batch=16, patch=32, pool=512, train_images=40, test_images=6, test_size=64,
              lr=3e-3, wide=False)
FULL = Scale("full", steps=2000, batch=16, patch=32, pool=8192, train_images=None, test_images=68, test_size=96)


@dataclass
class LabConfig:
    """Where a lab run writes, what it runs, on which data."""

    out: Path
    quick: bool = False
    only: tuple[str, ...] = ()  # experiment keys; empty = all
    seed: int = 0
    train_data: Path = DEFAULT_TRAIN
    test_data: Path = DEFAULT_TEST
    channels: int = 1
    threads: int | None = None  # torch threads; None = 1 (tiny convolutions gain little and suffer on a busy CPU)
    save_models: bool = False  # also copy the models into the user models folder
    scale: Scale | None = None  # overrides the quick/full presets

    def resolved_scale(self) -> Scale:
        """The explicit scale, else QUICK or FULL."""
        return self.scale or (QUICK if self.quick else FULL)


def noise_config(name: str, params: dict[str, float], sigma_range: tuple[float, float] | None = None) -> NoiseConfig:
    """The engine's NoiseConfig of a corruption, unclipped; gaussian takes `sigma` or a per-sample σ range."""
    if name == "gaussian":
        lo, hi = sigma_range or (params["sigma"], params["sigma"])
        return NoiseConfig(name="gaussian", sigma_range=(lo, hi), clip_prob=0.0)
    return NoiseConfig(name=name, params=dict(params), clip_prob=0.0)


@dataclass(frozen=True)
class ModelSpec:
    """One lab model: a conv-ae config and how it is trained. Equal specs are trained once per run."""

    name: str
    arch: tuple[tuple[str, Any], ...]
    noise: str | None = None  # None: trained on clean inputs (a plain autoencoder)
    noise_params: tuple[tuple[str, float], ...] = ()
    sigma_range: tuple[float, float] | None = None  # gaussian σ drawn per sample from this range
    robustness_lambda: float = 0.0  # 0 = no encoder-robustness term
    sparsity_beta: float = 0.0  # 0 = no KL sparsity term
    sparsity_rho: float = 0.05
    description: str = ""

    def arch_config(self) -> dict[str, Any]:
        """Keyword arguments of `build_arch("conv-ae", ...)` (without in_channels)."""
        return dict(self.arch)

    def noise_config(self) -> NoiseConfig | None:
        """The training corruption as the engine's NoiseConfig (unclipped), or None for clean training."""
        if self.noise is None:
            return None
        return noise_config(self.noise, dict(self.noise_params), self.sigma_range)

    def loss_config(self) -> LossConfig:
        """The engine's LossConfig of this model's objective."""
        return LossConfig("l2", self.robustness_lambda, self.sparsity_beta, self.sparsity_rho)

    def training_label(self) -> str:
        """'clean', 'gaussian σ=25', 'gaussian σ∈[5, 55]', 'salt-pepper amount=0.1'."""
        if self.noise is None:
            return "clean"
        if self.noise == "gaussian" and self.sigma_range is not None:
            return f"gaussian σ∈[{self.sigma_range[0]:g}, {self.sigma_range[1]:g}]"
        params = dict(self.noise_params)
        text = ", ".join(f"{'σ' if k == 'sigma' else k}={v:g}" for k, v in params.items())
        return f"{self.noise} {text}".strip()


def conv_ae(width: int = 16, depth: int = 1, code_channels: int = 16, code_activation: str = "sigmoid") -> tuple:
    """A conv-ae config as a hashable tuple."""
    return (("width", width), ("depth", depth), ("code_channels", code_channels), ("code_activation", code_activation))


#: Overcomplete, no bottleneck: 8 linear code channels at full resolution = 8 code values per pixel.
OVERCOMPLETE = conv_ae(16, 0, 8, "none")
#: Overcomplete with sigmoid code units in (0, 1), as the KL sparsity penalty needs: 16 values per pixel.
SPARSE = conv_ae(16, 0, 16, "sigmoid")


def bottleneck(code_channels: int = 4) -> tuple:
    """Undercomplete: `code_channels` linear channels at quarter resolution = code_channels/16 values per pixel."""
    return conv_ae(16, 2, code_channels, "none")


GAUSS25 = (("sigma", 25.0),)
AE_OVERCOMPLETE = ModelSpec("ae-overcomplete", OVERCOMPLETE, description="overcomplete conv AE trained on clean patches")
DAE_OVERCOMPLETE = ModelSpec("dae-overcomplete-g25", OVERCOMPLETE, "gaussian", GAUSS25,
                             description="the same overcomplete conv AE trained as a DAE (gaussian σ=25)")


def bottleneck_spec(code_channels: int) -> ModelSpec:
    """The bottleneck AE with `code_channels` code channels, trained on clean patches."""
    return ModelSpec(f"ae-bottleneck-c{code_channels}", bottleneck(code_channels),
                     description=f"undercomplete bottleneck conv AE ({code_channels} code channels)")


AE_BOTTLENECK = bottleneck_spec(4)


@dataclass
class Table:
    """A result table: its rows hold plain numbers/strings (None for 'not applicable')."""

    name: str
    caption: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class Check:
    """One measured test of the theory: whether it agrees, what was measured, and why not if not."""

    agrees: bool
    text: str
    why: str = ""


@dataclass
class ExperimentResult:
    """Everything one experiment reports."""

    key: str
    title: str
    expectation: str
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)  # (file name in the output folder, caption)
    checks: list[Check] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)  # the numbers the checks use
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (non-finite floats become None)."""
        return json_ready(asdict(self))


def json_ready(obj: Any) -> Any:
    """Nested dicts/lists with tuples as lists and non-finite floats as None (strict JSON)."""
    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def check(ok: bool, text: str, why: str) -> Check:
    """A Check whose `why` is kept only when the measurement does not agree."""
    return Check(bool(ok), text, "" if ok else why)


def ratio(a: float, b: float) -> float:
    """a / b, with inf (or 1 for 0/0) instead of a division error when b is 0."""
    if b == 0:
        return 1.0 if a == 0 else math.inf
    return a / b


def stable_seed(seed: int, key: str) -> int:
    """A seed derived from the run seed and a name, identical across runs and platforms."""
    return (seed * 1_000_003 + zlib.crc32(key.encode())) % (2**31)


def psnr_batch(out: torch.Tensor, clean: torch.Tensor) -> float:
    """Mean over images of 10·log10(1/MSE) with values clipped to [0, 1] (dB)."""
    mse = ((out.clamp(0, 1) - clean.clamp(0, 1)) ** 2).flatten(1).mean(dim=1).clamp(min=1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


class LabContext:
    """One lab run's data, trained models and progress counter, shared by the experiments."""

    def __init__(self, cfg: LabConfig, total: float = 0.0) -> None:
        self.cfg = cfg
        self.scale = cfg.resolved_scale()
        self.out = Path(cfg.out)
        self.models_dir = self.out / "models"
        self.channels = cfg.channels
        self.done = 0.0
        self.total = total
        self.nets: dict[str, DenoiserNet] = {}
        self.specs: dict[str, ModelSpec] = {}
        self.train_seconds: dict[str, float] = {}
        self.saved: list[Path] = []
        self._pool: torch.Tensor | None = None
        self._test: torch.Tensor | None = None
        self.test_names: list[str] = []

    # --- data ---------------------------------------------------------------------------------------
    @property
    def train_patches(self) -> torch.Tensor:
        """(pool, C, P, P) clean training patches, sampled once per run from the training folder."""
        if self._pool is None:
            files = find_images([self.cfg.train_data])
            if not files:
                raise DenoiserError(f"no training images in {self.cfg.train_data} (give --train-data)")
            files = files[: self.scale.train_images]
            sampler = PatchSampler(files, self.scale.patch, self.channels, seed=stable_seed(self.cfg.seed, "pool"))
            self._pool = sampler.sample(self.scale.pool)
        return self._pool

    @property
    def test_images(self) -> torch.Tensor:
        """(N, C, S, S) centre crops of the first test images (never used for training)."""
        if self._test is None:
            files = find_images([self.cfg.test_data], recursive=False)
            if not files:
                raise DenoiserError(f"no test images in {self.cfg.test_data} (give --test-data)")
            cache = ImageCache(self.channels, cache_mb=0)
            size = self.scale.test_size
            crops, names = [], []
            for f in files[: self.scale.test_images]:
                img = cache.get(f)
                h, w = img.shape[:2]
                if h < size or w < size:
                    continue
                y, x = (h - size) // 2, (w - size) // 2
                crops.append(np.moveaxis(img[y : y + size, x : x + size], -1, 0))
                names.append(f.name)
            if not crops:
                raise DenoiserError(f"no test image in {self.cfg.test_data} is at least {size}×{size}")
            self._test = torch.from_numpy(np.ascontiguousarray(np.stack(crops)))
            self.test_names = names
        return self._test

    def corrupt(self, clean: torch.Tensor, name: str, params: dict[str, float], key: str = "") -> torch.Tensor:
        """Seeded evaluation corruption (unclipped), the same in every run with the same seed."""
        gen = torch.Generator().manual_seed(stable_seed(self.cfg.seed, f"eval:{name}:{sorted(params.items())}:{key}"))
        return make_noisy(clean, noise_config(name, params), gen)[0]

    # --- models -------------------------------------------------------------------------------------
    def model(self, spec: ModelSpec, experiment: str = "") -> ProgressGen[DenoiserNet]:
        """The trained model of `spec`: trained (and saved) on first use, then reused."""
        if spec.name in self.nets:
            if self.specs[spec.name] != spec:
                raise ValueError(f"two different lab models are named '{spec.name}'")
            return self.nets[spec.name]
        net = yield from self._train(spec, experiment)
        self.nets[spec.name] = net
        self.specs[spec.name] = spec
        return net

    def models(self, specs: list[ModelSpec], res: ExperimentResult) -> ProgressGen[dict[str, DenoiserNet]]:
        """Each spec's trained model by spec name, listed among the experiment's models."""
        nets = {}
        for spec in specs:
            nets[spec.name] = yield from self.model(spec, res.key)
            res.models.append(spec.name)
        return nets

    def _train(self, spec: ModelSpec, experiment: str) -> ProgressGen[DenoiserNet]:
        sc = self.scale
        torch.manual_seed(stable_seed(self.cfg.seed, f"init:{spec.name}"))
        net = build_arch("conv-ae", in_channels=self.channels, **spec.arch_config())
        net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=sc.lr)
        gen = torch.Generator().manual_seed(stable_seed(self.cfg.seed, f"train:{spec.name}"))
        pool = self.train_patches
        noise = spec.noise_config()
        loss_cfg = spec.loss_config()
        every = max(1, sc.steps // 25)
        t0 = time.time()

        def batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            while True:
                clean = pool[torch.randint(len(pool), (sc.batch,), generator=gen)]
                noisy = make_noisy(clean, noise, gen)[0] if noise is not None else clean
                yield (noisy.contiguous(memory_format=torch.channels_last),
                       clean.contiguous(memory_format=torch.channels_last))

        trainer = Trainer(net, list(net.parameters()), opt, steps=sc.steps, batch=sc.batch,
                          schedule=lambda step, _t: cosine_lr(step / sc.steps, sc.lr, 1e-5),
                          device=torch.device("cpu"), cadence=Cadence(log_every=every))
        counted = 0
        for ev in trainer.run(batches(), lambda b: StepLoss(training_loss(loss_cfg, net, *b))):
            self.done += ev.step - counted
            counted = ev.step
            yield self.progress(f"{experiment}: training {LAB_PREFIX}{spec.name} {ev.step}/{sc.steps} loss {ev.loss:.5f}")
        net.eval()
        seconds = time.time() - t0
        self.train_seconds[spec.name] = seconds
        training = {
            "lab": True,
            "experiment": experiment,
            "data": [str(self.cfg.train_data)],
            "steps": sc.steps,
            "batch": sc.batch,
            "patch": sc.patch,
            "scale": sc.name,
            "seed": self.cfg.seed,
            "wall_time_s": round(seconds, 1),
            "training_noise": spec.training_label(),
            "config": {"loss": asdict(loss_cfg)},
        }
        noise_dict = asdict(noise) if noise is not None else {"name": "none"}
        metrics = {"train_loss": trainer.recent_loss(every)}
        description = f"Autoencoder lab: {spec.description or spec.name} ({spec.training_label()})"
        path = save_checkpoint(self.models_dir / f"{LAB_PREFIX}{spec.name}.pt", net, noise=noise_dict,
                               training=training, metrics=metrics, description=description)
        self.saved.append(path)
        return net

    # --- evaluation ---------------------------------------------------------------------------------
    @torch.no_grad()
    def run(self, net: DenoiserNet, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
        """The model's output for a batch of images, clipped to [0, 1]."""
        outs = [net(x[i : i + batch]).clamp(0, 1) for i in range(0, len(x), batch)]
        return torch.cat(outs).contiguous()

    @torch.no_grad()
    def codes(self, net: DenoiserNet, x: torch.Tensor, batch: int = 32) -> torch.Tensor:
        """The code G(x) of each image."""
        return torch.cat([net.encode_decode(x[i : i + batch]).code for i in range(0, len(x), batch)]).contiguous()

    def noise_transfer(self, net: DenoiserNet, clean: torch.Tensor, noisy: torch.Tensor) -> float:
        """‖f(x̃) − f(x)‖² / ‖x̃ − x‖²: 1 for the identity, near 0 for a net that ignores the noise."""
        diff = self.run(net, noisy) - self.run(net, clean)
        return float((diff**2).mean() / ((noisy - clean) ** 2).mean().clamp(min=1e-12))

    def figure_path(self, name: str) -> Path:
        """Where a figure goes (in the output folder)."""
        self.out.mkdir(parents=True, exist_ok=True)
        return self.out / name

    def progress(self, message: str) -> Progress:
        """A progress event at the run's current count."""
        return Progress(min(self.done, self.total), self.total, message)

    def advance(self, units: float, message: str) -> Progress:
        """Count `units` of evaluation work and return the event."""
        self.done += units
        return self.progress(message)
