"""Noisy / base / fine-tuned crops side by side, as the fine-tune dialog shows them during a run."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from gui.image_convert import to_qimage

THUMB_TITLES = {"noisy": "Noisy", "before": "Base model", "after": "Fine-tuned"}


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
