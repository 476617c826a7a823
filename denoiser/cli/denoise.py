"""`denoiser denoise`: denoise images or folders (a batch, locally or on Ray)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from denoiser.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _add_ensemble_arg,
    _check_device,
    _check_output_name,
    _grain_size,
    _sigma_arg,
    _strength_arg,
    _tile,
    _unit_share,
    _warn_emulated_bf16,
    drain_with_bar,
)
from denoiser.errors import DenoiserError


def run(args: argparse.Namespace) -> int:
    from denoiser.batch import BatchOptions, check_options, run_batch

    _check_device(args)
    _check_output_name(args.inputs, args.output)
    _warn_emulated_bf16(args.precision, args.device)

    opts = BatchOptions(
        output=Path(args.output),
        model=args.model,
        raw_model=args.raw_model,
        raw_pipeline=args.raw_pipeline,
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


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
    d = sub.add_parser("denoise", help="denoise images or folders", description="Denoise images; outputs never replace inputs.")
    d.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    d.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="output folder (or file, for one input file)")
    d.add_argument("--sigma", type=_sigma_arg, default=None, metavar="auto|N", help="noise level 0–255, or auto (default: auto)")
    d.add_argument("--model", default="default", help="bundled/user model name or checkpoint path (default: photo)")
    d.add_argument("--raw-model", default="raw", metavar="MODEL",
                   help="the 4-plane model that denoises camera RAW files in the raw domain (default: raw)")
    d.add_argument("--raw-pipeline", default="auto", choices=["auto", "mosaic", "develop"],
                   help="how a camera RAW is denoised: mosaic = the raw model on the sensor mosaic, then LibRaw's "
                        "develop (the only way to a DNG); develop = LibRaw's develop, then --model, as any photo; "
                        "auto (default) = mosaic for a DNG, develop for tiff/png/jpeg, where it measures "
                        "1.5–2.2 dB better (README, camera-RAW table)")
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
                        "denoised develop at 16 bits (see --raw-pipeline)")
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
    d.set_defaults(func=run)
