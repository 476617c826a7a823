"""Save options asked after the file name: bit depth (the input's kept by default) and JPEG/WebP quality."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QSpinBox, QWidget

from gui.files import depths_for

LOSSY = ("jpeg", "webp")


@dataclass
class SaveOptions:
    """How to write the file."""

    bit_depth: int | None
    quality: int = 95


def default_depth(fmt: str, input_depth: int) -> int:
    """The input's depth when the format holds it, else the deepest the format has below it."""
    depths = depths_for(fmt)
    return max((d for d in depths if d <= input_depth), default=depths[0])


def needs_dialog(fmt: str) -> bool:
    """Whether there is anything to choose for this format."""
    return len(depths_for(fmt)) > 1 or fmt in LOSSY


class SaveOptionsDialog(QDialog):
    """Bit depth combo and quality spin box for one output format."""

    def __init__(self, fmt: str, input_depth: int, quality: int = 95, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Save options")
        self.depth_combo = QComboBox()
        for depth in depths_for(fmt):
            kind = "float" if depth == 32 else "integer"
            suffix = "  (as the input)" if depth == input_depth else ""
            self.depth_combo.addItem(f"{depth}-bit {kind}{suffix}", depth)
        self.depth_combo.setCurrentIndex(self.depth_combo.findData(default_depth(fmt, input_depth)))
        self.depth_combo.setToolTip("Bits per channel; the input's depth is kept by default")
        self.quality_box = QSpinBox()
        self.quality_box.setRange(1, 100)
        self.quality_box.setValue(quality)
        self.quality_box.setEnabled(fmt in LOSSY)
        self.quality_box.setToolTip("Compression quality for JPEG and WebP (higher is better and larger)")
        form = QFormLayout(self)
        form.addRow(QLabel(f"Format: {fmt.upper()} (input: {input_depth}-bit)"))
        form.addRow("Bit depth", self.depth_combo)
        form.addRow("Quality", self.quality_box)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def options(self) -> SaveOptions:
        """The chosen options."""
        return SaveOptions(int(self.depth_combo.currentData()), self.quality_box.value())

    @staticmethod
    def ask(fmt: str, input_depth: int, quality: int, parent: QWidget | None = None) -> SaveOptions | None:
        """Ask (modal) when there is a choice; the defaults otherwise; None when cancelled."""
        if not needs_dialog(fmt):
            return SaveOptions(default_depth(fmt, input_depth), quality)
        dialog = SaveOptionsDialog(fmt, input_depth, quality, parent)
        return dialog.options() if dialog.exec() == QDialog.DialogCode.Accepted else None
