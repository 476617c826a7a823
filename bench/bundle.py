"""Copy a trained checkpoint into resources/models/ as a bundled model (float16 weights, ≤ 20 MB).

    python bench/bundle.py runs/gaussian-color.pt gaussian-color [--description TEXT]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from denoiser.resources import bundled_models_dir  # noqa: E402

MAX_MB = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("name")
    ap.add_argument("--description", default=None)
    args = ap.parse_args()
    m = load_checkpoint(args.checkpoint)
    out = save_checkpoint(bundled_models_dir() / f"{args.name}.pt", m.net, noise=m.info.noise,
                          training=m.info.training, metrics=m.info.metrics,
                          description=args.description or m.info.description, half=True)
    size = out.stat().st_size / 1e6
    if size > MAX_MB:
        out.unlink()
        raise SystemExit(f"{out.name} would be {size:.1f} MB, over the {MAX_MB} MB limit")
    print(f"{out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
