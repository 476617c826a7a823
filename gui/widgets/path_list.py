"""A list of files and folders with Add/Remove buttons, drag-and-drop and the Delete key.

The batch and fine-tune dialogs both use it for their inputs. The add buttons open file dialogs that
start in the folder last used for the same `settings_key`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui import settings


class _DropList(QListWidget):
    """The list itself: dropped files and folders are added, Delete removes the selection."""

    dropped = Signal(list)
    delete_pressed = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptDrops(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DropOnly)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:  # noqa: N802, ANN001 (Qt override)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.dropped.emit(paths)
        else:
            super().dropEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt override)
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.delete_pressed.emit()
        else:
            super().keyPressEvent(event)


class PathListBox(QWidget):
    """Files and/or folders chosen by the user, in order and without duplicates."""

    changed = Signal()

    def __init__(self, settings_key: str, *, files: bool, tooltip: str, folder_caption: str = "Add folder",
                 file_filter: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._key, self._filter, self._folder_caption = settings_key, file_filter, folder_caption
        self.list = _DropList()
        self.list.setToolTip(tooltip)
        self.list.dropped.connect(self.add_paths)
        self.list.delete_pressed.connect(self.remove_selected)
        self.add_files_button = QPushButton("Add files…")
        self.add_files_button.clicked.connect(self._pick_files)
        self.add_files_button.setVisible(files)
        self.add_folder_button = QPushButton("Add folder…")
        self.add_folder_button.clicked.connect(self._pick_folder)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected entries (Delete)")
        self.remove_button.clicked.connect(self.remove_selected)
        row = QHBoxLayout()
        for w in (self.add_files_button, self.add_folder_button, self.remove_button):
            row.addWidget(w)
        row.addStretch(1)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.list)
        box.addLayout(row)

    def paths(self) -> list[str]:
        """The entries, in the order they were added."""
        return [self.list.item(i).text() for i in range(self.list.count())]

    def add_paths(self, paths: Sequence[str | Path]) -> None:
        """Append paths, skipping those already listed."""
        have = set(self.paths())
        added = False
        for p in map(str, paths):
            if p not in have:
                self.list.addItem(p)
                have.add(p)
                added = True
        if added:
            self.changed.emit()

    def remove_selected(self) -> None:
        """Drop the selected entries."""
        items = self.list.selectedItems()
        for item in items:
            self.list.takeItem(self.list.row(item))
        if items:
            self.changed.emit()

    def _pick_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", settings.read(self._key, "", str), self._filter)
        if files:
            settings.write(self._key, str(Path(files[0]).parent))
            self.add_paths(files)

    def _pick_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self._folder_caption, settings.read(self._key, "", str))
        if folder:
            settings.write(self._key, folder)
            self.add_paths([folder])
