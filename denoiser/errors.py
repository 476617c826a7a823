"""Exceptions the engine raises; each carries a message a user can act on."""

from __future__ import annotations

from pathlib import Path


class DenoiserError(Exception):
    """Base class for every error the engine reports to a user."""


class ImageReadError(DenoiserError):
    """A file could not be read as an image (missing, corrupt, unsupported, too large)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot read image '{path}': {reason}")


class ImageWriteError(DenoiserError):
    """An image could not be written (read-only folder, unsupported format, disk full)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"cannot write image '{path}': {reason}")


class OutputExistsError(ImageWriteError):
    """The output file exists (or appeared while it was being written) and overwriting is off."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, "file already exists (overwrite is off)")


class ModelNotFoundError(DenoiserError):
    """A model name or checkpoint path does not resolve to a usable model."""


class CheckpointError(DenoiserError):
    """A checkpoint file is corrupt, of an unknown format version, or names an unknown architecture."""
