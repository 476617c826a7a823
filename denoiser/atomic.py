"""One atomic file writer for images, checkpoints and training states.

A file is written to a hidden temporary file in the target's folder, flushed and fsynced, then renamed
onto the target, so a reader (or a `--resume` after a crash) sees the old file or the whole new one,
never half of one. Without `overwrite` the final step is an exclusive create (a hard link that fails if
the target appeared meanwhile), so a file that another run or the user put there is never replaced.
Temporary names carry the writer's process id; a later write into the same folder removes the
temporaries of writers that no longer run (a process killed mid-write), so none accumulate.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


class TargetExistsError(FileExistsError):
    """The target exists and overwriting was not allowed (checked before writing and at the final rename)."""


def temp_name(target_name: str, pid: int | None = None) -> str:
    """The hidden temporary name used while writing `target_name` (by process `pid`, default this one)."""
    return f".{target_name[:180]}.{os.getpid() if pid is None else pid}-{secrets.token_hex(4)}.tmp"


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":
        return True  # cannot tell cheaply: keep it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete the temporaries in `folder` left by writers that are no longer running; returns them."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m and not _running(int(m["pid"])):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(parent: Path, name: str) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = parent / temp_name(name)
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def atomic_write(target: str | Path, write: Callable[[BinaryIO], None], *, overwrite: bool = True) -> Path:
    """Write `target` atomically with `write(file)`; returns the target.

    Raises TargetExistsError when it exists and `overwrite` is off, IsADirectoryError when a folder has
    its name, and the OSError of a folder that cannot be created or written; whatever `write` raises
    propagates. Nothing is left behind on failure.
    """
    target = Path(target)
    if target.is_dir():
        raise IsADirectoryError(f"a folder named '{target}' already exists")
    if not overwrite and target.exists():
        raise TargetExistsError(f"'{target}' already exists")
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(parent)
    fd, tmp = _create_temp(parent, target.name)
    try:
        with os.fdopen(fd, "wb") as fp:
            write(fp)
            fp.flush()
            os.fsync(fp.fileno())
        if overwrite:
            try:
                os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))  # keep an overwritten file's permissions
            except OSError:
                pass
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if the target appeared meanwhile: never clobber
            except FileExistsError:
                raise TargetExistsError(f"'{target}' already exists") from None
            except OSError:  # a filesystem without hard links
                if target.exists():
                    raise TargetExistsError(f"'{target}' already exists") from None
                os.replace(tmp, target)
            else:
                os.unlink(tmp)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(parent)
    return target


def probe_writable(target: str | Path) -> None:
    """Raise OSError (with the reason) unless a file can be written at `target`: its folder is created if
    missing and a temporary file is made and removed there. Long jobs call it before their first step,
    so a read-only output is found in a second, not after an hour of training."""
    target = Path(target)
    if target.is_dir():
        raise IsADirectoryError(f"'{target}' is a folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(target.parent, target.name)
    os.close(fd)
    os.unlink(tmp)
