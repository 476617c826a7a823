"""`denoiser eval`: eval: PSNR/SSIM of a model on a folder with seeded noise."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from denoiser.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    _add_ensemble_arg,
    _check_device,
    _positive,
    _sigma_list,
    _tile,
    _warn_emulated_bf16,
    drain_with_bar,
)
from denoiser.errors import CheckpointError, DenoiserError, ModelNotFoundError
from denoiser.progress import Progress


def run(args: argparse.Namespace) -> int:
    from denoiser.checkpoint import load_model
    from denoiser.data import find_images
    from denoiser.device import resolve_device, resolve_precision
    from denoiser.evaluate import evaluate_set
    from denoiser.imageio import load_image
    from denoiser.inference import denoise

    _check_device(args)
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)  # the one that runs, named with the figures
    _warn_emulated_bf16(args.precision, device)
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


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
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
    v.set_defaults(func=run)
