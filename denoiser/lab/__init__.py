"""The autoencoder lab: measured experiments that make the theory behind the denoiser visible.

`run_lab(LabConfig(out=...))` is a progress generator (the CLI's `denoiser lab`, `bench/lab.py` and the GUI
drain it) that trains small `conv-ae` models on gray patches, runs the eight experiments (identity trap,
corruptions, noise variance, modified objective, sparsity, anomaly detection, compression, generation) and
writes `REPORT.md`, `results.json`, PNG figures and the models (ordinary checkpoints) into the output folder.
"""

from denoiser.lab.common import FULL, LAB_PREFIX, QUICK, LabConfig, Scale
from denoiser.lab.runner import EXPERIMENTS, LabResult, run_lab, select

__all__ = ["EXPERIMENTS", "FULL", "LAB_PREFIX", "QUICK", "LabConfig", "LabResult", "Scale", "run_lab", "select"]
