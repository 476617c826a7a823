"""Batch denoising on a Ray cluster: the plan, outputs, summary and exit code of `run_batch`, with each
file denoised by a Ray actor that loads its model once.

Inputs and outputs are paths, so every worker must reach them (a shared filesystem). Outputs are written
by the workers with the same atomic, no-clobber writer as a local run, so a worker that dies mid-file
leaves no partial output; its file is given to a fresh worker once, then reported as failed. Closing the
generator (Ctrl-C in the CLI) cancels what is running and keeps what finished.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from denoiser.batch import BatchOptions, BatchSummary, FileResult, denoise_file, plan_batch
from denoiser.checkpoint import LoadedModel
from denoiser.errors import DenoiserError
from denoiser.progress import Progress, ProgressGen, drain

RAY_MISSING = "--ray needs Ray, an optional extra: pip install -e \".[cluster]\" (or pip install ray)"
ATTEMPTS = 2  # a file whose worker dies is given to a fresh worker once


@dataclass(frozen=True)
class RayTarget:
    """Which cluster and how many workers: `address` is `auto` (the running cluster), `local` (start one on
    this machine for the run) or a cluster address; `workers` None = as many as the cluster has room for."""

    address: str = "auto"
    workers: int | None = None
    gpus_per_worker: float = 0.0

    def check(self) -> None:
        """Raise ValueError for a worker count or GPU share that no cluster can meet."""
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"--ray-workers must be at least 1, not {self.workers}")
        if self.gpus_per_worker < 0:
            raise ValueError(f"--ray-gpus-per-worker must be 0 or more, not {self.gpus_per_worker}")


class FileWorker:
    """What one Ray actor runs: the batch's per-file work, with the models it loaded kept between files."""

    def __init__(self, opts: BatchOptions) -> None:
        import torch

        self.opts = opts
        self.models: dict[Path, LoadedModel] = {}
        torch.set_num_threads(max(1, int(os.environ.get("OMP_NUM_THREADS", "1"))))

    def run(self, src: Path, dst: Path | None, problem: str, index: int) -> FileResult:
        """Denoise one planned file and say what happened (never raises for a bad file)."""
        return drain(denoise_file(src, dst, problem, self.opts, index, self.models))


def import_ray() -> Any:
    """The `ray` module, or a DenoiserError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise DenoiserError(RAY_MISSING) from None
    return ray


def connect(ray: Any, address: str) -> bool:
    """Join (or start, for `local`) the cluster unless this process is already connected; True when this
    call connected, so the caller disconnects at the end."""
    if ray.is_initialized():
        return False
    try:
        if address == "local":
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        hint = " (start one with `ray start --head`, or use --ray local)" if address == "auto" else ""
        raise DenoiserError(f"cannot reach the Ray cluster at '{address}': {exc}{hint}") from None
    return True


def worker_count(ray: Any, target: RayTarget, files: int) -> int:
    """The asked-for count, or one worker per CPU (per GPU share when workers take GPUs), never more than
    there are files."""
    if target.workers is not None:
        n = target.workers
    else:
        resources = ray.cluster_resources()
        if target.gpus_per_worker > 0:
            n = int(resources.get("GPU", 0) / target.gpus_per_worker)
            if n < 1:
                raise DenoiserError(f"the Ray cluster has {resources.get('GPU', 0):g} GPUs; "
                                    f"a worker needs {target.gpus_per_worker:g}")
        else:
            n = int(resources.get("CPU", 1))
    return max(1, min(n, files))


def run_batch_ray(inputs: Sequence[str | Path], opts: BatchOptions, target: RayTarget,
                  worker_class: type = FileWorker) -> ProgressGen[BatchSummary]:
    """Denoise every input on the cluster; yields one event per finished file (results in input order).

    `worker_class` is the actor's class (FileWorker; tests hand a subclass that dies on purpose)."""
    target.check()
    plan = plan_batch(inputs, opts)
    ray = import_ray()
    results: dict[int, FileResult] = {}
    total = len(plan)
    todo = []
    for i, (src, dst, problem) in enumerate(plan):
        if problem or dst is None:  # failed at planning: no worker needed
            results[i] = drain(denoise_file(src, dst, problem, opts, i, {}))
        else:
            todo.append(i)
    for i in sorted(results):
        yield _event(len(results), total, results[i])
    if not todo:
        return BatchSummary([results[i] for i in range(total)])

    started = connect(ray, target.address)
    actor = ray.remote(worker_class).options(num_cpus=1, num_gpus=target.gpus_per_worker, max_restarts=0)
    idle = [actor.remote(opts) for _ in range(worker_count(ray, target, len(todo)))]
    running: dict[Any, tuple[int, Any]] = {}  # call → (plan index, its actor)
    attempts = dict.fromkeys(todo, 0)
    queue = list(reversed(todo))
    try:
        while queue or running:
            while queue and idle:
                i = queue.pop()
                worker = idle.pop()
                src, dst, problem = plan[i]
                attempts[i] += 1
                running[worker.run.remote(src, dst, problem, i)] = (i, worker)
            ready, _ = ray.wait(list(running), num_returns=1)
            i, worker = running.pop(ready[0])
            try:
                results[i] = ray.get(ready[0])
                idle.append(worker)
            except ray.exceptions.RayActorError as exc:
                ray.kill(worker)
                idle.append(actor.remote(opts))
                if attempts[i] < ATTEMPTS:
                    queue.append(i)
                    continue
                src, dst, _ = plan[i]
                results[i] = FileResult(src, dst, "failed", f"its Ray worker died twice ({type(exc).__name__})")
            yield _event(len(results), total, results[i])
    finally:  # killing the actors stops their files mid-way; the atomic writer leaves nothing of them
        for worker in idle + [w for _, w in running.values()]:
            ray.kill(worker)
        if started:
            ray.shutdown()
    return BatchSummary([results[i] for i in range(total)])


def _event(done: int, total: int, result: FileResult) -> Progress:
    return Progress(done, total, f"{result.input.name}: {result.status}",
                    {"file": str(result.input), "result": result})
