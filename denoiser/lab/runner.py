"""Running the lab: choose experiments, train their models once, measure, and write the report."""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch

from denoiser.checkpoint import user_models_dir
from denoiser.lab import (
    anomaly,
    compression,
    corruptions,
    generation,
    identity,
    robustness,
    sparsity,
    variance,
)
from denoiser.lab.common import (
    DEFAULT_TEST,
    DEFAULT_TRAIN,
    ExperimentResult,
    LabConfig,
    LabContext,
    ModelSpec,
)
from denoiser.lab.report import write_report
from denoiser.progress import Progress, ProgressGen

#: The experiments in report order, by key. Each module has KEY, TITLE, EXPECTATION, plan(scale) and run(ctx).
EXPERIMENTS: dict[str, ModuleType] = {
    m.KEY: m for m in (identity, corruptions, variance, robustness, sparsity, anomaly, compression, generation)
}


def select(only: tuple[str, ...] | list[str]) -> list[str]:
    """Experiment keys from keys or 1-based numbers (empty: all), in report order."""
    if not only:
        return list(EXPERIMENTS)
    keys = list(EXPERIMENTS)
    chosen = set()
    for item in only:
        item = item.strip()
        if item.isdigit() and 1 <= int(item) <= len(keys):
            chosen.add(keys[int(item) - 1])
        elif item in EXPERIMENTS:
            chosen.add(item)
        else:
            raise ValueError(f"unknown experiment '{item}' (known: {', '.join(keys)} or 1–{len(keys)})")
    return [k for k in keys if k in chosen]


def planned_models(keys: list[str], cfg: LabConfig) -> list[ModelSpec]:
    """The distinct models the chosen experiments train, in first-use order."""
    seen: dict[str, ModelSpec] = {}
    for key in keys:
        for spec in EXPERIMENTS[key].plan(cfg.resolved_scale()):
            seen.setdefault(spec.name, spec)
    return list(seen.values())


@dataclass
class LabResult:
    """What a lab run wrote."""

    out: Path
    report: Path
    results: Path
    experiments: list[ExperimentResult]
    models: list[Path]
    seconds: float
    installed: list[Path] = field(default_factory=list)


def run_lab(cfg: LabConfig) -> ProgressGen[LabResult]:
    """Run the chosen experiments, yielding progress; returns where the report and models are."""
    keys = select(cfg.only)
    scale = cfg.resolved_scale()
    specs = planned_models(keys, cfg)
    total = len(specs) * scale.steps + len(keys) * scale.steps / 4
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or 1)
    t0 = time.time()
    try:
        ctx = LabContext(cfg, total)
        yield ctx.progress(f"loading data ({len(specs)} models to train, {len(keys)} experiments)")
        _ = ctx.train_patches, ctx.test_images
        results = []
        for i, key in enumerate(keys, 1):
            yield ctx.progress(f"experiment {i}/{len(keys)}: {EXPERIMENTS[key].TITLE}")
            start = time.time()
            result = yield from EXPERIMENTS[key].run(ctx)
            result.seconds = time.time() - start
            results.append(result)
        seconds = time.time() - t0
        report, json_path = write_report(Path(cfg.out), ctx, results, seconds)
        installed = []
        if cfg.save_models:
            folder = user_models_dir()
            folder.mkdir(parents=True, exist_ok=True)
            for path in ctx.saved:
                installed.append(Path(shutil.copy2(path, folder / path.name)))
        yield Progress(total, total, f"report written to {report}")
        return LabResult(Path(cfg.out), report, json_path, results, list(ctx.saved), seconds, installed)
    finally:
        torch.set_num_threads(previous_threads)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The lab's command-line options (shared by `denoiser lab` and `bench/lab.py`)."""
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for REPORT.md, results.json, figures, models/")
    parser.add_argument("--quick", action="store_true", help="a small, fast run (about a minute) instead of the full one")
    parser.add_argument("--only", default="", metavar="EXP,...",
                        help=f"only these experiments, by name or number: {', '.join(EXPERIMENTS)} (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data sampling, initialisation and noise (default 0)")
    parser.add_argument("--train-data", default=str(DEFAULT_TRAIN), metavar="DIR",
                        help="training images (default: ../shared/data/train/gray)")
    parser.add_argument("--test-data", default=str(DEFAULT_TEST), metavar="DIR",
                        help="test images, never trained on (default: ../shared/data/test/BSD68)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default 1)")
    parser.add_argument("--save-models", action="store_true",
                        help="also copy the models into the user models folder (names start with 'lab-')")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace) -> LabConfig:
    """A LabConfig from parsed options; unknown experiment names raise ValueError."""
    only = tuple(v for v in args.only.split(",") if v.strip())
    select(only)
    if args.threads is not None and args.threads < 1:
        raise ValueError("--threads must be at least 1")
    return LabConfig(out=Path(args.out), quick=args.quick, only=only, seed=args.seed,
                     train_data=Path(args.train_data), test_data=Path(args.test_data), threads=args.threads,
                     save_models=args.save_models)


def summary(result: LabResult) -> str:
    """What a run wrote and how many of each experiment's checks agree with the theory."""
    lines = [f"report: {result.report}", f"results: {result.results}",
             f"{len(result.models)} models in {result.out / 'models'} ({result.seconds / 60:.1f} min)"]
    for r in result.experiments:
        agree = sum(c.agrees for c in r.checks)
        lines.append(f"  {r.title}: {agree} of {len(r.checks)} checks agree with the theory")
    if result.installed:
        lines.append(f"installed {len(result.installed)} models into {result.installed[0].parent}")
    return "\n".join(lines)
