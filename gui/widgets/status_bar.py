"""Status bar: messages, image info, zoom, and the running task's progress bar with Cancel."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar, QWidget

from denoiser.progress import Progress


class StatusBar(QStatusBar):
    """Shows task progress (determinate or busy) and a Cancel button while a task runs."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.task_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setFixedWidth(180)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running task (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.info_label = QLabel()
        self.info_label.setToolTip("Image size, channels and bit depth")
        self.zoom_label = QLabel("")
        self.zoom_label.setToolTip("Zoom (Ctrl+0 fit, Ctrl+1 100 %, Ctrl++ / Ctrl+− zoom)")
        self.zoom_label.setMinimumWidth(84)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for widget in (self.task_label, self.progress, self.cancel_button):
            self.addPermanentWidget(widget)
            widget.setVisible(False)
        self.addPermanentWidget(self.info_label)
        self.addPermanentWidget(self.zoom_label)

    def task_started(self, label: str) -> None:
        """Show a busy indicator for a new task."""
        self.task_label.setText(label + "…")
        self.progress.setRange(0, 0)
        for widget in (self.task_label, self.progress, self.cancel_button):
            widget.setVisible(True)
        self.cancel_button.setEnabled(True)

    def task_progress(self, label: str, event: Progress) -> None:
        """Update the bar from a progress event (busy when its total is unknown)."""
        if event.total > 0:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(event.fraction * 1000))
        else:
            self.progress.setRange(0, 0)
        text = f"{label}: {event.message}" if event.message else label + "…"
        self.task_label.setText(text)

    def task_cancelling(self) -> None:
        """Cancel was pressed; the task stops at its next step."""
        self.cancel_button.setEnabled(False)
        self.task_label.setText("Cancelling…")

    def task_finished(self) -> None:
        """Hide the progress widgets."""
        for widget in (self.task_label, self.progress, self.cancel_button):
            widget.setVisible(False)

    def set_zoom(self, zoom: float | None) -> None:
        """Show the zoom as a percentage."""
        self.zoom_label.setText("" if zoom is None else f"zoom {zoom * 100:.0f} %")
