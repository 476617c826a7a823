"""Fine-tuning on the user's photos: the engine's `finetune` in a worker, with a live loss curve and thumbnails."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen, QPixmap
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
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from denoiser.checkpoint import ModelInfo
from denoiser.errors import DenoiserError
from denoiser.finetune import (
    MODE_DEFAULTS,
    FinetuneConfig,
    FinetuneResult,
    estimate_memory_mb,
    finetune,
    output_path,
    unique_output_name,
)
from denoiser.progress import Progress
from gui import settings
from gui.dialogs.job_dialog import JobDialog, format_eta
from gui.image_convert import to_qimage
from gui.messages import show_warning
from gui.widgets.denoise_panel import model_tooltip
from gui.widgets.path_list import PathListBox
from gui.workers import LatestOnly

MODES = {"clean": "Clean photos (supervised, with synthetic noise)",
         "noisy": "Only noisy photos (self-supervised)"}
THUMB_TITLES = {"noisy": "Noisy", "before": "Base model", "after": "Fine-tuned"}
LOSS_COLOUR = QColor(40, 110, 200)
SCORE_COLOUR = QColor(220, 120, 30)


class LossCurve(QWidget):
    """Training loss (blue line, left scale) and validation score (orange dots, right scale; dashed: the base)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.losses: list[tuple[float, float]] = []
        self.scores: list[tuple[float, float]] = []
        self.before: float | None = None
        self.steps = 1
        self.setMinimumSize(320, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Training loss (blue) and validation score (orange; dashed: the base model)")

    def sizeHint(self) -> QSize:
        return QSize(480, 180)

    def clear(self) -> None:
        """Forget every point."""
        self.losses, self.scores, self.before, self.steps = [], [], None, 1
        self.update()

    def add(self, event: Progress) -> None:
        """Take the loss, score, base score and step count from a progress event."""
        d = event.data
        self.steps = max(self.steps, int(d.get("steps") or 1))
        if d.get("before") is not None and math.isfinite(d["before"]):
            self.before = float(d["before"])
        if "loss" in d and math.isfinite(d["loss"]):
            self.losses.append((float(d["step"]), float(d["loss"])))
        if "val_score" in d and math.isfinite(d["val_score"]):
            self.scores.append((float(d["step"]), float(d["val_score"])))
        self.update()

    @staticmethod
    def _range(values: list[float]) -> tuple[float, float]:
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.1 or max(abs(hi) * 0.05, 1e-6)
        return lo - pad, hi + pad

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        plot = QRectF(self.rect()).adjusted(56, 8, -48, -20)
        p.fillRect(self.rect(), self.palette().base())
        p.setPen(QPen(self.palette().mid().color()))
        p.drawRect(plot)
        text = self.palette().text().color()
        p.setPen(text)
        p.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), 16), Qt.AlignmentFlag.AlignCenter,
                   f"step (of {self.steps})")
        if not self.losses and not self.scores and self.before is None:
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "The loss curve appears when training starts")
            return

        def x_of(step: float) -> float:
            return plot.left() + plot.width() * min(1.0, step / max(1, self.steps))

        if self.losses:
            lo, hi = self._range([v for _s, v in self.losses])
            lo = max(lo, 0.0)
            path = QPainterPath()
            for i, (s, v) in enumerate(self.losses):
                point = QPointF(x_of(s), plot.bottom() - plot.height() * (v - lo) / (hi - lo))
                if i == 0:
                    path.moveTo(point)
                else:
                    path.lineTo(point)
            p.setPen(QPen(LOSS_COLOUR, 1.5))
            p.drawPath(path)
            p.drawText(QRectF(0, plot.top(), 52, 16), Qt.AlignmentFlag.AlignRight, f"{hi:.2g}")
            p.drawText(QRectF(0, plot.bottom() - 16, 52, 16), Qt.AlignmentFlag.AlignRight, f"{lo:.2g}")
        values = [v for _s, v in self.scores] + ([self.before] if self.before is not None else [])
        if values:
            lo, hi = self._range(values)

            def y_of(v: float) -> float:
                return plot.bottom() - plot.height() * (v - lo) / (hi - lo)

            p.setPen(QPen(SCORE_COLOUR, 1))
            if self.before is not None:
                pen = QPen(SCORE_COLOUR, 1, Qt.PenStyle.DashLine)
                p.setPen(pen)
                p.drawLine(QPointF(plot.left(), y_of(self.before)), QPointF(plot.right(), y_of(self.before)))
            p.setPen(QPen(SCORE_COLOUR, 1))
            p.setBrush(SCORE_COLOUR)
            for s, v in self.scores:
                p.drawEllipse(QPointF(x_of(s), y_of(v)), 3, 3)
            p.drawText(QRectF(plot.right() + 2, plot.top(), 46, 16), Qt.AlignmentFlag.AlignLeft, f"{hi:.2f}")
            p.drawText(QRectF(plot.right() + 2, plot.bottom() - 16, 46, 16), Qt.AlignmentFlag.AlignLeft, f"{lo:.2f}")


class Thumbnails(QWidget):
    """Noisy / base model / fine-tuned crops of a validation image, side by side."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: dict[str, QLabel] = {}
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        for key, title in THUMB_TITLES.items():
            column = QVBoxLayout()
            image = QLabel("–")
            image.setFixedSize(132, 132)
            image.setAlignment(Qt.AlignmentFlag.AlignCenter)
            image.setFrameShape(QLabel.Shape.StyledPanel)
            caption = QLabel(title)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            column.addWidget(image)
            column.addWidget(caption)
            row.addLayout(column)
            self.labels[key] = image
        row.addStretch(1)

    def clear(self) -> None:
        """Empty frames."""
        for label in self.labels.values():
            label.clear()
            label.setText("–")

    def set_images(self, images: dict[str, np.ndarray]) -> None:
        """Show the (h, w, C) uint8 arrays given under 'noisy', 'before' and 'after'."""
        for key, array in images.items():
            if key in self.labels and array is not None:
                self.labels[key].setPixmap(QPixmap.fromImage(to_qimage(array)))

    def shown(self) -> set[str]:
        """Keys of the frames that hold an image."""
        return {k for k, label in self.labels.items() if label.pixmap() is not None and not label.pixmap().isNull()}



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

    def _on_progress(self, event: Progress) -> None:
        d = event.data
        if event.total > 0:
            self.progress.setValue(int(event.fraction * 1000))
        eta = d.get("eta_s")
        if eta is not None and math.isfinite(eta):
            self.eta_label.setText(f"ETA {format_eta(eta)}")
        self.status_label.setText(event.message)
        self.curve.add(event)
        if "thumbnails" in d:
            self.thumbnails.set_images(d["thumbnails"])

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
