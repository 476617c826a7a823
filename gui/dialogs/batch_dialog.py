"""Batch denoising: a queue of files (or folders) through the engine's `run_batch`, off the GUI thread."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from denoiser.batch import BatchOptions, BatchSummary, FileResult, plan_batch, run_batch
from denoiser.blend import Blend
from denoiser.checkpoint import ModelInfo
from denoiser.imageio import SUPPORTED_EXTENSIONS
from denoiser.progress import Progress
from gui import settings
from gui.dialogs.job_dialog import JobDialog, format_eta
from gui.messages import show_warning
from gui.widgets.denoise_panel import model_tooltip, quality_combo
from gui.widgets.path_list import PathListBox

FORMATS = {"same": "Same as input (camera RAW → DNG)", "png": "PNG", "tiff": "TIFF", "jpeg": "JPEG", "webp": "WebP",
           "dng": "DNG (camera RAW only)"}
STATUS_COLOURS = {"done": QColor(46, 160, 67), "skipped": QColor(150, 150, 150), "failed": QColor(215, 58, 73)}
COL_FILE, COL_STATUS, COL_DETAIL = range(3)


def percent_box(share: float) -> QSpinBox:
    """A 0–100 % box showing a 0–1 share."""
    box = QSpinBox()
    box.setRange(0, 100)
    box.setSuffix(" %")
    box.setValue(round(share * 100))
    return box


class BatchDialog(JobDialog):
    """Pick inputs and options, then watch the queue; failures are listed and the rest go on."""

    batch_finished = Signal(str)  # "done" | "cancelled" | "failed"

    def __init__(self, models: list[ModelInfo], model: str | None = None, sigma: float | None = None,
                 strength: float = 1.0, device: str = "auto", parent: QWidget | None = None,
                 ensemble: int = 1, finish: Blend | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch denoise")
        self.resize(820, 640)
        self.device = device
        self.summary: BatchSummary | None = None
        self._started_at = 0.0
        self._build_inputs()
        self.finish = finish or Blend()
        self._build_options(models, model, sigma, strength, ensemble)
        self._build_queue()
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        top.addWidget(self.inputs_group, 3)
        top.addWidget(self.options_group, 2)
        layout.addLayout(top)
        layout.addWidget(self.queue_group, 1)

    # --- construction -------------------------------------------------------------------------------
    def _build_inputs(self) -> None:
        self.inputs_group = QGroupBox("Inputs")
        patterns = " ".join(f"*{e}" for e in sorted(SUPPORTED_EXTENSIONS))
        self.input_box = PathListBox("batch/input", files=True, tooltip="Files and folders to denoise (drop them here)",
                                     file_filter=f"Images ({patterns})")
        self.recursive = QCheckBox("Include subfolders")
        self.recursive.setToolTip("Search folders recursively; the output mirrors the folder tree")
        box = QVBoxLayout(self.inputs_group)
        box.addWidget(self.input_box)
        box.addWidget(self.recursive)

    def _build_options(self, models: list[ModelInfo], model: str | None, sigma: float | None, strength: float,
                       ensemble: int) -> None:
        self.options_group = QGroupBox("Output and options")
        self.output_edit = QLineEdit(settings.read("batch/output", "", str))
        self.output_edit.setPlaceholderText("Output folder")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose the output folder")
        browse.clicked.connect(self._pick_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_edit, 1)
        out_row.addWidget(browse)
        self.suffix_edit = QLineEdit(settings.read("batch/suffix", "_denoised", str))
        self.suffix_edit.setToolTip("Appended to each output file name")
        self.format_combo = QComboBox()
        for key, text in FORMATS.items():
            self.format_combo.addItem(text, key)
        self.model_combo = QComboBox()
        for info in models:
            self.model_combo.addItem(info.name, info.name)
            self.model_combo.setItemData(self.model_combo.count() - 1, model_tooltip(info), Qt.ItemDataRole.ToolTipRole)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(model)))
        self.auto_sigma = QCheckBox("Auto (per image)")
        self.auto_sigma.setChecked(sigma is None)
        self.sigma_box = QDoubleSpinBox()
        self.sigma_box.setRange(0, 75)
        self.sigma_box.setDecimals(1)
        self.sigma_box.setValue(25.0 if sigma is None else sigma)
        self.sigma_box.setEnabled(sigma is not None)
        self.auto_sigma.toggled.connect(lambda on: self.sigma_box.setEnabled(not on))
        sigma_row = QHBoxLayout()
        sigma_row.addWidget(self.auto_sigma)
        sigma_row.addWidget(self.sigma_box, 1)
        f = self.finish
        self.strength_box, self.luma_box, self.chroma_box, self.detail_box, self.grain_box = (
            percent_box(v) for v in (strength, f.luma, f.chroma, f.detail, f.grain))
        self.luma_box.setToolTip("Share of the luminance noise removed (lower keeps some grain)")
        self.chroma_box.setToolTip("Share of the colour noise removed")
        self.detail_box.setToolTip("Texture given back from what was removed")
        self.grain_box.setToolTip(f"Fresh luminance grain ({f.grain_size:g} px, as set in the Denoise panel), "
                                  "as a share of the noise removed; each image gets its own")
        self.quality_combo = quality_combo(ensemble)
        self.overwrite = QCheckBox("Overwrite existing outputs")
        self.overwrite.setToolTip("Off: files whose output already exists are skipped (resume a batch)")
        form = QFormLayout(self.options_group)
        form.addRow("Folder", out_row)
        form.addRow("Suffix", self.suffix_edit)
        form.addRow("Format", self.format_combo)
        form.addRow("Model", self.model_combo)
        form.addRow("Noise level", sigma_row)
        form.addRow("Strength", self.strength_box)
        for row_label, pairs in (("", (("Luminance", self.luma_box), ("Colour", self.chroma_box))),
                                 ("Finish", (("Detail", self.detail_box), ("Grain", self.grain_box)))):
            row = QHBoxLayout()
            for label, box in pairs:
                row.addWidget(QLabel(label))
                row.addWidget(box, 1)
            form.addRow(row_label, row)
        form.addRow("Quality", self.quality_combo)
        form.addRow(self.overwrite)

    def _build_queue(self) -> None:
        self.queue_group = QGroupBox("Queue")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["File", "Status", "Output / reason"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_FILE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_STATUS, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_DETAIL, QHeaderView.ResizeMode.Stretch)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        row = self._run_controls("Stop after the current tile; finished files are kept")
        box = QVBoxLayout(self.queue_group)
        box.addWidget(self.table, 1)
        box.addLayout(row)
        box.addWidget(self.summary_label)

    # --- inputs -------------------------------------------------------------------------------------
    def add_inputs(self, paths: list[str | Path]) -> None:
        """Append files or folders to the input list (duplicates ignored)."""
        self.input_box.add_paths(paths)

    def inputs(self) -> list[str]:
        """The input files and folders."""
        return self.input_box.paths()

    def _pick_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_edit.text())
        if folder:
            self.output_edit.setText(folder)

    # --- running ------------------------------------------------------------------------------------
    def options(self) -> BatchOptions:
        """The engine's batch options from the form."""
        return BatchOptions(
            output=Path(self.output_edit.text().strip()).expanduser(),
            model=str(self.model_combo.currentData() or "default"),
            sigma=None if self.auto_sigma.isChecked() else self.sigma_box.value(),
            strength=self.strength_box.value() / 100.0,
            luma_strength=self.luma_box.value() / 100.0,
            chroma_strength=self.chroma_box.value() / 100.0,
            detail=self.detail_box.value() / 100.0,
            grain=self.grain_box.value() / 100.0,
            grain_size=self.finish.grain_size,
            device=self.device,
            ensemble=int(self.quality_combo.currentData()),
            recursive=self.recursive.isChecked(),
            suffix=self.suffix_edit.text(),
            format=str(self.format_combo.currentData()),
            overwrite=self.overwrite.isChecked(),
        )

    def form_groups(self) -> list[QWidget]:
        return [self.inputs_group, self.options_group]

    def start(self) -> None:
        """Plan the queue, fill the table and run the batch in a worker thread."""
        if self.running:
            return
        inputs, opts = self.inputs(), self.options()
        if not inputs:
            show_warning(self, "Batch denoise", "Add some images or a folder first.")
            return
        if not self.output_edit.text().strip():
            show_warning(self, "Batch denoise", "Choose an output folder.")
            return
        plan = plan_batch(inputs, opts)
        if not plan:
            show_warning(self, "Batch denoise", "No images found in the inputs.")
            return
        settings.write("batch/output", str(opts.output))
        settings.write("batch/suffix", opts.suffix)
        self.table.setRowCount(len(plan))
        for row, (src, dst, problem) in enumerate(plan):
            self._set_row(row, src.name, "queued", str(dst) if dst else problem)
            self.table.item(row, COL_FILE).setToolTip(str(src))
        self.summary = None
        self.summary_label.setText("")
        self.progress.setValue(0)
        self._started_at = time.perf_counter()
        self._launch(lambda: run_batch(inputs, opts), "Batch")

    def _set_row(self, row: int, name: str | None, status: str, detail: str) -> None:
        if name is not None:
            self.table.setItem(row, COL_FILE, QTableWidgetItem(name))
        item = QTableWidgetItem(status)
        if status in STATUS_COLOURS:
            item.setForeground(STATUS_COLOURS[status])
        self.table.setItem(row, COL_STATUS, item)
        detail_item = QTableWidgetItem(detail)
        detail_item.setToolTip(detail)
        self.table.setItem(row, COL_DETAIL, detail_item)

    def row_status(self, row: int) -> str:
        """Status text of a queue row."""
        return self.table.item(row, COL_STATUS).text()

    def row_detail(self, row: int) -> str:
        """Output path or failure reason of a queue row."""
        return self.table.item(row, COL_DETAIL).text()

    def _on_progress(self, event: Progress) -> None:
        index = event.data.get("index")
        result: FileResult | None = event.data.get("result")
        if index is not None:
            if result is not None:
                detail = result.reason if result.status != "done" else f"{result.output}  ({result.seconds:.1f} s)"
                self._set_row(index, None, result.status, detail)
            elif self.row_status(index) != "running":
                self._set_row(index, None, "running", self.row_detail(index))
                self.table.scrollToItem(self.table.item(index, COL_STATUS))
        self.progress.setValue(int(event.fraction * 1000))
        elapsed = time.perf_counter() - self._started_at
        if event.fraction > 0.01:
            self.eta_label.setText(f"ETA {format_eta(elapsed * (1 - event.fraction) / event.fraction)}")

    def _finish(self, outcome: str, text: str) -> None:
        self._end_job()
        self.summary_label.setText(text)
        self.batch_finished.emit(outcome)

    def _on_done(self, summary: BatchSummary) -> None:
        self.summary = summary
        self.progress.setValue(1000)
        self.summary_label.setStyleSheet("color: #d73a49;" if summary.count("failed") else "")
        self._finish("done", summary.text().splitlines()[0] + (" (reasons in the table)" if summary.failed else ""))

    def _on_failed(self, exc: BaseException) -> None:
        self._finish("failed", f"Batch stopped: {exc}")
        show_warning(self, "Batch denoise", f"The batch stopped: {exc}")

    def _on_cancelled(self) -> None:
        for row in range(self.table.rowCount()):
            if self.row_status(row) in ("queued", "running"):
                self._set_row(row, None, "cancelled", self.row_detail(row))
        self._finish("cancelled", "Cancelled; finished files were kept.")
