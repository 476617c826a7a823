"""Fine-tuning on the user's photos: the engine's `finetune` in a worker, with a live loss curve and thumbnails."""

from __future__ import annotations

import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from denoiser.checkpoint import ModelInfo
from denoiser.errors import DenoiserError
from denoiser.training import (
    MODE_DEFAULTS,
    FinetuneConfig,
    FinetuneResult,
    estimate_memory_mb,
    finetune,
    output_path,
    unique_output_name,
)
from denoiser.training.events import FinetuneProgress
from gui import settings
from gui.dialogs.job_dialog import JobDialog, format_eta
from gui.messages import show_warning
from gui.widgets.denoise_panel import model_tooltip
from gui.widgets.loss_curve import LossCurve
from gui.widgets.path_list import PathListBox
from gui.widgets.thumbnails import Thumbnails
from gui.workers import LatestOnly

MODES = {"clean": "Clean photos (supervised, with synthetic noise)",
         "noisy": "Only noisy photos (self-supervised)"}


def memory_text(cfg: FinetuneConfig) -> str:
    """The memory line for a run of `cfg`, or why it cannot be estimated."""
    try:
        mem = estimate_memory_mb(cfg)
    except (DenoiserError, OSError, ValueError) as exc:
        return f"cannot estimate: {exc}"
    return (f"≈ {mem['total']:.0f} MB (model {mem['model']:.0f}, activations {mem['activations']:.0f}, "
            f"image cache {mem['images']:.0f}, validation {mem['validation']:.0f})")

class FinetuneDialog(JobDialog):
    """Choose photos, mode and time budget; watch the loss and validation; then use the new model."""

    run_finished = Signal(str)  # "done" | "cancelled" | "failed"
    model_saved = Signal(str)  # the new model's name, once its checkpoint exists
    use_model = Signal(str)  # "Use this model" was clicked

    def __init__(self, models: list[ModelInfo], base: str | None = None, device: str = "auto",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune a model on your photos")
        self.resize(780, 860)
        self.device = device
        self.result: FinetuneResult | None = None
        self.saved_name: str | None = None
        self._auto_name = True
        self.estimate_calc = LatestOnly(self.pool, self)  # builds a network: off the GUI thread, newest request wins
        self._out: Path | None = None
        self._build_photos()
        self._build_options(models, base)
        self._build_progress()
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.photos_group, 1)
        top.addWidget(self.options_group, 1)
        layout.addLayout(top)
        layout.addWidget(self.progress_group, 1)
        self._mode_changed()

    # --- construction -------------------------------------------------------------------------------
    def _build_photos(self) -> None:
        self.photos_group = QGroupBox("Your photos")
        self.folder_box = PathListBox("finetune/folder", files=False, folder_caption="Add a folder of photos",
                                      tooltip="Folders of photos of the kind you shoot (searched with their subfolders)")
        self.folder_box.changed.connect(self.update_estimate)
        box = QVBoxLayout(self.photos_group)
        box.addWidget(self.folder_box)

    def _build_options(self, models: list[ModelInfo], base: str | None) -> None:
        self.options_group = QGroupBox("Training")
        self.mode_combo = QComboBox()
        for key, text in MODES.items():
            self.mode_combo.addItem(text, key)
        self.mode_combo.setToolTip("Clean: your photos are low-noise, noise is added to them. "
                                   "Noisy: only noisy photos; the model learns from neighbouring pixels.")
        self.minutes_box = QDoubleSpinBox()
        self.minutes_box.setRange(0.5, 600)
        self.minutes_box.setDecimals(1)
        self.minutes_box.setSuffix(" min")
        self.minutes_box.setValue(settings.read("finetune/minutes", 10.0, float))
        self.minutes_box.setToolTip("Training stops after this time; the best model so far is kept")

        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced options")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.toggled.connect(self._toggle_advanced)
        self.advanced = QWidget()
        self.base_combo = QComboBox()
        for info in models:
            self.base_combo.addItem(info.name, info.name)
            self.base_combo.setItemData(self.base_combo.count() - 1, model_tooltip(info), Qt.ItemDataRole.ToolTipRole)
        self.base_combo.setCurrentIndex(max(0, self.base_combo.findData(base)))
        self.output_edit = QLineEdit()
        self.output_edit.setToolTip("Name of the new model in your models folder")
        self.output_edit.textEdited.connect(lambda _t: setattr(self, "_auto_name", False))
        self.steps_box = QSpinBox()
        self.steps_box.setRange(0, 1_000_000)
        self.steps_box.setSpecialValueText("Auto (fill the time budget)")
        self.lr_box = QDoubleSpinBox()
        self.lr_box.setDecimals(6)
        self.lr_box.setRange(0, 0.01)
        self.lr_box.setSingleStep(1e-5)
        self.lr_box.setSpecialValueText("Default")
        self.patch_box = QSpinBox()
        self.patch_box.setRange(0, 512)
        self.patch_box.setSingleStep(16)
        self.patch_box.setSpecialValueText("Default")
        self.batch_box = QSpinBox()
        self.batch_box.setRange(0, 256)
        self.batch_box.setSpecialValueText("Default")
        self.freeze_box = QCheckBox("Freeze the encoder (train the decoder only)")
        adv = QFormLayout(self.advanced)
        adv.setContentsMargins(0, 0, 0, 0)
        adv.addRow("Base model", self.base_combo)
        adv.addRow("Save as", self.output_edit)
        adv.addRow("Steps", self.steps_box)
        adv.addRow("Learning rate", self.lr_box)
        adv.addRow("Patch size", self.patch_box)
        adv.addRow("Batch", self.batch_box)
        adv.addRow(self.freeze_box)
        self.advanced.setVisible(False)
        self.memory_label = QLabel("")
        self.memory_label.setWordWrap(True)
        form = QFormLayout(self.options_group)
        form.addRow("Mode", self.mode_combo)
        form.addRow("Time budget", self.minutes_box)
        form.addRow(self.advanced_button)
        form.addRow(self.advanced)
        form.addRow("Memory", self.memory_label)
        self.mode_combo.currentIndexChanged.connect(self._mode_changed)
        self.base_combo.currentIndexChanged.connect(self._base_changed)
        for box in (self.patch_box, self.batch_box):
            box.valueChanged.connect(lambda _v: self.update_estimate())
        self._base_changed()

    def _build_progress(self) -> None:
        self.progress_group = QGroupBox("Progress")
        self.curve = LossCurve()
        self.thumbnails = Thumbnails()
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        self.use_button = QPushButton("Use this model")
        self.use_button.setEnabled(False)
        self.use_button.setToolTip("Select the new model in the main window")
        self.use_button.clicked.connect(self._use_clicked)
        row = self._run_controls("Stop now; the best model so far is kept", [self.use_button])
        box = QVBoxLayout(self.progress_group)
        box.addWidget(self.curve, 1)
        box.addWidget(self.thumbnails)
        box.addWidget(self.status_label)
        box.addLayout(row)
        box.addWidget(self.result_label)

    # --- form ---------------------------------------------------------------------------------------
    def add_folders(self, folders: list[str | Path]) -> None:
        """Append folders of photos (duplicates ignored)."""
        self.folder_box.add_paths(folders)

    def folders(self) -> list[str]:
        """The chosen folders."""
        return self.folder_box.paths()

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced.setVisible(on)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def mode(self) -> str:
        """'clean' or 'noisy'."""
        return str(self.mode_combo.currentData())

    def _mode_changed(self) -> None:
        defaults = MODE_DEFAULTS[self.mode()]
        self.lr_box.setSpecialValueText(f"Default ({defaults['lr']:g})")
        self.patch_box.setSpecialValueText(f"Default ({int(defaults['patch'])})")
        self.batch_box.setSpecialValueText(f"Default ({int(defaults['batch'])})")
        self.thumbnails.setVisible(self.mode() == "noisy")
        self.update_estimate()

    def _base_changed(self) -> None:
        if self._auto_name:
            self.output_edit.setText(unique_output_name(str(self.base_combo.currentData() or "model")))
        self.update_estimate()

    def config(self) -> FinetuneConfig:
        """The engine's fine-tuning config from the form."""
        return FinetuneConfig(
            data=self.folders(), base=str(self.base_combo.currentData() or "default"),
            out=self.output_edit.text().strip(), mode=self.mode(), steps=self.steps_box.value() or None,
            minutes=self.minutes_box.value(), freeze_encoder=self.freeze_box.isChecked(), device=self.device,
            lr=self.lr_box.value() or None, patch=self.patch_box.value() or None, batch=self.batch_box.value() or None,
        )

    def update_estimate(self) -> None:
        """Show the memory the run will need, computed in a worker thread (it reads image headers and
        runs the network once); a newer request replaces one still waiting."""
        if not self.folders():
            self.memory_label.setText("Add a folder of photos to see the memory needed")
            return
        cfg = self.config()
        self.estimate_calc.submit(lambda: memory_text(cfg), self.memory_label.setText)

    # --- running ------------------------------------------------------------------------------------
    def form_groups(self) -> list[QWidget]:
        return [self.photos_group, self.options_group]

    def start(self) -> None:
        """Check the form and run `finetune` in a worker thread."""
        if self.running:
            return
        cfg = self.config()
        if not cfg.data:
            show_warning(self, "Fine-tune", "Add a folder of your photos first.")
            return
        try:
            out = output_path(cfg.out)
        except DenoiserError as exc:
            show_warning(self, "Fine-tune", str(exc))
            return
        if out.exists():
            show_warning(self, "Fine-tune", f"A model named {out.stem} exists already. Choose another name.")
            return
        settings.write("finetune/minutes", cfg.minutes)
        self.result = None
        self.saved_name = None
        self.curve.clear()
        self.thumbnails.clear()
        self.progress.setValue(0)
        self.result_label.setText("")
        self.result_label.setStyleSheet("")
        self.status_label.setText("Starting…")
        self.use_button.setEnabled(False)
        self._out = out
        self._launch(lambda: finetune(cfg), "Fine-tune")

    def _on_progress(self, event: FinetuneProgress) -> None:
        if event.total > 0:
            self.progress.setValue(int(event.fraction * 1000))
        if math.isfinite(event.eta_s) and event.total > 0:
            self.eta_label.setText(f"ETA {format_eta(event.eta_s)}")
        self.status_label.setText(event.message)
        self.curve.add(event)
        if event.thumbnails is not None:
            self.thumbnails.set_images(event.thumbnails)

    def _finish(self, outcome: str, text: str) -> None:
        self._end_job()
        self.result_label.setText(text)
        if self._out is not None and self._out.exists():
            self.saved_name = self._out.stem
            self.use_button.setEnabled(True)
            self.model_saved.emit(self.saved_name)
        if self._auto_name:
            self.output_edit.setText(unique_output_name(str(self.base_combo.currentData() or "model")))
        self.run_finished.emit(outcome)

    def _on_done(self, result: FinetuneResult) -> None:
        self.result = result
        self.progress.setValue(1000)
        # red: measured worse; amber: not established (noisy mode's no-reference proxy, or nothing to compare)
        self.result_label.setStyleSheet({True: "", False: "color: #d73a49;"}.get(result.better, "color: #b26a00;"))
        verdict = result.verdict()
        self._finish("done", f"Saved {result.path.stem} ({result.steps} steps). {verdict[:1].upper()}{verdict[1:]}.")

    def _on_failed(self, exc: BaseException) -> None:
        self._finish("failed", f"Fine-tuning stopped: {exc}")
        show_warning(self, "Fine-tune", f"Fine-tuning stopped: {exc}")

    def _on_cancelled(self) -> None:
        kept = f" The best model so far is kept as {self._out.stem}." if self._out and self._out.exists() else ""
        self._finish("cancelled", f"Cancelled.{kept}")

    def _use_clicked(self) -> None:
        if self.saved_name is not None:
            self.use_model.emit(self.saved_name)
