"""Denoiser Studio: no arguments (or an image path) start the GUI; a CLI subcommand runs the CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence

CLI_COMMANDS = frozenset({"denoise", "add-noise", "estimate", "eval", "models", "train", "finetune", "lab"})


def main(argv: Sequence[str] | None = None) -> int:
    """Delegate to `denoiser.cli` when the first argument is one of its subcommands, else open the GUI."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and (args[0] in CLI_COMMANDS or args[0] in ("-h", "--help", "--version")):
        from denoiser.cli import main as cli_main

        return cli_main(args)
    from gui.app import main as gui_main

    return gui_main(args)


if __name__ == "__main__":
    sys.exit(main())
