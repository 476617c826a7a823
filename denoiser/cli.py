"""The `denoiser` command line: thin over the engine, draining its generators with progress bars.

Exit codes: 0 ok, 1 some inputs failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from denoiser.errors import CheckpointError, DenoiserError, ModelNotFoundError, OutputExistsError
from denoiser.progress import Progress, drain

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments found after parsing (exit code 2)."""


def _sigma_arg(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sigma takes 'auto' or a number, not '{text}'") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError("--sigma must be within 0–255")
    return value


def _float_in(lo: float, hi: float, not_a_number: str, out_of_range: str) -> Callable[[str], float]:
    """An argparse type for a number in [lo, hi]; the messages are templates of the given `text`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(not_a_number.format(text=text)) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(out_of_range.format(text=text))
        return value
    return parse


def _unit_share(flag: str) -> Callable[[str], float]:
    """An argparse type for a 0–1 share whose message names `flag`."""
    return _float_in(0.0, 1.0, flag + " must be a number within 0–1, got {text!r}", flag + " must be within 0–1")


_strength_arg = _unit_share("--strength")


_grain_size = _float_in(0.5, 8.0, "--grain-size must be a number of pixels, got {text!r}",
                       "--grain-size must be within 0.5–8 px")


def _pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers 'LO,HI', not '{text}'") from None
    return a, b


def _jpeg_range(text: str) -> tuple[int, int]:
    lo, hi = _pair(text)
    if not (1 <= lo <= hi <= 100 and lo == int(lo) and hi == int(hi)):
        raise argparse.ArgumentTypeError(f"JPEG qualities are whole numbers with 1 ≤ LO ≤ HI ≤ 100, not '{text}'")
    return int(lo), int(hi)


def _sigma_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not '{text}'") from None
    if not values or not all(0 <= v <= 255 for v in values):
        raise argparse.ArgumentTypeError(f"expected one or more σ within 0–255 separated by commas, not '{text}'")
    return values


def _bar(total: float, desc: str, quiet: bool = False) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=quiet, unit="", dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.0f} [{elapsed}<{remaining}]")


def drain_with_bar(gen: Any, desc: str, quiet: bool = False, also: Any = None) -> Any:
    """Run an engine generator to completion, showing its progress on stderr (and passing each event to
    `also`, when given)."""
    bar = None

    def show(ev: Progress) -> None:
        nonlocal bar
        if also is not None:
            also(ev)
        if bar is None:
            bar = _bar(ev.total, desc, quiet)
        bar.n = ev.done
        bar.set_postfix_str(ev.message[-60:], refresh=False)
        bar.refresh()

    try:
        return drain(gen, show)
    finally:
        if bar is not None:
            bar.close()


# --- subcommands -----------------------------------------------------------------------------------


def _check_device(args: argparse.Namespace) -> None:
    """Refuse an impossible --device/--precision pair before any file is touched."""
    from denoiser.device import resolve_device, resolve_precision

    try:
        resolve_precision(args.precision, resolve_device(args.device))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _check_output_name(inputs: Sequence[str], output: str) -> None:
    """One input file and an output like `result.txt`: refuse it rather than make a folder of that name."""
    from denoiser.imageio import output_format_for

    out = Path(output)
    if len(inputs) != 1 or not Path(inputs[0]).is_file() or output.endswith(("/", os.sep)) or out.exists():
        return
    from denoiser.imageio import RAW_EXTENSIONS

    if out.suffix.lower() == ".dng" and Path(inputs[0]).suffix.lower() in RAW_EXTENSIONS:
        return  # a camera RAW denoised to a DNG
    if out.suffix and not out.suffix[1:].isdigit():
        try:
            output_format_for(out)
        except ValueError as exc:
            raise UsageError(f"-o {output}: {exc}; to write into a folder of that name, end it with /") from None


def cmd_denoise(args: argparse.Namespace) -> int:
    from denoiser.batch import BatchOptions, check_options, run_batch

    _check_device(args)
    _check_output_name(args.inputs, args.output)

    opts = BatchOptions(
        output=Path(args.output),
        model=args.model,
        raw_model=args.raw_model,
        sigma=args.sigma,
        strength=args.strength,
        luma_strength=args.luma_strength,
        chroma_strength=args.chroma_strength,
        detail=args.detail,
        grain=args.grain,
        grain_size=args.grain_size,
        grain_seed=args.grain_seed,
        tile=args.tile,
        device=args.device,
        precision=args.precision,
        ensemble=args.ensemble,
        keep_clipped=not args.denoise_clipped,
        clip_to_input=not args.no_clip,
        recursive=args.recursive,
        suffix=args.suffix,
        format=args.format,
        bit_depth=args.bit_depth,
        quality=args.quality,
        overwrite=args.overwrite,
    )
    try:
        check_options(opts)
    except (ValueError, DenoiserError) as exc:
        raise UsageError(str(exc)) from None
    if args.ray is None and (args.ray_workers is not None or args.ray_gpus_per_worker):
        raise UsageError("--ray-workers and --ray-gpus-per-worker need --ray")
    if args.ray is not None:
        from denoiser.cluster import RayTarget, import_ray, run_batch_ray

        target = RayTarget(args.ray, args.ray_workers, args.ray_gpus_per_worker)
        try:
            target.check()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        import_ray()  # says how to install it before any work starts
        gen = run_batch_ray(args.inputs, opts, target)
    else:
        gen = run_batch(args.inputs, opts)
    finished: list = []
    try:
        summary = drain_with_bar(gen, "denoise", args.quiet,
                                 also=lambda ev: finished.append(ev.data["result"]) if "result" in ev.data else None)
    except KeyboardInterrupt:
        done = sum(r.status == "done" for r in finished)
        print(f"\ninterrupted after {len(finished)} files ({done} done); no partial file was left behind",
              file=sys.stderr)
        return 130
    for r in summary.results:
        if r.status == "done":
            print(f"{r.input} -> {r.output}  (σ={r.sigma:.1f}, {r.seconds:.1f} s)")
        elif r.status == "skipped":
            print(f"{r.input}: skipped, {r.reason}")
    print(summary.text(), file=sys.stderr)
    if not summary.results:
        print("no input images found", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_FAILED if summary.failed else EXIT_OK


def cmd_add_noise(args: argparse.Namespace) -> int:
    from denoiser.batch import BatchOptions, plan_batch
    from denoiser.imageio import load_image, save_image
    from denoiser.noise import add_noise, get_noise_model

    model = get_noise_model(args.noise)
    params = {p.name: getattr(args, p.name, None) for p in model.params}
    try:
        model.resolve(params)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _check_output_name(args.inputs, args.output)
    # The same output layout as `denoise`: the tree mirrored, clashing names and the output folder caught.
    try:
        plan = plan_batch(args.inputs, BatchOptions(output=Path(args.output), recursive=args.recursive,
                                                    suffix=args.suffix, format=args.format))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    failed = 0
    for i, (f, dst, problem) in enumerate(plan):
        try:
            if problem or dst is None:
                raise DenoiserError(problem)
            if dst.exists() and dst.resolve() == f.resolve():
                raise DenoiserError("the output would overwrite the input")
            if dst.exists() and not args.overwrite:
                print(f"{f}: skipped, {dst} exists (use --overwrite)", file=sys.stderr)
                continue
            img = load_image(f)
            seed = args.seed + i if args.seed is not None else None
            noisy = add_noise(img.data, args.noise, seed=seed, clip=True, **params)
            try:
                save_image(img.with_data(noisy), dst, bit_depth=8 if args.quantize else None, overwrite=args.overwrite)
            except OutputExistsError:
                print(f"{f}: skipped, {dst} appeared during the run (use --overwrite)", file=sys.stderr)
                continue
            print(f"{f} -> {dst}")
        except (DenoiserError, OSError, ValueError) as exc:
            failed += 1
            print(f"failed: {f}: {exc}", file=sys.stderr)
    if not plan:
        print("no input images found", file=sys.stderr)
    return EXIT_FAILED if failed or not plan else EXIT_OK


def cmd_estimate(args: argparse.Namespace) -> int:
    from denoiser.data import find_images
    from denoiser.estimate import estimate_sigma
    from denoiser.imageio import load_image

    failed = 0
    files = []
    for item in args.inputs:  # folders give their images, as in denoise and add-noise
        p = Path(item)
        files += find_images([p], args.recursive) if p.is_dir() else [p]
    for f in files:
        try:
            img = load_image(f)
            print(f"{f}\t{estimate_sigma(img.data, args.method):.2f}")
        except DenoiserError as exc:
            failed += 1
            print(f"failed: {exc}", file=sys.stderr)
    if not files:
        print("no input images found", file=sys.stderr)
    return EXIT_FAILED if failed or not files else EXIT_OK


def cmd_eval(args: argparse.Namespace) -> int:
    from denoiser.checkpoint import load_model
    from denoiser.data import find_images
    from denoiser.device import resolve_device, resolve_precision
    from denoiser.evaluate import evaluate_set
    from denoiser.imageio import load_image
    from denoiser.inference import denoise

    _check_device(args)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)  # the one that runs, named with the figures
    files = find_images([args.clean_dir], recursive=False)
    if not files:
        print(f"no images in {args.clean_dir}", file=sys.stderr)
        return EXIT_FAILED
    gray = False
    if not args.color:
        for f in files:
            try:
                gray = load_image(f).channels == 1
                break
            except DenoiserError:
                continue
    try:
        loaded = load_model(args.model, 1 if gray else 3)
    except (ModelNotFoundError, CheckpointError) as exc:  # a model that cannot be used is a usage error, as in denoise
        raise UsageError(str(exc)) from None
    skipped: list[str] = []

    def note_skip(ev: Progress) -> None:
        if "skipped" in ev.data:
            skipped.append(f"{ev.data['skipped']}: {ev.data['reason']}")

    def run(noisy: Any, sigma: float | None) -> Any:
        return denoise(noisy, loaded, sigma=sigma, tile=args.tile, device=device, precision=precision,
                       ensemble=args.ensemble).image

    rows = drain_with_bar(
        evaluate_set(args.clean_dir, run, args.sigma, gray=gray, blind=args.blind, clip=args.clip, limit=args.limit),
        "eval",
        args.quiet,
        also=note_skip,
    )
    for line in skipped:
        print(f"skipped (left out of the means): {line}", file=sys.stderr)
    if args.json:
        print(json.dumps({"model": str(loaded.info.path), "set": str(args.clean_dir), "blind": args.blind,
                          "clip": args.clip, "ensemble": args.ensemble, "device": str(device), "precision": precision,
                          "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        print(f"{'σ':>5} {'noisy PSNR':>11} {'noisy SSIM':>11} {'PSNR':>8} {'SSIM':>8}  ({rows[0].images} images, "
              f"model {loaded.info.name}, {device.type} {precision}{', blind' if args.blind else ''}"
              f"{f', {args.ensemble} passes' if args.ensemble > 1 else ''})")
        for r in rows:
            print(f"{r.sigma:5g} {r.noisy_psnr:11.2f} {r.noisy_ssim:11.4f} {r.psnr:8.2f} {r.ssim:8.4f}")
    return EXIT_FAILED if skipped else EXIT_OK


def cmd_models(args: argparse.Namespace) -> int:
    from denoiser.archs import build_arch
    from denoiser.checkpoint import scan_models, user_models_dir

    models, broken = scan_models()
    if args.json:
        print(json.dumps([{"name": m.name, "source": m.source, "path": str(m.path), "arch": m.arch,
                           "arch_config": m.arch_config, "size_mb": round(m.size_mb, 2), "training": m.training,
                           "metrics": {k: v for k, v in m.metrics.items() if k != "history"}} for m in models]
                         + [{"name": f.stem, "path": str(f), "broken": reason} for f, reason in broken], indent=2))
        return EXIT_OK
    print(f"{'name':<22} {'source':<8} {'arch':<8} {'ch':>2} {'params':>8} {'MB':>6} {'steps':>7} {'val PSNR':>8}  description")
    for m in models:
        try:
            params = build_arch(m.arch, **m.arch_config).parameter_count()
        except ValueError:
            params = 0
        val = m.metrics.get("val_psnr")
        print(f"{m.name:<22} {m.source:<8} {m.arch:<8} {m.in_channels:>2} {params / 1e6:>7.2f}M {m.size_mb:>6.1f} "
              f"{m.training.get('steps', '-')!s:>7} {val if val is None else f'{val:.2f}'!s:>8}  {m.description}")
    for f, reason in broken:
        print(f"{f.stem:<22} BROKEN   {f}: {reason}")
    print(f"\nuser models folder: {user_models_dir()} (override with $DENOISER_MODELS_DIR)")
    return EXIT_OK


# train's options that are not `TrainConfig` fields of the same name: their place in the config
_TRAIN_KEYS = {"noise": "noise.name", "jpeg_range": "noise.jpeg_quality", "loss": "loss.reconstruction",
               **{n: f"noise.{n}" for n in (
                   "sigma_range", "sigma_power", "level_range", "clip_prob", "jpeg_prob", "sigma_map", "val_sigma",
                   "clean_prob", "exposure_prob", "exposure_range", "blur_prob", "blur_range", "white_prob",
                   "white_range", "sharpen_prob", "sharpen_range", "chroma_nr_prob", "chroma_nr_range",
                   "develop_prob", "develop_range", "wb_prob", "wb_range")},
               **{n: f"loss.{n}" for n in ("robustness_lambda", "sparsity_beta", "sparsity_rho")}}


def _train_config(args: argparse.Namespace) -> Any:
    """The run's TrainConfig: the command line's options over --config's recipe over the defaults."""
    from denoiser.losses import LossConfig
    from denoiser.recipe import merge_recipe, read_recipe
    from denoiser.train import NoiseConfig, TrainConfig

    noise = NoiseConfig(name=args.noise, jpeg_quality=args.jpeg_range, **{
        k: getattr(args, k) for k, v in _TRAIN_KEYS.items() if v.startswith("noise.") and k not in ("noise", "jpeg_range")})
    loss = LossConfig(args.loss, args.robustness_lambda, args.sparsity_beta, args.sparsity_rho)
    flags = TrainConfig(
        data=args.data or [], out=args.out or "", real_data=args.real_data, real_share=args.real_share,
        arch=args.arch, arch_config=_parse_json_object(args.arch_config, "--arch-config") if args.arch_config else {},
        channels=args.channels, noise=noise, loss=loss, patch=args.patch, batch=args.batch, steps=args.steps,
        lr=args.lr, device=args.device, precision=args.precision, seed=args.seed, val_fraction=args.val_fraction,
        val_every=args.val_every, checkpoint_every=args.checkpoint_every, warmup=args.warmup, minutes=args.minutes,
        base=args.base, resume=args.resume, threads=args.threads, workers=args.workers, description=args.description,
    ).to_dict()
    given = {_TRAIN_KEYS.get(d, d) for d in getattr(args, "given", set(vars(args)))}
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
    _check_train_arch(cfg)
    return cfg


def cmd_train(args: argparse.Namespace) -> int:
    from denoiser.distributed import from_environment
    from denoiser.train import state_path, train

    cfg = _train_config(args)
    if not cfg.resume and not args.overwrite and (Path(cfg.out).exists() or state_path(cfg.out).exists()):
        raise UsageError(f"{cfg.out} already exists: choose another --out, --resume {state_path(cfg.out)}, "
                         "or --overwrite")

    def show(ev: Progress) -> None:
        d = ev.data
        print(f"{ev.message}  {d.get('images_per_s', 0):.1f} img/s  ETA {d.get('eta_s', 0) / 60:.1f} min",
              file=sys.stderr, flush=True)

    main_rank = from_environment().is_main  # under torchrun, rank 0 speaks for all
    try:
        out = drain(train(cfg), show)
    except KeyboardInterrupt:
        if main_rank:
            print(f"stopped; best checkpoint kept at {cfg.out}, resume with --resume {state_path(cfg.out)}",
                  file=sys.stderr)
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


_share = _float_in(0.0, 1.0, "expected a number from 0 to 1, not '{text}'",
                  "expected a number from 0 to 1, not '{text}'")  # a share in [0, 1] (argparse type)


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, not '{text}'") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, not '{text}'")
        return value

    return parse


def _tile(text: str) -> int:
    """--tile: an edge in pixels no smaller than the tiler's minimum (named in the message)."""
    from denoiser.inference import check_tile

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of pixels, not '{text}'") from None
    try:
        check_tile(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--tile ")) from None
    return value


def cmd_finetune(args: argparse.Namespace) -> int:
    from denoiser.distributed import from_environment
    from denoiser.finetune import FinetuneConfig, estimate_memory_mb, finetune, output_path
    from denoiser.train import state_path

    if not 0 <= args.val_fraction < 1:
        raise UsageError("--val-fraction must be within [0, 1)")
    if args.sigma_range is not None and not 0 <= args.sigma_range[0] <= args.sigma_range[1] <= 255:
        raise UsageError("--sigma-range must be LO,HI with 0 ≤ LO ≤ HI ≤ 255")
    try:
        out = output_path(args.output)
    except DenoiserError as exc:
        raise UsageError(str(exc)) from None
    if (out.exists() or state_path(out).exists()) and not (args.overwrite or args.resume):
        raise UsageError(f"{out} already exists: choose another -o, --resume {state_path(out)}, or --overwrite")
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

    def show(ev: Progress) -> None:
        if main_rank and not args.quiet and ev.total > 0:
            eta = ev.data.get("eta_s", 0.0)
            eta_text = f"  ETA {eta / 60:.1f} min" if eta != float("inf") else ""
            print(f"{ev.message}{eta_text}", file=sys.stderr, flush=True)

    try:
        result = drain(finetune(cfg), show)
    except KeyboardInterrupt:
        if main_rank:
            print(f"stopped; the best checkpoint so far is kept at {out}; continue with --resume {state_path(out)}",
                  file=sys.stderr)
        return EXIT_FAILED
    if main_rank:
        print(f"saved {result.path} ({result.steps} steps)")
        print(result.verdict())
    return EXIT_OK


def cmd_lab(args: argparse.Namespace) -> int:
    from denoiser.lab.runner import config_from_args, run_lab, summary

    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = drain_with_bar(run_lab(cfg), "lab", args.quiet)
    print(summary(result))
    return EXIT_OK


# --- parser --------------------------------------------------------------------------------------------


def _add_ensemble_arg(parser: argparse.ArgumentParser) -> None:
    """--ensemble N: the self-ensemble size, shared by denoise and eval."""
    from denoiser.ensemble import ENSEMBLE_SIZES

    parser.add_argument("--ensemble", type=int, default=1, choices=ENSEMBLE_SIZES, metavar="N",
                        help="average N flipped/turned passes (1, 2, 4 or 8): N times slower and a little "
                             "cleaner, most at 8 (measured in docs/bench/quality.md; default 1)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    from denoiser.noise import NOISE_MODELS

    p = argparse.ArgumentParser(prog="denoiser", description="Denoise photographs with a convolutional denoising autoencoder.")
    p.add_argument("--version", action="version", version="denoiser-studio 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("denoise", help="denoise images or folders", description="Denoise images; outputs never replace inputs.")
    d.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    d.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output folder (or file, for one input file)")
    d.add_argument("--sigma", type=_sigma_arg, default=None, metavar="auto|N", help="noise level 0–255, or auto (default: auto)")
    d.add_argument("--model", default="default", help="bundled/user model name or checkpoint path (default: photo)")
    d.add_argument("--raw-model", default="raw", metavar="MODEL",
                   help="the 4-plane model that denoises camera RAW files in the raw domain (default: raw)")
    d.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    d.add_argument("--tile", type=_tile, default=None,
                   help="tile edge in pixels, at least 128 (default: from free memory)")
    d.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto = fp16 on CUDA, bf16 on CPUs with native bf16, else fp32")
    _add_ensemble_arg(d)
    d.add_argument("--strength", type=_strength_arg, default=1.0, help="0 = original, 1 = fully denoised (default 1)")
    d.add_argument("--luma-strength", type=_unit_share("--luma-strength"), default=1.0, metavar="F",
                   help="share of the luminance (grain) change kept, 0–1: lower keeps some grain (default 1)")
    d.add_argument("--chroma-strength", type=_unit_share("--chroma-strength"), default=1.0, metavar="F",
                   help="share of the colour-noise change kept, 0–1 (default 1); --strength scales both")
    d.add_argument("--detail", type=_unit_share("--detail"), default=0.0, metavar="F",
                   help="give back the share F of the texture in what was removed (residual energy above the "
                        "noise level), before any grain (default 0)")
    d.add_argument("--grain", type=_unit_share("--grain"), default=0.0, metavar="F",
                   help="add fresh, luminance-only grain at F × the rms of the noise removed (default 0)")
    d.add_argument("--grain-size", type=_grain_size, default=1.0, metavar="PX",
                   help="grain radius in pixels, 0.5–8: 1 is fine, larger is coarser (default 1)")
    d.add_argument("--grain-seed", type=int, default=0, metavar="N", help="image i's grain uses N + i (default 0)")
    d.add_argument("--denoise-clipped", action="store_true",
                   help="also denoise regions clipped to black or white (by default a pixel whose whole 5×5 "
                        "neighbourhood in a channel is clipped keeps its value, so blown highlights stay blown)")
    d.add_argument("--no-clip", action="store_true",
                   help="let a float (32-bit) image's result leave the input's range (by default it is clipped "
                        "to it, at least 0–1)")
    d.add_argument("--recursive", action="store_true", help="descend into sub-folders (the output mirrors the tree)")
    d.add_argument("--suffix", default="", help="appended to output file names, e.g. _denoised")
    d.add_argument("--format", default="same", choices=["same", "png", "tiff", "jpeg", "webp", "dng"],
                   help="output format; same keeps each file's own, and a camera RAW (.cr2, .nef, .arw, .dng, …) "
                        "is denoised in the raw domain and written as a DNG; tiff (or png) writes a RAW's "
                        "denoised develop at 16 bits")
    d.add_argument("--bit-depth", type=int, choices=[8, 16, 32], default=None, help="default: same as the input")
    d.add_argument("--quality", type=int, default=95, help="JPEG/WebP quality (default 95)")
    d.add_argument("--overwrite", action="store_true", help="replace outputs that exist (inputs are never replaced)")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.add_argument("--ray", nargs="?", const="auto", default=None, metavar="auto|local|ADDRESS",
                   help="denoise the files on a Ray cluster: auto joins the running one, local starts one on this "
                        "machine, an address joins that (inputs and outputs must be on a filesystem every worker reaches)")
    d.add_argument("--ray-workers", type=int, default=None, metavar="N",
                   help="Ray workers, each loading the model once (default: one per CPU, or per GPU share)")
    d.add_argument("--ray-gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="GPUs (or a share of one) each Ray worker takes (default 0: CPU workers)")
    d.set_defaults(func=cmd_denoise)

    a = sub.add_parser("add-noise", help="write noisy copies of images", description="Write noisy copies, clipped and rounded like a real photo.")
    a.add_argument("inputs", nargs="+", metavar="INPUT")
    a.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output folder (or file, for one input)")
    a.add_argument("--noise", required=True, choices=list(NOISE_MODELS))
    a.add_argument("--sigma", type=float, default=None, help="σ on the 0–255 scale (gaussian, speckle, poisson-gaussian)")
    a.add_argument("--amount", type=float, default=None, help="fraction of pixels hit (salt-pepper, masking)")
    a.add_argument("--peak", type=float, default=None, help="photons at full scale (poisson, poisson-gaussian)")
    a.add_argument("--level", type=float, default=None, help="camera noise level 0–1 (camera)")
    a.add_argument("--jpeg-quality", dest="jpeg_quality", type=int, default=None, help="camera JPEG quality, 0 = none")
    a.add_argument("--demosaic", type=int, choices=[0, 1], default=None, help="camera: Bayer mosaic + demosaic (default 1)")
    a.add_argument("--salt-ratio", dest="salt_ratio", type=float, default=None, help="salt-pepper: share of white")
    a.add_argument("--seed", type=int, default=0, help="seed of the first image; image i uses seed+i (default 0)")
    a.add_argument("--format", default="png", choices=["png", "tiff", "webp", "bmp", "jpeg"], help="output format (default png)")
    a.add_argument("--suffix", default="", help="appended to output file names")
    a.add_argument("--no-quantize", dest="quantize", action="store_false", help="keep the input's bit depth instead of 8 bits")
    a.add_argument("--recursive", action="store_true")
    a.add_argument("--overwrite", action="store_true")
    a.set_defaults(func=cmd_add_noise)

    e = sub.add_parser("estimate", help="estimate the noise level of images")
    e.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    e.add_argument("--method", default="immerkaer", choices=["immerkaer", "pca", "mad"])
    e.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    e.set_defaults(func=cmd_estimate)

    v = sub.add_parser("eval", help="PSNR/SSIM of a model on a folder of clean images with seeded Gaussian noise")
    v.add_argument("clean_dir", metavar="CLEAN_DIR")
    v.add_argument("--sigma", type=_sigma_list, default=[15.0, 25.0, 50.0], help="comma-separated σ list (default 15,25,50)")
    v.add_argument("--model", default="gaussian")
    v.add_argument("--blind", action="store_true", help="estimate σ instead of giving the true one")
    v.add_argument("--clip", action="store_true", help="clip and round the noisy input to 8 bits")
    v.add_argument("--color", action="store_true", help="treat the set as colour even if the first image is gray")
    v.add_argument("--limit", type=_positive(int), default=None, help="only the first N images")
    v.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    v.add_argument("--tile", type=_tile, default=None, help="tile edge in pixels, at least 128")
    v.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="auto = fp16 on CUDA, bf16 on CPUs with native bf16, else fp32")
    _add_ensemble_arg(v)
    v.add_argument("--json", action="store_true", help="print JSON")
    v.add_argument("-q", "--quiet", action="store_true")
    v.set_defaults(func=cmd_eval)

    m = sub.add_parser("models", help="list bundled and user models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

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
    t.add_argument("--sigma-map", default="true", choices=["true", "estimate"])
    t.add_argument("--clean-prob", type=_share, default=0.0,
                   help="share of samples left noise-free, so a clean photo is left alone (default 0)")
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
    t.add_argument("--real-data", nargs="+", default=[], metavar="DIR",
                   help="folders of real noisy/ and clean/ pairs; a fixed fifth of their scenes validates")
    t.add_argument("--real-share", type=_share, default=0.25,
                   help="share of each batch drawn from --real-data (default 0.25)")
    t.add_argument("--val-sigma", type=float, default=25.0)
    t.add_argument("--loss", default="l1", choices=["l1", "l2", "charbonnier"])
    t.add_argument("--robustness-lambda", type=float, default=0.0, help="λ of the encoder-robustness term (0 = off)")
    t.add_argument("--sparsity-beta", type=float, default=0.0, help="β of the KL sparsity penalty (0 = off)")
    t.add_argument("--sparsity-rho", type=float, default=0.05)
    t.add_argument("--patch", type=_positive(int), default=96)
    t.add_argument("--batch", type=_positive(int), default=16)
    t.add_argument("--steps", type=_positive(int), default=10000)
    t.add_argument("--lr", type=_positive(float), default=5e-4)
    t.add_argument("--warmup", type=int, default=200, help="linear learning-rate warm-up steps")
    t.add_argument("--minutes", type=_positive(float), default=None,
                   help="stop after this much wall time; the learning rate then anneals over it")
    t.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    t.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: mixed precision on CUDA and on CPUs with native bf16, else fp32")
    t.add_argument("--resume", default=None, metavar="CKPT", help="a *.state.pt written by an earlier run")
    t.add_argument("--base", default=None, help="initialise from this checkpoint")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--val-fraction", type=float, default=0.05)
    t.add_argument("--val-every", type=int, default=500)
    t.add_argument("--checkpoint-every", type=int, default=250)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--workers", type=int, default=None,
                   help="processes making batches (default: none on the CPU, up to 8 beside a GPU)")
    t.add_argument("--description", default="")
    t.set_defaults(func=cmd_train)

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
    f.set_defaults(func=cmd_finetune)

    from denoiser.lab.runner import add_arguments as add_lab_arguments

    lab = sub.add_parser("lab", help="run the autoencoder lab's experiments and write a report",
                         description="Train small autoencoders and measure the identity trap, corruptions, noise level, "
                                     "encoder robustness, sparsity, anomaly detection, compression and generation; "
                                     "writes REPORT.md, results.json, figures and the models (lab-*.pt) to --out.")
    add_lab_arguments(lab)
    lab.set_defaults(func=cmd_lab)
    return p


def _show_warning(message: Warning | str, category: type[Warning], *_args: Any, **_kwargs: Any) -> None:
    """Engine warnings (a broken user model shadowing a bundled one) as one line on stderr."""
    print(f"denoiser: warning: {message}", file=sys.stderr)


def _given_options(argv: Sequence[str] | None) -> set[str]:
    """The option names (argparse dests) the command line set, so a --config recipe fills in the others."""
    quiet = build_parser()
    stack: list[argparse.ArgumentParser] = [quiet]
    while stack:
        p = stack.pop()
        for action in p._actions:
            action.default = argparse.SUPPRESS
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return set(vars(quiet.parse_args(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `denoiser` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    args.given = _given_options(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _show_warning
            return args.func(args)
    except UsageError as exc:
        print(f"denoiser: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted; no partial file was left behind", file=sys.stderr)
        return 130
    except DenoiserError as exc:
        print(f"denoiser: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
