"""`denoiser finetune`: fine-tune a model on your photos."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from denoiser.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _pair,
    _positive,
    _warn_emulated_bf16,
    drain_training,
)
from denoiser.errors import DenoiserError
from denoiser.training.events import FinetuneProgress


def run(args: argparse.Namespace) -> int:
    from denoiser.distributed import from_environment
    from denoiser.training import (
        FinetuneConfig,
        estimate_memory_mb,
        existing_run_files,
        finetune,
        output_path,
        state_path,
    )

    if not 0 <= args.val_fraction < 1:
        raise UsageError("--val-fraction must be within [0, 1)")
    if args.sigma_range is not None and not 0 <= args.sigma_range[0] <= args.sigma_range[1] <= 255:
        raise UsageError("--sigma-range must be LO,HI with 0 ≤ LO ≤ HI ≤ 255")
    try:
        out = output_path(args.output)
    except DenoiserError as exc:
        raise UsageError(str(exc)) from None
    blocking = [] if args.overwrite or args.resume else existing_run_files(out)
    if blocking:
        raise UsageError(f"{blocking[0]} already exists: choose another -o, --resume {state_path(out)}, or --overwrite")
    cfg = FinetuneConfig(
        data=args.folders, base=args.base, out=args.output, mode=args.mode, steps=args.steps, minutes=args.minutes,
        val_fraction=args.val_fraction, freeze_encoder=args.freeze_encoder, device=args.device, precision=args.precision, resume=args.resume,
        noise=args.noise, sigma_range=args.sigma_range, lr=args.lr, patch=args.patch, batch=args.batch,
        seed=args.seed, pd=args.pd, anchor=args.anchor, distill=args.distill, force=args.force, overwrite=args.overwrite, threads=args.threads,
        description=args.description,
    )
    main_rank = from_environment().is_main  # under torchrun, rank 0 speaks for all
    mem = estimate_memory_mb(cfg)
    if main_rank:
        print(f"fine-tuning {args.base} ({args.mode} mode) into {out}; memory ≈ {mem['total']:.0f} MB "
              f"(model {mem['model']:.0f}, activations {mem['activations']:.0f}, images {mem['images']:.0f})",
              file=sys.stderr, flush=True)
    _warn_emulated_bf16(args.precision, args.device, main_rank)

    def show(ev: FinetuneProgress) -> None:
        if main_rank and not args.quiet and ev.total > 0:
            eta_text = f"  ETA {ev.eta_s / 60:.1f} min" if math.isfinite(ev.eta_s) else ""
            print(f"{ev.message}{eta_text}", file=sys.stderr, flush=True)

    result = drain_training(finetune(cfg), show, main_rank, f"stopped; the best checkpoint so far is kept at {out}; "
                            f"continue with --resume {state_path(out)}")
    if result is None:
        return EXIT_FAILED
    if main_rank:
        print(f"saved {result.path} ({result.steps} steps)")
        print(result.verdict())
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
    from denoiser.noise import NOISE_MODELS

    f = sub.add_parser("finetune", help="fine-tune a model on your own photos (clean or noisy only)",
                       description="Fine-tune a model on your photos. clean: supervised on pairs made with a noise "
                                   "model; noisy: self-supervised (Neighbor2Neighbor with pixel-shuffle down-sampling, "
                                   "the full-resolution output distilled from it, and an anchor to the base model). "
                                   "Saves into the user models folder.")
    f.add_argument("folders", nargs="+", metavar="FOLDER", help="folders (or files) of your photos")
    f.add_argument("--base", default="default", metavar="NAME|PATH", help="model to start from (default: photo)")
    f.add_argument("-o", "--output", required=True, metavar="NAME|PATH",
                   help="NAME saves the user models folder's NAME.pt; a path saves there")
    f.add_argument("--mode", default="clean", choices=["clean", "noisy"],
                   help="clean: your photos are low-noise; noisy: only noisy photos (default clean)")
    f.add_argument("--steps", type=_positive(int), default=None, help="training steps (default: what --minutes allows)")
    f.add_argument("--minutes", type=_positive(float), default=None, help="time budget (default 10 when --steps is not given)")
    f.add_argument("--val-fraction", type=float, default=0.1, help="share of the photos kept for validation (default 0.1)")
    f.add_argument("--freeze-encoder", action="store_true", help="train the decoder only")
    f.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    f.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: mixed precision on CUDA and on CPUs with native bf16, else fp32")
    f.add_argument("--resume", default=None, metavar="STATE", help="the *.state.pt of an earlier, stopped run")
    f.add_argument("--noise", default=None, choices=list(NOISE_MODELS), help="clean mode: noise model (default: the base's)")
    f.add_argument("--sigma-range", type=_pair, default=None, metavar="LO,HI", help="clean mode: gaussian σ range (default: the base's)")
    f.add_argument("--lr", type=_positive(float), default=None, help="learning rate (default 5e-5 in clean mode, 1e-5 in noisy mode; warm-up over the first 10 %% of steps)")
    f.add_argument("--patch", type=_positive(int), default=None, help="patch edge (default 96 clean, 128 noisy)")
    f.add_argument("--batch", type=_positive(int), default=None, help="patches per step (default 8 clean, 4 noisy)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--pd", type=int, choices=[1, 2, 3], default=2, help="noisy mode: pixel-shuffle stride, 1 = off (default 2)")
    f.add_argument("--anchor", type=float, default=0.1, help="noisy mode: weight of the anchor to the base model (default 0.1)")
    f.add_argument("--force", action="store_true",
                   help="noisy mode: fine-tune even when the base already removes the photos' noise "
                        "(by default such a base is kept unchanged)")
    f.add_argument("--distill", type=float, default=1.0,
                   help="noisy mode: weight of the full-resolution self-distillation from the PD sub-images (default 1)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing output model")
    f.add_argument("--threads", type=_positive(int), default=None)
    f.add_argument("--description", default="", help="the new model's description (default: made from the run)")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    f.set_defaults(func=run)
