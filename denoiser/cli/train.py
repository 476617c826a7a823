"""`denoiser train`: train a model from a recipe and/or options."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from denoiser.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _float_in,
    _jpeg_range,
    _pair,
    _positive,
    _share,
    _warn_emulated_bf16,
    drain_training,
)
from denoiser.errors import DenoiserError
from denoiser.training.config import CLEAN_SIGMAS, SIGMA_MAPS, VAL_ON
from denoiser.training.events import TrainProgress


def _numbers(text: str, expected: str) -> list[float]:
    """A comma-separated list of numbers, or the usage error that names what was `expected`."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, not '{text}'") from None


def _radii(text: str) -> float | list[float]:
    """--real-match-radius: one radius in px, or a comma-separated one per --real-data folder."""
    values = _numbers(text, "a radius in px or one per real folder 'PX,PX'")
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"a match radius is 0 (off) or more px, not '{text}'")
    return values[0] if len(values) == 1 else values


def _weights(text: str) -> list[float]:
    """--real-weights: a positive weight per --real-data folder, comma-separated."""
    values = _numbers(text, "one weight per real folder 'W,W'")
    if not all(v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"each real folder's weight is a positive number, not '{text}'")
    return values


_MIN_LR = _float_in(0.0, float("inf"), "expected a number, not '{text}'", "expected 0 or more, not '{text}'")

# train's options named otherwise in the config; the others are named as their TrainConfig, NoiseConfig
# or LossConfig field
_RENAMED = {"noise": "noise.name", "jpeg_range": "noise.jpeg_quality", "loss": "loss.reconstruction"}


def _config_key(dest: str, noise_fields: set[str], loss_fields: set[str]) -> str:
    """Where option `dest` lands in the config dict: 'lr', 'noise.clip_prob', 'loss.sparsity_beta'."""
    if dest in _RENAMED:
        return _RENAMED[dest]
    return f"noise.{dest}" if dest in noise_fields else f"loss.{dest}" if dest in loss_fields else dest


def _train_config(args: argparse.Namespace) -> Any:
    """The run's TrainConfig: the command line's options over --config's recipe over the defaults."""
    from denoiser.losses import LossConfig
    from denoiser.recipe import merge_recipe, read_recipe
    from denoiser.training import NoiseConfig, TrainConfig

    noise_fields = {f.name for f in dataclasses.fields(NoiseConfig)}
    loss_fields = {f.name for f in dataclasses.fields(LossConfig)}
    noise = NoiseConfig(name=args.noise, jpeg_quality=args.jpeg_range,
                        **{k: getattr(args, k) for k in noise_fields if hasattr(args, k)})
    loss = LossConfig(reconstruction=args.loss, **{k: getattr(args, k) for k in loss_fields if hasattr(args, k)})
    flags = TrainConfig(
        data=args.data or [], out=args.out or "", real_data=args.real_data, real_share=args.real_share, val_on=args.val_on,
        real_match_radius=args.real_match_radius, real_weights=args.real_weights,
        arch=args.arch, arch_config=_parse_json_object(args.arch_config, "--arch-config") if args.arch_config else {},
        channels=args.channels, noise=noise, loss=loss, patch=args.patch, batch=args.batch, steps=args.steps,
        lr=args.lr, min_lr=args.min_lr, ema=args.ema, device=args.device, precision=args.precision, seed=args.seed, val_fraction=args.val_fraction,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every, warmup=args.warmup, minutes=args.minutes,
        base=args.base, freeze_encoder=args.freeze_encoder, resume=args.resume, threads=args.threads, workers=args.workers, description=args.description,
    ).to_dict()
    given = {_config_key(d, noise_fields, loss_fields) for d in getattr(args, "given", set(vars(args)))}
    given |= {f"arch_config.{k}" for k in flags["arch_config"]}
    try:
        recipe = read_recipe(args.config) if args.config else {}
        cfg = TrainConfig.from_dict({**merge_recipe(recipe, flags, given), "resume": args.resume})
    except DenoiserError as exc:
        raise UsageError(f"--config {args.config}: {exc}" if args.config else str(exc)) from None
    if not cfg.real_data:
        cfg.real_share = 0.0
    for name in ("data", "out"):
        if not getattr(cfg, name):
            raise UsageError(f"--{name} is needed (on the command line or as `{name}` in --config)")
    if not 0.0 <= cfg.ema < 1.0:
        raise UsageError(f"--ema takes a decay within [0, 1), e.g. 0.999, not {cfg.ema:g}")
    _check_train_arch(cfg)
    return cfg


def run(args: argparse.Namespace) -> int:
    from denoiser.distributed import from_environment
    from denoiser.training import existing_run_files, state_path, train

    cfg = _train_config(args)
    blocking = [] if cfg.resume or args.overwrite else existing_run_files(cfg.out)
    if blocking:
        raise UsageError(f"{blocking[0]} already exists: choose another --out, --resume {state_path(cfg.out)}, "
                         "or --overwrite")

    def show(ev: TrainProgress) -> None:
        print(f"{ev.message}  {ev.images_per_s:.1f} img/s  ETA {ev.eta_s / 60:.1f} min", file=sys.stderr, flush=True)

    main_rank = from_environment().is_main  # under torchrun, rank 0 speaks for all
    _warn_emulated_bf16(cfg.precision, cfg.device, main_rank)
    out = drain_training(train(cfg), show, main_rank,
                         f"stopped; best checkpoint kept at {cfg.out}, resume with --resume {state_path(cfg.out)}")
    if out is None:
        return EXIT_FAILED
    if main_rank:
        print(f"saved {out}")
    return EXIT_OK


def _parse_json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{what} must be a JSON object")
    return value


def _check_train_arch(cfg: Any) -> None:
    """Build the network once so a wrong architecture, option or patch size is a usage error, not a crash."""
    from denoiser.archs import build_arch
    from denoiser.checkpoint import read_info

    try:
        net = build_arch(cfg.arch, **{"in_channels": cfg.channels, **cfg.arch_config})
    except (ValueError, TypeError) as exc:
        raise UsageError(f"cannot build --arch {cfg.arch} with {cfg.arch_config or 'its defaults'}: {exc}") from None
    if cfg.base:  # the run trains the base's network, so its size multiple is the one that counts
        try:
            info = read_info(cfg.base)
            net = build_arch(info.arch, **info.arch_config)
        except (DenoiserError, ValueError, TypeError) as exc:
            raise UsageError(f"--base {cfg.base}: {exc}") from None
    if cfg.patch % max(1, net.size_multiple):
        raise UsageError(f"--patch must be a multiple of {net.size_multiple} for this architecture, not {cfg.patch}")


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
    from denoiser.noise import NOISE_MODELS

    t = sub.add_parser("train", help="train a model", description="Train a denoiser on patches of the images in DIRs.")
    t.add_argument("--data", nargs="+", default=None, metavar="DIR", help="folders of clean training images")
    t.add_argument("--out", default=None, metavar="PATH", help="checkpoint to write (the best by validation PSNR)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out (and its state file)")
    t.add_argument("--arch", default="unet")
    t.add_argument("--arch-config", default=None, help='JSON, e.g. \'{"channels": [32, 64, 128, 256]}\'')
    t.add_argument("--config", default=None, metavar="RECIPE",
                   help="a .toml (or .json) recipe holding the whole training config (configs/*.toml are the "
                        "bundled models' recipes); options given here override its values")
    t.add_argument("--channels", type=int, choices=[1, 3], default=3)
    t.add_argument("--noise", default="gaussian", choices=[*NOISE_MODELS, "raw"],
                   help="noise of the training inputs; raw: the clean images are unprocessed to a Bayer mosaic, "
                        "shot + read noise (--level-range) is added there and a 4-plane raw model trains, as "
                        "`denoise` uses for camera RAW files")
    t.add_argument("--sigma-range", type=_pair, default=(0.0, 75.0))
    t.add_argument("--sigma-power", type=_positive(float), default=1.0, metavar="P",
                   help="σ = LO + (HI − LO)·uᵖ with u uniform: 1 samples σ uniformly (default), 2 puts 45 %% of "
                        "the samples in the lowest fifth of the range, where photos' noise mostly is")
    t.add_argument("--level-range", type=_pair, default=(0.0, 1.0), help="camera noise level range")
    t.add_argument("--clip-prob", type=float, default=0.5, help="share of noisy inputs clipped to 8 bits")
    t.add_argument("--jpeg-prob", type=float, default=0.0, help="camera: share JPEG-compressed")
    t.add_argument("--jpeg-range", type=_jpeg_range, default=(70, 95), metavar="LO,HI",
                   help="camera: JPEG qualities drawn per compressed sample, 1–100 (default 70,95)")
    t.add_argument("--sigma-map", default="true", choices=list(SIGMA_MAPS))
    t.add_argument("--clean-prob", type=_share, default=0.0,
                   help="share of samples left noise-free, so a clean photo is left alone (default 0)")
    t.add_argument("--clean-sigma", default="zero", choices=list(CLEAN_SIGMAS),
                   help="the σ a noise-free sample is told: zero (its truth, default) or estimate (the blind "
                        "estimate, as auto σ reads a clean textured photo); for gaussian and camera models told the true σ")
    steps = (  # (option, share help, range default, range help): the clean-side and camera pipeline steps
        ("exposure", "share of clean patches brightened and clipped, so saturated highlights stay saturated",
         (1.0, 2.0), "gain range of --exposure-prob (default 1,2)"),
        ("blur", "camera: share of samples whose noise is low-passed, as in-camera noise reduction leaves it",
         (0.3, 1.0), "radius range in px of --blur-prob (default 0.3,1)"),
        ("white", "camera: share of samples whose sensor noise is partly per-pixel (white: added after demosaicing)",
         (0.0, 1.0), "range of the per-pixel share of the noise variance of --white-prob (default 0,1)"),
        ("sharpen", "camera: share of samples whose noise is unsharp-masked, as in-camera sharpening leaves it",
         (0.2, 1.0), "amount range of --sharpen-prob (default 0.2,1)"),
        ("chroma-nr", "camera: share of colour samples whose colour noise is reduced, luma kept, as phones' "
         "and cameras' chroma noise reduction leaves it", (0.2, 0.8),
         "share of the colour noise left by --chroma-nr-prob (default 0.2,0.8)"),
        ("develop", "camera: share of samples whose input is partly the camera's softer demosaiced develop (the "
         "target keeps the detail), more so the noisier the sample", (0.5, 1.0),
         "D: the develop's share of a picked sample is D × its noise level (default 0.5,1)"),
        ("wb", "camera: share of colour samples with their own white balance (red and blue gains), so their "
         "red and blue noise is amplified apart as under tungsten or shade", (0.7, 1.4),
         "factors on the daylight red and blue gains (2.1, 1.7), each drawn per sample (default 0.7,1.4)"),
    )
    for name, share_help, default_range, range_help in steps:
        t.add_argument(f"--{name}-prob", type=_share, default=0.0, help=share_help)
        t.add_argument(f"--{name}-range", type=_pair, default=default_range, metavar="LO,HI", help=range_help)
    t.add_argument("--ccm-prob", type=_share, default=0.0,
                   help="camera: share of colour samples developed with a random camera's colour-correction matrix "
                        "(a mix of real cameras' matrices), so their noise is mixed across R, G and B as a camera's is "
                        "(default 0)")
    t.add_argument("--gray-prob", type=_share, default=0.0,
                   help="colour: share of samples, rendered and real, made black-and-white (input and target their "
                        "luma), so noise alike in every channel, as in a B&W photo or after chroma noise reduction, "
                        "is removed and not kept as detail (default 0)")
    t.add_argument("--real-data", nargs="+", default=[], metavar="DIR",
                   help="folders of real noisy/ and clean/ pairs; a fixed fifth of each folder's scenes validates, and "
                        "each folder gives an equal part of the real samples, whatever its size (or --real-weights)")
    t.add_argument("--real-share", type=_share, default=0.25,
                   help="share of each batch drawn from --real-data (default 0.25)")
    t.add_argument("--real-match-radius", type=_radii, default=0.0, metavar="PX[,PX...]",
                   help="give each real pair's clean target the noisy shot's low frequencies (a Gaussian of PX px), "
                        "so the pairs teach what noise is and not a change of light or tone (default 0: off); "
                        "a list gives each --real-data folder its own radius, in order (0 for rendered pairs)")
    t.add_argument("--real-weights", type=_weights, default=[], metavar="W,W[,W...]",
                   help="each --real-data folder's weight in the draw of real samples, in order (e.g. 2,1: the first "
                        "folder gives two thirds of them); default: equal parts")
    t.add_argument("--val-on", choices=VAL_ON, default="all",
                   help="what validates and so picks the best checkpoint: 'all' (synthetic crops and the held-out "
                        "real scenes, the default) or 'real' (the held-out scenes of --real-data alone)")
    t.add_argument("--val-sigma", type=float, default=25.0)
    t.add_argument("--loss", default="l1", choices=["l1", "l2", "charbonnier"])
    t.add_argument("--robustness-lambda", type=float, default=0.0, help="λ of the encoder-robustness term (0 = off)")
    t.add_argument("--sparsity-beta", type=float, default=0.0, help="β of the KL sparsity penalty (0 = off)")
    t.add_argument("--sparsity-rho", type=float, default=0.05)
    t.add_argument("--ssim-weight", type=float, default=0.0,
                   help="add W·(1 − SSIM) to the reconstruction loss, which keeps texture that L1 alone smooths "
                        "(default 0: off)")
    t.add_argument("--patch", type=_positive(int), default=96)
    t.add_argument("--batch", type=_positive(int), default=16)
    t.add_argument("--steps", type=_positive(int), default=10000)
    t.add_argument("--lr", type=_positive(float), default=5e-4)
    t.add_argument("--min-lr", type=_MIN_LR, default=1e-5, metavar="LR",
                   help="where the cosine schedule ends (default 1e-5; a --lr below it is kept constant)")
    t.add_argument("--warmup", type=int, default=200, help="linear learning-rate warm-up steps")
    t.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="validate and save the exponential moving average of the weights, e.g. 0.999 "
                        "(0 = the weights themselves; default 0)")
    t.add_argument("--minutes", type=_positive(float), default=None,
                   help="stop after this much wall time; the learning rate then anneals over it")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: mixed precision on CUDA and on CPUs with native bf16, else fp32")
    t.add_argument("--resume", default=None, metavar="CKPT", help="a *.state.pt written by an earlier run")
    t.add_argument("--base", default=None, help="initialise from this checkpoint")
    t.add_argument("--freeze-encoder", action="store_true",
                   help="train the decoder only (the encoder keeps --base's weights), a gentler fine-tune")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--val-fraction", type=float, default=0.05)
    t.add_argument("--val-every", type=int, default=500)
    t.add_argument("--checkpoint-every", type=int, default=250)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--workers", type=int, default=None,
                   help="processes making batches (default: none on the CPU, up to 8 beside a GPU)")
    t.add_argument("--description", default="")
    t.set_defaults(func=run)
