"""Average the weights of checkpoints of one architecture into a new checkpoint (a "model soup").

    python bench/average_checkpoints.py runs/photo-k.pt stage7.pt -o runs/photo-k-mix.pt

Fine-tunings of one model lie in one basin, so their plain average is a model too, often better than
either and steadier on data neither validated on (the model card says where the bundled `photo`
came from this way). The first checkpoint gives the metadata; its training record lists the sources.

With --validate the average is scored on the first checkpoint's own validation set, rebuilt from the
training config it stores (same data folders, split and seeded noise), so the metrics it carries are
the average's and not the first checkpoint's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from denoiser.data import find_images, find_pairs, split_pairs, split_train_val  # noqa: E402
from denoiser.training.config import TrainConfig  # noqa: E402
from denoiser.training.validation import validate, validation_levels, validation_pairs  # noqa: E402


def revalidate(net: torch.nn.Module, training: dict) -> dict:
    """Metrics of `net` on the validation set of the run whose training record is `training`."""
    if not isinstance(training.get("config"), dict):
        raise SystemExit("--validate: the first checkpoint stores no training config to rebuild its validation from")
    cfg = TrainConfig.from_dict(training["config"])
    missing = [d for d in [*cfg.data, *cfg.real_data] if not Path(d).exists()]
    if missing:
        raise SystemExit(f"--validate: the training data is not here: {', '.join(missing)} (run from where it trained)")
    _, val_files = split_train_val(find_images(cfg.data), cfg.val_fraction, cfg.seed)
    real_val = split_pairs(find_pairs(cfg.real_data))[1] if cfg.real_data else []
    pairs = validation_pairs(val_files, cfg, real_val)
    score = validate(net, pairs, torch.device("cpu"), validation_levels(cfg))
    return {"val_psnr": score, "val_sigma": cfg.noise.val_sigma,
            "note": f"weight average validated on {len(pairs)} crops of its first checkpoint's validation set"}


def average(paths: list[Path], out: Path, rescore: bool = False) -> Path:
    """Write the mean of the checkpoints' weights to `out` with the first one's noise and card, and its
    metrics, or (`rescore`) the average's own on the first one's validation set."""
    models = [load_checkpoint(p) for p in paths]
    first = models[0]
    states = [m.net.float().state_dict() for m in models]
    if any(s.keys() != states[0].keys() or any(s[k].shape != states[0][k].shape for k in s) for s in states):
        raise SystemExit("the checkpoints are not of one architecture")
    net = first.net.float()
    net.load_state_dict({k: torch.stack([s[k].float() for s in states]).mean(0) for k in states[0]})
    training = {**first.info.training, "weight_average_of": [str(p) for p in paths]}
    metrics = revalidate(net, first.info.training) if rescore else first.info.metrics
    return save_checkpoint(out, net, noise=first.info.noise, training=training, metrics=metrics,
                           description=first.info.description)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--validate", action="store_true",
                    help="score the average on the first checkpoint's validation set and store that as its metrics")
    args = ap.parse_args()
    if len(args.checkpoints) < 2:
        raise SystemExit("give two or more checkpoints")
    out = average(args.checkpoints, args.out, args.validate)
    val = load_checkpoint(out).info.metrics.get("val_psnr")
    print(f"wrote {out}" + (f" (validation {val:.3f} dB)" if args.validate and val is not None else ""))


if __name__ == "__main__":
    main()
