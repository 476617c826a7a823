"""`denoiser models`: list bundled and user models."""

from __future__ import annotations

import argparse
import json
from typing import Any

from denoiser.cli.common import (
    EXIT_OK,
)


def run(args: argparse.Namespace) -> int:
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


def add_parser(sub: Any) -> None:
    """Add the subcommand to `sub`, the subparsers of `denoiser`."""
    m = sub.add_parser("models", help="list bundled and user models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=run)
