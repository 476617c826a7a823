"""Tools › Autoencoder lab: look inside a model on an image — its code, sparsity, anomaly map, lab PSNRs."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QCloseEvent, QColor, QImage, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from denoiser.checkpoint import ModelInfo
from denoiser.imageio import SUPPORTED_EXTENSIONS, load_image
from denoiser.lab.inspect import Inspection, activation_grid, heatmap, inspect_work, is_lab_model
from gui.image_convert import to_qimage
from gui.messages import show_error
from gui.workers import Job, JobPool

VIEW_SIZE = 300
PSNR_COLUMNS = ["model", "trained on", "noisy dB", "output dB", "gain dB"]


def scaled_pixmap(image: QImage, size: int = VIEW_SIZE) -> QPixmap:
    """The image scaled to fit `size` pixels, with crisp (nearest-neighbour) pixels when enlarged."""
    return QPixmap.fromImage(image).scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                           Qt.TransformationMode.FastTransformation)


class ActivationBars(QWidget):
    """Mean activation per code unit as bars in [0, 1], with the sparsity target ρ as a dashed line."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: np.ndarray | None = None
        self.rho: float | None = None
        self.setMinimumSize(VIEW_SIZE, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_values(self, values: np.ndarray | None, rho: float | None) -> None:
        """Show these per-unit means (None clears) and the target ρ (None: no line)."""
        self.values = None if values is None else np.asarray(values, dtype=np.float64)
        self.rho = rho
        self.update()

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        left, right, top, bottom = 34, 8, 8, 22
        plot = QRectF(left, top, max(1, self.width() - left - right), max(1, self.height() - top - bottom))
        text = self.palette().text().color()
        p.setPen(QPen(text, 1))
        p.drawLine(plot.bottomLeft(), plot.bottomRight())
        p.drawLine(plot.bottomLeft(), plot.topLeft())
        for v in (0.0, 0.5, 1.0):
            y = plot.bottom() - v * plot.height()
            p.drawText(QRectF(0, y - 8, left - 4, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                       f"{v:g}")
        if self.values is None or not len(self.values):
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "no model analysed")
            p.end()
            return
        n = len(self.values)
        step = plot.width() / n
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor(70, 130, 200))
        for i, v in enumerate(np.clip(self.values, 0, 1)):
            h = float(v) * plot.height()
            p.drawRect(QRectF(plot.left() + i * step + step * 0.1, plot.bottom() - h, max(1.0, step * 0.8), h))
        p.setPen(QPen(text, 1))
        p.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), bottom - 2), Qt.AlignmentFlag.AlignCenter,
                   f"{n} code units: mean activation of each")
        if self.rho is not None:
            y = plot.bottom() - self.rho * plot.height()
            p.setPen(QPen(QColor(220, 50, 50), 1.5, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.drawText(QRectF(plot.right() - 80, y - 16, 78, 14), Qt.AlignmentFlag.AlignRight, f"ρ = {self.rho:g}")
        p.end()


class LabWindow(QDialog):
    """Pick an image and a model; see the code, mean activation per unit, error map and the lab models' PSNR."""

    analysed = Signal(object)  # Inspection
    analysis_failed = Signal(str)

    def __init__(self, models: list[ModelInfo], image: np.ndarray | None = None, image_name: str = "",
                 parent: QWidget | None = None, pool: JobPool | None = None, model: str | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Autoencoder lab")
        self.resize(1000, 760)
        self.models = list(models)
        self.image = image
        self.image_name = image_name
        self.inspection: Inspection | None = None
        self._own_pool = pool is None
        self.pool = pool if pool is not None else JobPool(self)
        self.job: Job | None = None
        self._build(model)
        self._update_image_label()

    # --- construction -------------------------------------------------------------------------------
    def _build(self, model: str | None) -> None:
        self.image_label = QLabel()
        open_button = QPushButton("Open image…")
        open_button.setToolTip("Analyse another image file (the window starts with the current image)")
        open_button.clicked.connect(self._pick_image)
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("The model whose code and reconstruction error are shown")
        ordered = sorted(self.models, key=lambda m: (not is_lab_model(m), m.name))
        for info in ordered:
            self.model_combo.addItem(info.name, info.name)
        if model is not None and self.model_combo.findData(model) >= 0:
            self.model_combo.setCurrentIndex(self.model_combo.findData(model))
        self.sigma_spin = QDoubleSpinBox()
        self.sigma_spin.setRange(0.0, 100.0)
        self.sigma_spin.setValue(25.0)
        self.sigma_spin.setPrefix("σ ")
        self.sigma_spin.setToolTip("Gaussian noise (0–255 scale) added to the image for the lab models' PSNR")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 999999)
        self.seed_spin.setPrefix("seed ")
        self.seed_spin.setToolTip("Seed of that noise: the same seed gives the same noise")
        self.analyse_button = QPushButton("Analyse")
        self.analyse_button.setDefault(True)
        self.analyse_button.clicked.connect(self.analyse)
        self.status_label = QLabel("")
        top = QHBoxLayout()
        for w in (self.image_label, open_button, QLabel("Model:"), self.model_combo, self.sigma_spin, self.seed_spin,
                  self.analyse_button):
            top.addWidget(w)
        top.setStretch(3, 1)

        self.grid_view = QLabel("Code activations appear here")
        self.grid_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid_view.setMinimumSize(VIEW_SIZE, VIEW_SIZE)
        self.bars = ActivationBars()
        self.error_view = QLabel("Reconstruction error appears here")
        self.error_view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.error_view.setMinimumSize(VIEW_SIZE, VIEW_SIZE)
        self.psnr_table = QTableWidget(0, len(PSNR_COLUMNS))
        self.psnr_table.setHorizontalHeaderLabels(PSNR_COLUMNS)
        self.psnr_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.psnr_table.verticalHeader().setVisible(False)
        self.psnr_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.psnr_table.setToolTip("Every lab model (names starting with 'lab-') on the image with seeded noise")

        grid = QGridLayout()
        grid.addWidget(self._group("Code activations (bottleneck feature maps)", self.grid_view), 0, 0)
        self.bars_group = self._group("Mean activation per code unit", self.bars)
        grid.addWidget(self.bars_group, 0, 1)
        grid.addWidget(self._group("Residual / anomaly map: squared reconstruction error", self.error_view), 1, 0)
        grid.addWidget(self._group("PSNR of each lab model on this image", self.psnr_table), 1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(grid, 1)
        layout.addWidget(self.status_label)
        self.analyse_button.setEnabled(self.model_combo.count() > 0)

    @staticmethod
    def _group(title: str, widget: QWidget) -> QGroupBox:
        box = QGroupBox(title)
        QVBoxLayout(box).addWidget(widget)
        return box

    def _update_image_label(self) -> None:
        if self.image is None:
            self.image_label.setText("No image: open one")
        else:
            h, w = self.image.shape[:2]
            self.image_label.setText(f"{self.image_name or 'image'} ({w}×{h})")
        self.analyse_button.setEnabled(self.image is not None and self.model_combo.count() > 0)

    # --- input --------------------------------------------------------------------------------------
    def _pick_image(self) -> None:
        patterns = " ".join(f"*{e}" for e in sorted(SUPPORTED_EXTENSIONS))
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", f"Images ({patterns})")
        if path:
            self.set_image_file(Path(path))

    def set_image_file(self, path: Path) -> None:
        """Analyse this image file from now on."""
        try:
            self.set_image(load_image(path).data, path.name)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is reported, never raised
            show_error(self, "Open image", str(exc))

    def set_image(self, image: np.ndarray, name: str = "") -> None:
        """Analyse this (H, W, C) image from now on."""
        self.image, self.image_name = image, name
        self._update_image_label()

    def selected_model(self) -> ModelInfo | None:
        """The ModelInfo chosen in the combo."""
        name = self.model_combo.currentData()
        return next((m for m in self.models if m.name == name), None)

    # --- analysis -----------------------------------------------------------------------------------
    def analyse(self) -> None:
        """Run the chosen model and every lab model on the image, off the GUI thread."""
        info = self.selected_model()
        if self.image is None or info is None:
            return
        if self.job is not None:
            self.job.cancel()
        lab = [m for m in self.models if is_lab_model(m)]
        work = partial(inspect_work, self.image, info, lab, self.sigma_spin.value(), self.seed_spin.value())
        job = Job(work, "lab")
        self.job = job
        job.progressed.connect(lambda ev, j=job: j is self.job and self.status_label.setText(ev.message))
        job.succeeded.connect(lambda res, j=job: self._finished(j, res))
        job.failed.connect(lambda exc, j=job: self._failed(j, exc))
        self.status_label.setText(f"Analysing with {info.name}…")
        self.pool.start(job)

    def _finished(self, job: Job, result: Inspection) -> None:
        if job is not self.job:
            return
        self.job = None
        self.show_inspection(result)
        lab = (f"lab PSNRs with gaussian σ={result.sigma:g}, seed {result.seed}" if result.psnr_rows else
               "no lab models found: run `denoiser lab --save-models` (or point DENOISER_MODELS_DIR at a lab's models/)")
        self.status_label.setText(f"{result.model}: code {result.code.shape[0]} units × {result.code.shape[1]}×"
                                  f"{result.code.shape[2]}, centre {result.image.shape[1]}×{result.image.shape[0]} crop; "
                                  f"{lab}")
        self.analysed.emit(result)

    def _failed(self, job: Job, exc: BaseException) -> None:
        if job is not self.job:
            return
        self.job = None
        self.status_label.setText(f"Analysis failed: {exc}")
        self.analysis_failed.emit(str(exc))

    def show_inspection(self, result: Inspection) -> None:
        """Draw a finished analysis."""
        self.inspection = result
        self.grid_image = to_qimage(activation_grid(result.code, result.in_unit_interval)[..., None])
        self.grid_view.setPixmap(scaled_pixmap(self.grid_image))
        self.bars.set_values(result.unit_means, result.rho)
        sparse = f" (sparse AE: target ρ = {result.rho:g})" if result.rho is not None else ""
        self.bars_group.setTitle(f"Mean activation per code unit{sparse}")
        self.error_image = to_qimage(heatmap(result.error))
        self.error_view.setPixmap(scaled_pixmap(self.error_image))
        self.psnr_table.setRowCount(len(result.psnr_rows))
        for r, row in enumerate(result.psnr_rows):
            values = [row.model, row.trained_on, f"{row.noisy_psnr:.2f}", f"{row.psnr:.2f}", f"{row.gain:+.2f}"]
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c >= 2:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.psnr_table.setItem(r, c, item)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.job is not None:
            self.job.cancel()
        if self._own_pool:
            self.pool.shutdown()
        super().closeEvent(event)
