"""The typed progress events of training and fine-tuning.

The CLI prints them and the GUI plots them by attribute, so a field that a loop stops filling is a
type error in the reader, not a silently missing dictionary key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from denoiser.progress import Progress


@dataclass
class Validation:
    """One validation of the model being trained: its score (PSNR dB, or noisy mode's no-reference
    N2N score) and, where the validation measures them, the residual noise σ of its output and a
    thumbnail of that output."""

    score: float
    residual_sigma: float | None = None
    thumbnail: np.ndarray | None = None


@dataclass
class TrainProgress(Progress):
    """A training step reported by `Trainer`: `done` = `step` of `total` = `steps`."""

    step: int = 0
    steps: int = 0
    loss: float | None = None  # mean training loss since the last report
    validation: Validation | None = None  # set when this step validated
    best_score: float | None = None  # the best validation score so far (None before any)
    images_per_s: float = 0.0
    eta_s: float = 0.0
    lr: float = 0.0
    saved: str | None = None  # the checkpoint this step wrote, as the best so far
    parts: dict[str, float] = field(default_factory=dict)  # named loss components of the last step

    @property
    def val_score(self) -> float | None:
        """This step's validation score, if it validated."""
        return None if self.validation is None else self.validation.score


@dataclass
class FinetuneProgress(TrainProgress):
    """A fine-tuning event: a training step, or the set-up before the first one (step 0)."""

    mode: str = "clean"
    score_name: str = "PSNR"
    before: float | None = None  # the base model's score on the same validation images
    elapsed_s: float = 0.0
    out: str = ""
    thumbnails: dict[str, np.ndarray] | None = None  # noisy mode: "noisy", "before" and (after a validation) "after"
    residual_sigma_before: float | None = None  # noisy mode: residual noise σ of the base's output
    noise_left: float | None = None  # noisy mode: share of the photos' noise the base leaves
