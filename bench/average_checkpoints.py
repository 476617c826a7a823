"""Average the weights of checkpoints of one architecture into a new checkpoint (a "model soup").

    python bench/average_checkpoints.py runs/photo-k.pt stage7.pt -o runs/photo-k-mix.pt

Fine-tunings of one model lie in one basin, so their plain average is a model too, often better than
either and steadier on data neither validated on (the model card says where the bundled `photo`
came from this way). The first checkpoint gives the metadata; its training record lists the sources.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402


def average(paths: list[Path], out: Path) -> Path:
    """Write the mean of the checkpoints' weights to `out` with the first one's noise, card and metrics."""
    models = [load_checkpoint(p) for p in paths]
    first = models[0]
    states = [m.net.float().state_dict() for m in models]
    if any(s.keys() != states[0].keys() or any(s[k].shape != states[0][k].shape for k in s) for s in states):
        raise SystemExit("the checkpoints are not of one architecture")
    net = first.net.float()
    net.load_state_dict({k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]})
    training = {**first.info.training, "weight_average_of": [str(p) for p in paths]}
    return save_checkpoint(out, net, noise=first.info.noise, training=training, metrics=first.info.metrics,
                           description=first.info.description)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    args = ap.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("give two or more checkpoints")
    print(f"wrote {average(args.checkpoints, args.out)}")


if __name__ == "__main__":
    main()
