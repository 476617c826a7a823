"""`denoiser estimate`: estimate the noise level of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from denoiser.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
)
from denoiser.errors import DenoiserError


def run(args: argparse.Namespace) -> int:
    from denoiser.data import find_images
    from denoiser.estimate import estimate_sigma
    from denoiser.imageio import load_image
    from denoiser.noise_level import model_noise_level

    model = None
    if args.model:
        from denoiser.checkpoint import load_model

        try:
            model = load_model(args.model)
        except DenoiserError as exc:
            print(f"estimate: {exc}", file=sys.stderr)
            return EXIT_USAGE
    failed = 0
    files = []
    for item in args.inputs:  # folders give their images, as in denoise and add-noise
        p = Path(item)
        files += find_images([p], args.recursive) if p.is_dir() else [p]
    for f in files:
        try:
            img = load_image(f)
            line = f"{f}\t{estimate_sigma(img.data, args.method):.2f}"
            if model is not None:
                line += f"\t{model_noise_level(img.data, model, device=args.device):.2f}"
            print(line, flush=True)
        except DenoiserError as exc:
            failed += 1
            print(f"failed: {exc}", file=sys.stderr)
    if not files:
        print("no input images found", file=sys.stderr)
    return EXIT_FAILED if failed or not files else EXIT_OK


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
    e = sub.add_parser("estimate", help="estimate the noise level of images")
    e.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    e.add_argument("--method", default="immerkaer", choices=["immerkaer", "pca", "mad"])
    e.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    e.add_argument("--model", default=None, metavar="NAME",
                   help="also print the noise level this model reads: the RMS (0–255) of what it removes from "
                        "the central 512² crop told Auto's σ; camera noise, which the blind σ reads low, shows here")
    e.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where --model runs")
    e.set_defaults(func=run)
