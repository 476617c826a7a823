"""The toolbar above the images: compare mode, what A and B show, residual and zoom."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QToolBar, QWidget


class ViewToolbar(QToolBar):
    """Mode and zoom actions (owned by the window) plus the A/B image choosers and the zoom readout."""

    a_chosen = Signal(str)
    b_chosen = Signal(str)

    def __init__(self, mode_actions: list[QAction], residual: QAction, zoom_actions: list[QAction],
                 parent: QWidget | None = None) -> None:
        super().__init__("View", parent)
        self.setObjectName("viewToolbar")
        self.setMovable(False)
        for action in mode_actions:
            self.addAction(action)
        self.addSeparator()
        self.a_combo = QComboBox()
        self.a_combo.setToolTip("Image shown as A (left / first)")
        self.b_combo = QComboBox()
        self.b_combo.setToolTip("Image shown as B (right / second)")
        for combo in (self.a_combo, self.b_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.addWidget(QLabel(" A "))
        self.addWidget(self.a_combo)
        self.addWidget(QLabel(" B "))
        self.addWidget(self.b_combo)
        self.addSeparator()
        self.addAction(residual)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)
        for action in zoom_actions:
            self.addAction(action)
        self.addSeparator()
        self.zoom_label = QLabel("–")
        self.zoom_label.setMinimumWidth(52)
        self.zoom_label.setToolTip("Current zoom")
        self.addWidget(self.zoom_label)
        self.a_combo.textActivated.connect(self.a_chosen)
        self.b_combo.textActivated.connect(self.b_chosen)

    def set_choices(self, names: list[str], a: str, b: str) -> None:
        """The images available, and which ones A and B show."""
        for combo, current in ((self.a_combo, a), (self.b_combo, b)):
            combo.blockSignals(True)
            combo.clear()
            combo.addItems(names)
            combo.setCurrentIndex(max(0, combo.findText(current)))
            combo.setEnabled(bool(names))
            combo.blockSignals(False)

    def set_zoom(self, zoom: float | None) -> None:
        """Show the zoom as a percentage."""
        self.zoom_label.setText("–" if zoom is None else f"{zoom * 100:.0f} %")
