"""`denoiser add-noise`: write noisy copies of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from denoiser.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _check_output_name,
)
from denoiser.errors import DenoiserError, OutputExistsError


def run(args: argparse.Namespace) -> int:
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


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
    from denoiser.noise import NOISE_MODELS

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
    a.set_defaults(func=run)
