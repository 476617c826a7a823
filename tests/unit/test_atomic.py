"""The one atomic writer: whole files or none, no clobbering without overwrite, no stale temporaries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from denoiser.archs import build_arch
from denoiser.atomic import TargetExistsError, atomic_write, remove_stale_temps, temp_name
from denoiser.checkpoint import load_checkpoint, save_checkpoint


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_whole_file_or_the_old_one(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write(target, lambda fp: fp.write(b"old"))

    def crash(fp) -> None:
        fp.write(b"half of the new")
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_no_clobber_at_the_final_rename(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    with pytest.raises(TargetExistsError):
        atomic_write(target, lambda fp: (target.write_bytes(b"appeared"), fp.write(b"ours")), overwrite=False)
    assert target.read_bytes() == b"appeared" and [p.name for p in tmp_path.iterdir()] == ["out.png"]
    with pytest.raises(TargetExistsError):
        atomic_write(target, lambda fp: fp.write(b"ours"), overwrite=False)
    atomic_write(target, lambda fp: fp.write(b"ours"))
    assert target.read_bytes() == b"ours"


def test_a_killed_writers_temporary_is_removed_by_the_next_write(tmp_path: Path) -> None:
    stale = tmp_path / temp_name("model.pt", pid=dead_pid())
    stale.write_bytes(b"left by SIGKILL")
    live = tmp_path / temp_name("other.pt")  # this process: a write in progress, kept
    live.write_bytes(b"being written")
    unrelated = tmp_path / ".notes.tmp"
    unrelated.write_bytes(b"not ours")
    atomic_write(tmp_path / "model.pt", lambda fp: fp.write(b"new"))
    assert not stale.exists() and live.exists() and unrelated.exists()
    assert remove_stale_temps(tmp_path) == []


def test_checkpoints_and_states_go_through_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = build_arch("unet", in_channels=1, channels=[8, 16])
    path = save_checkpoint(tmp_path / "m.pt", net)
    before = path.read_bytes()
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "m.pt", net, description="never lands")
    assert path.read_bytes() == before and load_checkpoint(path).info.description == ""
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]
