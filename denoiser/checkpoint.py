"""The checkpoint format, and the registry of bundled and user models.

One `.pt` file holds everything needed to rebuild a model: format version, architecture name and
config, weights, the noise and training config, training info and validation metrics. It loads with
`torch.load(weights_only=True)`. Optimizer state for resuming lives in a separate `*.state.pt`.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from denoiser.archs import DenoiserNet, build_arch
from denoiser.atomic import atomic_write
from denoiser.errors import CheckpointError, DenoiserError, ModelNotFoundError
from denoiser.resources import bundled_models_dir

FORMAT_VERSION = 1
USER_MODELS_ENV = "DENOISER_MODELS_DIR"
DEFAULT_MODEL = "photo"
MODEL_ALIASES = {"default": DEFAULT_MODEL}


@dataclass
class ModelInfo:
    """What a checkpoint says about itself (without its weights)."""

    name: str
    path: Path
    arch: str
    arch_config: dict[str, Any]
    noise: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    source: str = "user"  # "bundled" or "user"

    @property
    def in_channels(self) -> int:
        """Image channels the model takes (1 gray, 3 colour)."""
        return int(self.arch_config.get("in_channels", 3))

    @property
    def size_mb(self) -> float:
        """File size in MB."""
        return self.path.stat().st_size / 1e6


@dataclass
class LoadedModel:
    """A model ready for inference, with its metadata."""

    net: DenoiserNet
    info: ModelInfo


def user_models_dir() -> Path:
    """Per-user models folder: $DENOISER_MODELS_DIR, else the platform's data folder."""
    env = os.environ.get(USER_MODELS_ENV)
    if env:
        return Path(env).expanduser()
    if os.name == "nt":
        base = Path(os.environ.get("APPDATA", Path.home()))
    else:
        base = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
    return base / "denoiser-studio" / "models"


def save_checkpoint(
    path: str | Path,
    net: DenoiserNet,
    *,
    noise: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str = "",
    half: bool = False,
) -> Path:
    """Write a self-describing checkpoint atomically; `half` stores weights as fp16 to halve the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().clone() for k, v in net.state_dict().items()}
    payload = {
        "format_version": FORMAT_VERSION,
        "arch": net.arch_name,
        "arch_config": _plain(net.config),
        "state_dict": state,
        "noise": _plain(noise or {}),
        "training": _plain(training or {}),
        "metrics": _plain(metrics or {}),
        "description": description,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    return write_torch_file(payload, path)


def write_torch_file(payload: Any, path: str | Path) -> Path:
    """`torch.save` through the atomic writer: a crash mid-save leaves the previous file whole."""
    return atomic_write(path, lambda fp: torch.save(payload, fp))


def _plain(obj: Any) -> Any:
    """Convert tuples/Paths/numpy scalars to types `weights_only` loading accepts."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, bool | int | float | str) or obj is None:
        return obj
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def torch_file(path: str | Path, what: str, foreign: str, *, missing: type[DenoiserError] = CheckpointError) -> Any:
    """`torch.load` on the CPU, always with `weights_only=True` (a crafted file cannot run code: it is refused
    as foreign), with one-line errors: `missing` when the file is not there, what failed for other OS
    errors, and `foreign` for a corrupt or non-PyTorch file (PyTorch's own message can run to a page)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise missing(f"{what} '{path}' does not exist") from None
    except OSError as exc:  # permissions, a folder, a device error: say which, not "corrupt"
        raise CheckpointError(f"cannot read {what} '{path}': {exc.strerror or exc}") from None
    except Exception as exc:
        raise CheckpointError(f"'{path}' {foreign} ({type(exc).__name__})") from None


def _read(path: Path) -> dict[str, Any]:
    payload = torch_file(path, "checkpoint", "is not a readable Denoiser Studio checkpoint: the file is corrupt or "
                         "not a model", missing=ModelNotFoundError)
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise CheckpointError(f"'{path}' is not a Denoiser Studio checkpoint (no format_version)")
    if payload["format_version"] > FORMAT_VERSION:
        raise CheckpointError(f"'{path}' has format version {payload['format_version']}; this build reads up to {FORMAT_VERSION}")
    return payload


def _info(path: Path, p: dict[str, Any], source: str) -> ModelInfo:
    return ModelInfo(
        name=path.stem,
        path=path,
        arch=p["arch"],
        arch_config=p["arch_config"],
        noise=p.get("noise", {}),
        training=p.get("training", {}),
        metrics=p.get("metrics", {}),
        description=p.get("description", ""),
        source=source,
    )


def read_info(path: str | Path, source: str = "user") -> ModelInfo:
    """Read a checkpoint's metadata."""
    path = Path(path)
    return _info(path, _read(path), source)


def load_checkpoint(path: str | Path, source: str = "user") -> LoadedModel:
    """Rebuild a model from a checkpoint file (weights cast back to float32, eval mode)."""
    path = Path(path)
    p = _read(path)
    try:
        net = build_arch(p["arch"], **p["arch_config"])
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in p["state_dict"].items()})
    except (ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"'{path}' cannot be rebuilt: {exc}") from exc
    net.eval()
    return LoadedModel(net, _info(path, p, source))


class ModelShadowWarning(UserWarning):
    """A broken user model file has the name of a bundled model, which is used instead."""


def unreadable_reason(path: Path) -> str:
    """Why a checkpoint's header cannot be read ('' when it can). Remembered per file version, since a
    batch resolves its model once per image and a header read loads the whole file."""
    try:
        st = path.stat()
    except OSError as exc:
        return exc.strerror or str(exc)
    return _unreadable_reason(str(path), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=64)
def _unreadable_reason(path: str, _mtime_ns: int, _size: int) -> str:
    try:
        read_info(Path(path))
    except Exception as exc:  # noqa: BLE001 - any failure makes the file unusable
        return str(exc) or type(exc).__name__
    return ""


def scan_models() -> tuple[list[ModelInfo], list[tuple[Path, str]]]:
    """One pass over the bundled, then the user models folder: the readable models, each folder sorted by
    name, and (file, reason) for every model file that cannot be read.

    A user model named like a bundled one replaces it in the list, as it does when resolving the name; a
    broken file replaces nothing, it is only reported.
    """
    found: dict[str, ModelInfo] = {}
    broken: list[tuple[Path, str]] = []
    for folder, source in ((bundled_models_dir(), "bundled"), (user_models_dir(), "user")):
        if not folder.is_dir():
            continue
        for f in sorted(folder.glob("*.pt")):
            if f.name.endswith(".state.pt") or f.name.startswith("."):
                continue
            try:
                info = read_info(f, source)
            except Exception as exc:  # noqa: BLE001 - a broken user file must not hide the others
                broken.append((f, str(exc) or type(exc).__name__))
                continue
            found.pop(info.name, None)
            found[info.name] = info
    return list(found.values()), broken


def list_models() -> list[ModelInfo]:
    """The readable models of `scan_models` (bundled, then user; a user model shadows a bundled namesake)."""
    return scan_models()[0]


def resolve_model(name_or_path: str | Path, channels: int | None = None) -> Path:
    """Find a checkpoint by bundled/user name or path.

    `gaussian` picks `gaussian-gray` or `gaussian-color` from the image's channel count;
    `default` is an alias of `photo`.
    """
    s = str(name_or_path)
    s = MODEL_ALIASES.get(s, s)
    if s == "gaussian":
        s = "gaussian-gray" if channels == 1 else "gaussian-color"
    p = Path(s).expanduser()
    if p.suffix == ".pt" or os.sep in s or p.is_file():
        if p.is_file():
            return p
        raise ModelNotFoundError(f"model file '{s}' does not exist")
    for folder in (user_models_dir(), bundled_models_dir()):
        candidate = folder / f"{s}.pt"
        if candidate.is_file():
            bundled = bundled_models_dir() / f"{s}.pt"
            if folder != bundled_models_dir() and bundled.is_file():
                reason = unreadable_reason(candidate)
                if reason:  # a broken user file must not hide the bundled model, nor do so silently
                    warnings.warn(f"user model '{candidate}' is unreadable ({reason}); using the bundled '{s}' "
                                  "instead (remove or replace the file)", ModelShadowWarning, stacklevel=2)
                    return bundled
            return candidate
    known = sorted({m.name for m in list_models()} | {"default", "gaussian"})
    raise ModelNotFoundError(f"no model named '{s}' (known: {', '.join(known)})")


def load_model(name_or_path: str | Path, channels: int | None = None) -> LoadedModel:
    """Resolve and load a model by name or path."""
    path = resolve_model(name_or_path, channels)
    source = "bundled" if path.parent.resolve() == bundled_models_dir().resolve() else "user"
    return load_checkpoint(path, source)
