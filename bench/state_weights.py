"""Write the weights a training state file holds at its last step as a checkpoint.

    python bench/state_weights.py runs/photo-14k.state.pt -o runs/photo-14k-last.pt

A run saves its best-validated weights as the checkpoint and, beside it, a resumable `*.state.pt`
with the weights of the last step and (with --ema) their moving average. When validation cannot see
what a run teaches (its crops are in colour and the run teaches B&W grain, say), the last step is the
candidate to score, and this makes it one. By default the EMA weights are written (the trained ones
with --trained, or when the run kept no EMA). The checkpoint beside the state file (or --checkpoint)
gives the architecture, noise and card; the EMA list is matched to the parameters the run trained,
so a run with --freeze-encoder (whose EMA covers the decoder alone) reads back correctly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from denoiser.errors import DenoiserError  # noqa: E402
from denoiser.training.config import read_training_state  # noqa: E402
from denoiser.training.trainer import trainable_parameters  # noqa: E402


def checkpoint_beside(state_file: Path) -> Path:
    """`model.state.pt` → `model.pt`, the checkpoint the run wrote next to its state."""
    name = state_file.name
    if not name.endswith(".state.pt"):
        raise DenoiserError(f"'{state_file}' is not named *.state.pt; name its checkpoint with --checkpoint")
    return state_file.with_name(name[: -len(".state.pt")] + ".pt")


def state_weights(state_file: Path, out: Path, checkpoint: Path | None = None, trained: bool = False) -> tuple[Path, int, str]:
    """Write the state's last-step weights (EMA unless `trained`) as a checkpoint at `out`; returns the
    path, the step and which weights ("EMA" or "trained") were written."""
    state = read_training_state(state_file)
    model = load_checkpoint(checkpoint or checkpoint_beside(state_file))
    net = model.net.float()
    net.load_state_dict(state["model"])
    kind = "trained"
    if not trained and state.get("ema"):
        kind = "EMA"
        named = trainable_parameters(net, bool((state["config"] or {}).get("freeze_encoder", False)))
        if len(named) != len(state["ema"]):
            raise DenoiserError(f"'{state_file}' keeps {len(state['ema'])} averaged tensors but the run trained "
                                f"{len(named)}; its checkpoint is not of this run")
        with torch.no_grad():
            for (name, p), t in zip(named, state["ema"], strict=True):
                if p.shape != t.shape:
                    raise DenoiserError(f"'{state_file}': the average of {name} has shape {tuple(t.shape)}, "
                                        f"the model {tuple(p.shape)}")
                p.copy_(t)
    step = int(state["step"])
    training = {**model.info.training, "steps": step, "weights": f"{kind} weights at step {step} of {state_file}"}
    save_checkpoint(out, net, noise=model.info.noise, training=training, metrics={},
                    description=f"{model.info.description} ({kind} weights at step {step})".strip())
    return out, step, kind


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("state", type=Path, help="a *.state.pt written by `denoiser train`")
    ap.add_argument("-o", "--out", type=Path, required=True, help="the checkpoint to write")
    ap.add_argument("--checkpoint", type=Path, help="the run's checkpoint (default: the one beside the state file)")
    ap.add_argument("--trained", action="store_true", help="write the trained weights, not their moving average")
    args = ap.parse_args()
    try:
        checkpoint = args.checkpoint or checkpoint_beside(args.state)
        if args.out.resolve() in {args.state.resolve(), checkpoint.resolve()}:
            raise DenoiserError(f"--out '{args.out}' would overwrite an input; choose another path")
        out, step, kind = state_weights(args.state, args.out, checkpoint, args.trained)
    except DenoiserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}: the {kind} weights at step {step}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
