"""`denoiser estimate`: estimate the noise level of images."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from denoiser.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
)
from denoiser.errors import DenoiserError


def run(args: argparse.Namespace) -> int:
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


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
    e = sub.add_parser("estimate", help="estimate the noise level of images")
    e.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    e.add_argument("--method", default="immerkaer", choices=["immerkaer", "pca", "mad"])
    e.add_argument("--recursive", action="store_true", help="descend into sub-folders")
    e.set_defaults(func=run)
