"""The torchrun helpers without a process group: ranks from the environment, shares, refusals."""

import pytest
import torch

from denoiser import distributed
from denoiser.distributed import Ranks
from denoiser.errors import DenoiserError


def test_ranks_come_from_torchrun_variables(monkeypatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.from_environment() == Ranks(0, 1, 0) and not Ranks().parallel
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ranks = distributed.from_environment()
    assert ranks == Ranks(3, 4, 1) and ranks.parallel and not ranks.is_main
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(DenoiserError, match="torchrun environment"):
        distributed.from_environment()


def test_each_rank_takes_its_contiguous_share_and_uneven_batches_are_refused() -> None:
    batch = torch.arange(8).view(8, 1)
    shares = [distributed.share((batch, batch * 10), Ranks(r, 4, r)) for r in range(4)]
    assert torch.equal(torch.cat([s[0] for s in shares]), batch) and torch.equal(shares[2][1], batch[4:6] * 10)
    assert distributed.share((batch,), Ranks())[0] is batch
    with pytest.raises(DenoiserError, match="multiple of 3"):
        distributed.start(Ranks(0, 3, 0), torch.device("cpu"), batch=16)
    assert distributed.agree([1.5], Ranks(), torch.device("cpu")) == [1.5]


def test_a_finished_rank_waits_for_the_others_before_leaving_and_a_failed_one_leaves_at_once(monkeypatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(distributed.torch_dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed.torch_dist, "barrier", lambda: calls.append("barrier"))
    monkeypatch.setattr(distributed.torch_dist, "destroy_process_group", lambda: calls.append("destroy"))
    distributed.stop(Ranks(1, 2, 1), together=True)
    assert calls == ["barrier", "destroy"]
    calls.clear()
    distributed.stop(Ranks(1, 2, 1), together=False)  # rank 0 may have failed: a barrier would never return
    assert calls == ["destroy"]
    calls.clear()
    distributed.stop(Ranks(), together=True)  # one process: there is no group to leave
    assert calls == []


def test_a_torchrun_rank_flushes_and_skips_the_teardown_and_one_process_exits_normally(monkeypatch) -> None:
    exits: list[int] = []

    class Gone(Exception):
        pass

    def hard_exit(code: int) -> None:
        exits.append(code)
        raise Gone  # os._exit never returns

    monkeypatch.setattr(distributed.os, "_exit", hard_exit)
    monkeypatch.setenv("WORLD_SIZE", "2")
    flushed: list[str] = []
    for name in ("stdout", "stderr"):
        monkeypatch.setattr(distributed.sys, name, type(name, (), {"flush": lambda self, n=name: flushed.append(n)})())
    with pytest.raises(Gone):
        distributed.exit_process(3)
    monkeypatch.undo()
    assert exits == [3] and flushed == ["stdout", "stderr"]  # os._exit drops what is still buffered
    monkeypatch.setattr(distributed.os, "_exit", hard_exit)
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(SystemExit) as one:
        distributed.exit_process(2)
    assert one.value.code == 2 and exits == [3]
    monkeypatch.setenv("WORLD_SIZE", "two")  # a broken environment: exit normally rather than fail again
    with pytest.raises(SystemExit):
        distributed.exit_process(1)
