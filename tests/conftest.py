"""Shared fixtures: an isolated user-model folder with tiny models, a seeded generator (helpers: tests/helpers.py)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from tests.helpers import make_tiny_model  # noqa: E402


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated user models folder holding tiny `photo`, `gaussian-color` and `gaussian-gray` models."""
    d = tmp_path / "user-models"
    d.mkdir()
    monkeypatch.setenv("DENOISER_MODELS_DIR", str(d))
    make_tiny_model(d / "photo.pt", 3)
    make_tiny_model(d / "gaussian-color.pt", 3)
    make_tiny_model(d / "gaussian-gray.pt", 1)
    return d


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(1234)
