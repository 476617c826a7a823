"""Non-blocking message boxes: the window stays responsive (and tests never hang on a modal loop)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def show_message(parent: QWidget | None, title: str, text: str, icon: QMessageBox.Icon = QMessageBox.Icon.Critical,
                 details: str = "") -> QMessageBox:
    """Open a window-modal message box without entering a nested event loop; it deletes itself when closed."""
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("messageBox")
    box.setTextFormat(Qt.TextFormat.PlainText)
    if details:
        box.setDetailedText(details)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def show_error(parent: QWidget | None, title: str, text: str, details: str = "") -> QMessageBox:
    """An error box."""
    return show_message(parent, title, text, QMessageBox.Icon.Critical, details)


def show_warning(parent: QWidget | None, title: str, text: str) -> QMessageBox:
    """A warning box."""
    return show_message(parent, title, text, QMessageBox.Icon.Warning)
