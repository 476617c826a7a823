"""`denoiser lab`: the autoencoder lab's experiments."""

from __future__ import annotations

import argparse
from typing import Any

from denoiser.cli.common import (
    EXIT_OK,
    UsageError,
    drain_with_bar,
)


def run(args: argparse.Namespace) -> int:
    from denoiser.lab.runner import config_from_args, run_lab, summary

    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    result = drain_with_bar(run_lab(cfg), "lab", args.quiet)
    print(summary(result))
    return EXIT_OK


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
    from denoiser.lab.runner import add_arguments as add_lab_arguments

    lab = sub.add_parser("lab", help="run the autoencoder lab's experiments and write a report",
                         description="Train small autoencoders and measure the identity trap, corruptions, noise level, "
                                     "encoder robustness, sparsity, anomaly detection, compression and generation; "
                                     "writes REPORT.md, results.json, figures and the models (lab-*.pt) to --out.")
    add_lab_arguments(lab)
    lab.set_defaults(func=run)
