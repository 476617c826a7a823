"""The one training loop on its own: cadence, best-model saves, time budget, cancel and resume."""

from pathlib import Path

import pytest
import torch

from denoiser.archs import build_arch
from denoiser.progress import drain
from denoiser.training import Trainer, TrainProgress, Validation, adam_for
from denoiser.training.trainer import Cadence, StepLoss


def _batches(seed: int):
    gen = torch.Generator().manual_seed(seed)
    while True:
        clean = torch.rand(2, 1, 16, 16, generator=gen)
        yield clean + 0.1 * torch.randn(clean.shape, generator=gen), clean


def _trainer(tmp_path: Path, steps: int, scores: list[float] | None = None, **kw) -> tuple[Trainer, list]:
    torch.manual_seed(0)
    net = build_arch("conv-ae", in_channels=1, width=4, code_channels=4)
    params, opt = adam_for(net, 1e-2, False)
    saved: list[tuple[int, float | None]] = []
    it = iter(scores or [])

    def save_best(v: Validation | None) -> None:
        saved.append((trainer.step, None if v is None else v.score))
        (tmp_path / "best.pt").write_bytes(b"x")

    trainer = Trainer(net, params, opt, steps=steps, batch=2, schedule=lambda step, t: 1e-2, device=torch.device("cpu"),
                      validate=(lambda: Validation(next(it))) if scores is not None else None, save_best=save_best,
                      out=tmp_path / "best.pt", state_file=tmp_path / "s.state.pt",
                      extra_state=lambda: {"extra": 7}, **kw)
    return trainer, saved


def _loss(trainer: Trainer):
    return lambda b: StepLoss(torch.mean((trainer.net(b[0]) - b[1]) ** 2), {"mse": 1.0})


def test_reports_validates_and_saves_the_best_on_its_cadence(tmp_path: Path) -> None:
    trainer, saved = _trainer(tmp_path, 6, scores=[10.0, 12.0, 11.0], cadence=Cadence(log_every=3, val_every=2,
                                                                                       checkpoint_every=4))
    events: list[TrainProgress] = []
    drain(trainer.run(_batches(1), _loss(trainer)), events.append)
    assert [e.step for e in events] == [2, 3, 4, 6]  # every report and every validation
    assert [e.val_score for e in events] == [10.0, None, 12.0, 11.0]
    assert [e.saved for e in events] == [str(tmp_path / "best.pt"), None, str(tmp_path / "best.pt"), None]
    assert saved == [(2, 10.0), (4, 12.0)] and events[-1].best_score == 12.0
    assert events[-1].parts == {"mse": 1.0} and events[-1].loss == pytest.approx(trainer.recent_loss(3))
    state = torch.load(tmp_path / "s.state.pt", weights_only=False)
    assert state["step"] == 6 and state["extra"] == 7 and [h[0] for h in state["history"]] == [2, 4, 6]


def test_a_time_budget_stops_validates_the_last_step_and_resume_continues_exactly(tmp_path: Path) -> None:
    trainer, _ = _trainer(tmp_path, 100, scores=[5.0] * 10, minutes=1e-9, cadence=Cadence(val_every=50))
    events = list(trainer.run(_batches(1), _loss(trainer)))
    assert trainer.step == 0 and events == []  # the budget was spent before the first step
    whole, _ = _trainer(tmp_path / "w", 4)
    (tmp_path / "w").mkdir()
    drain(whole.run(_batches(1), _loss(whole)))
    part, saved = _trainer(tmp_path, 4, cadence=Cadence(log_every=1))
    gen = part.run(_batches(1), _loss(part))
    next(gen)
    next(gen)
    gen.close()  # cancel: the state is saved, and without validation the last model is the one kept
    assert part.step == 2 and saved == [(2, None)]
    rest, _ = _trainer(tmp_path, 4)
    rest.resume(torch.load(tmp_path / "s.state.pt", weights_only=False))
    batches = _batches(1)
    for _ in range(part.step):
        next(batches)  # the data a resumed run has already seen
    drain(rest.run(batches, _loss(rest)))
    for a, b in zip(whole.net.state_dict().values(), rest.net.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_ema_validates_and_saves_the_moving_average_and_resumes_exactly(tmp_path: Path) -> None:
    seen: list[list[torch.Tensor]] = []

    def run(folder: Path, stop_after: int | None = None, state: Path | None = None) -> Trainer:
        folder.mkdir(exist_ok=True)
        trainer, _ = _trainer(folder, 6, scores=[1.0, 2.0, 3.0], cadence=Cadence(log_every=1, val_every=2), ema=0.5)
        trainer.validate = lambda: (seen.append([p.detach().clone() for p in trainer.params]),
                                    Validation(float(len(seen))))[1]
        if state is not None:
            trainer.resume(torch.load(state, weights_only=False))
        batches = _batches(1)
        for _ in range(trainer.step):
            next(batches)
        gen = trainer.run(batches, _loss(trainer))
        for ev in gen:
            if stop_after is not None and ev.step >= stop_after:
                gen.close()
                break
        return trainer

    whole = run(tmp_path / "whole")
    assert len(seen) == 3
    # what validation saw is the average, not the trained weights, and training went on from its own weights
    assert not all(torch.equal(a, b) for a, b in zip(seen[-1], whole.params, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(seen[-1], whole.shadow, strict=True))
    part = run(tmp_path / "part", stop_after=3)
    assert part.step == 3 and "ema" in torch.load(tmp_path / "part" / "s.state.pt", weights_only=False)
    rest = run(tmp_path / "part", state=tmp_path / "part" / "s.state.pt")
    for a, b in zip(whole.shadow + list(whole.params), rest.shadow + list(rest.params), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(Exception, match="EMA decay"):
        _trainer(tmp_path, 2, ema=1.0)
