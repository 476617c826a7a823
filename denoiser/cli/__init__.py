"""The `denoiser` command line: thin over the engine, draining its generators with progress bars.

One module per subcommand, each with `add_parser(sub)` and `run(args)`; `common` holds what they share.
Exit codes: 0 ok, 1 some inputs failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from denoiser.cli import add_noise, denoise, estimate, evaluate, finetune, lab, models, train
from denoiser.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, drain_with_bar
from denoiser.errors import DenoiserError

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "UsageError", "build_parser", "drain_with_bar", "main"]

SUBCOMMANDS = (denoise, add_noise, estimate, evaluate, models, train, finetune, lab)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(prog="denoiser", description="Denoise photographs with a convolutional denoising autoencoder.")
    p.add_argument("--version", action="version", version="denoiser-studio 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in SUBCOMMANDS:
        command.add_parser(sub)
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
