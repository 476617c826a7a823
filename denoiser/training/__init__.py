"""Training and fine-tuning: one `Trainer` loop, and the runs that hand it their steps.

- `config`: the typed recipe (`TrainConfig`, `NoiseConfig`) and the state file beside a checkpoint.
- `synthesis`, `batches`, `validation`: noisy inputs, each step's batch, and the seeded validation.
- `trainer`: the loop (precision, schedule, clipping, ranks, validation, saves, events, resume).
- `supervised`: `train()`; `finetune*`: `finetune()` in clean and noisy mode; `events`: what they yield.
"""

from denoiser.training.batches import StepBatches, batch_stream, finish_batch, loader_workers, noise_on_device
from denoiser.training.config import (
    NoiseConfig,
    TrainConfig,
    check_resume_config,
    existing_run_files,
    read_training_state,
    state_path,
)
from denoiser.training.events import FinetuneProgress, TrainProgress, Validation
from denoiser.training.finetune import finetune
from denoiser.training.finetune_noisy import NOTHING_TO_LEARN, THUMB
from denoiser.training.finetune_plan import estimate_memory_mb
from denoiser.training.finetune_setup import (
    MODE_DEFAULTS,
    FinetuneConfig,
    FinetuneResult,
    base_noise_config,
    output_path,
    unique_output_name,
)
from denoiser.training.supervised import train
from denoiser.training.synthesis import make_noisy
from denoiser.training.trainer import Trainer, adam_for, cosine_lr, lr_at, training_precision
from denoiser.training.validation import validate, validation_pairs

__all__ = [
    "MODE_DEFAULTS", "NOTHING_TO_LEARN", "THUMB", "FinetuneConfig", "FinetuneProgress", "FinetuneResult",
    "NoiseConfig", "StepBatches", "TrainConfig", "TrainProgress", "Trainer", "Validation", "adam_for",
    "base_noise_config", "batch_stream", "check_resume_config", "cosine_lr", "estimate_memory_mb", "existing_run_files",
    "finetune",
    "finish_batch", "loader_workers", "lr_at", "make_noisy", "noise_on_device", "output_path",
    "read_training_state", "state_path", "train", "training_precision", "unique_output_name", "validate",
    "validation_pairs",
]
