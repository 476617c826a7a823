"""Data-parallel training across processes started by `torchrun` (gloo on the CPU, NCCL on GPUs).

`torchrun --standalone --nproc-per-node N -m denoiser train ...` starts N copies of the command with
RANK, WORLD_SIZE and LOCAL_RANK set. Every rank makes the same step batch from the `(seed, step)`
scheme and trains on its own contiguous share of it; the gradients are averaged over the ranks before
the optimiser step, so N processes take exactly the step one process takes on the whole batch
(within float rounding) and a run can resume with a different N. Only rank 0 validates, reports and
writes checkpoints and states. Without those variables nothing here does anything.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

from denoiser.errors import DenoiserError


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that validates, reports and saves."""
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world > 1


def from_environment() -> Ranks:
    """The ranks torchrun set in the environment (one process when it did not)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise DenoiserError(f"bad torchrun environment (RANK/WORLD_SIZE/LOCAL_RANK): {exc}") from None
    return Ranks(rank, world, local)


def start(ranks: Ranks, device: torch.device, batch: int) -> torch.device:
    """Join the process group (once per process) and return the device this rank trains on."""
    if not ranks.parallel:
        return device
    if batch % ranks.world:
        raise DenoiserError(f"--batch {batch} does not split evenly over {ranks.world} processes: "
                            f"use a multiple of {ranks.world}")
    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
        device = torch.device("cuda", ranks.local_rank)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop(ranks: Ranks, *, together: bool) -> None:
    """Leave the process group.

    `together` is for a run that ended normally on this rank, so every rank reaches this call: the ranks
    first wait for each other at a barrier. Without it a rank that finished its last step tears gloo down
    and exits while rank 0 is still validating and saving, and its gloo threads abort the process
    ("terminate called without an active exception"), which makes torchrun stop rank 0 mid-save. After an
    error or a cancel the other ranks may never arrive, so then this rank leaves at once."""
    if ranks.parallel and torch_dist.is_initialized():
        if together:
            torch_dist.barrier()
        torch_dist.destroy_process_group()


def exit_process(code: int) -> None:
    """End this process with `code`; a torchrun rank skips the interpreter's teardown.

    After `stop` the gloo process group is gone from Python, but its C++ threads are torn down only in
    the interpreter's finalisation, and there they sometimes abort the process ("terminate called
    without an active exception", no Python frame; one run in five to fifteen on a loaded 2-core machine),
    which torchrun reports as a failed run although every output was written. A rank therefore flushes
    its streams and leaves with `os._exit`; a single process exits normally."""
    try:
        parallel = from_environment().parallel
    except DenoiserError:
        parallel = False
    if parallel:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def share(tensors: tuple[torch.Tensor, ...], ranks: Ranks) -> tuple[torch.Tensor, ...]:
    """This rank's contiguous share of each batch tensor (dimension 0)."""
    if not ranks.parallel:
        return tensors
    n = tensors[0].shape[0] // ranks.world
    return tuple(t[ranks.rank * n : (ranks.rank + 1) * n] for t in tensors)


def average_gradients(params: list[torch.nn.Parameter], ranks: Ranks) -> None:
    """Average the gradients over the ranks in one all-reduce, as DistributedDataParallel does."""
    if not ranks.parallel:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch_dist.all_reduce(flat)
    flat /= ranks.world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def agree(values: list[float], ranks: Ranks, device: torch.device) -> list[float]:
    """The largest of each value over the ranks (the elapsed time, a stop flag), so all ranks follow one
    schedule and stop at the same step."""
    if not ranks.parallel:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.MAX)
    return t.tolist()


def mean(value: float, ranks: Ranks, device: torch.device) -> float:
    """The mean of a per-rank value (each rank's loss on its share: the whole batch's loss)."""
    if not ranks.parallel:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    torch_dist.all_reduce(t)
    return float(t) / ranks.world
