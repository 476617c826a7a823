"""The autoencoder lab as a benchmark script: the same engine call as `denoiser lab`.

Trains the lab's small conv autoencoders on ../shared/data/train/gray, tests them on ../shared/data/test/BSD68
and writes REPORT.md (expectation, measurement and verdict per experiment), results.json, PNG figures and the
models into the output folder.

    python bench/lab.py --out docs/lab                 # full run (under 30 min on 2 free cores)
    python bench/lab.py --out /tmp/lab --quick         # smoke run (about a minute)
    python bench/lab.py --out /tmp/lab --only 1,6      # some experiments
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.cli import drain_with_bar  # noqa: E402
from denoiser.lab.runner import add_arguments, config_from_args, run_lab, summary  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the lab with a progress bar, print where the report is."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    args = ap.parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ValueError as exc:
        ap.error(str(exc))
    result = drain_with_bar(run_lab(cfg), "lab", args.quiet)
    print(summary(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
