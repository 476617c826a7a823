"""The one accessor for files bundled under `resources/` (weights, model card, icons, sample)."""

from __future__ import annotations

from pathlib import Path


def resources_dir() -> Path:
    """Folder holding the bundled resources, both from a checkout and from an installed wheel."""
    import resources

    return Path(resources.__file__).resolve().parent


def bundled_models_dir() -> Path:
    """Folder of the bundled pretrained checkpoints."""
    return resources_dir() / "models"


def sample_image_path() -> Path:
    """The sample photo Help › Open sample shows."""
    return resources_dir() / "sample" / "sample.png"


def icon_path(name: str) -> Path:
    """Path of a bundled icon by file name."""
    return resources_dir() / "icons" / name
