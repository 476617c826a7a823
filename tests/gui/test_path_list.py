"""The path list both dialogs use: adds without duplicates, drops, Delete and Remove, and its signal."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from gui.widgets.path_list import PathListBox


def test_paths_are_added_once_dropped_in_and_removed_by_key_or_button(qtbot, tmp_path: Path) -> None:
    box = PathListBox("test/paths", files=True, tooltip="inputs")
    qtbot.addWidget(box)
    box.show()
    changes = []
    box.changed.connect(lambda: changes.append(box.paths()))
    box.add_paths([tmp_path / "a", tmp_path / "b", tmp_path / "a"])
    assert box.paths() == [str(tmp_path / "a"), str(tmp_path / "b")] and len(changes) == 1
    box.add_paths([tmp_path / "b"])
    assert len(changes) == 1  # nothing new, no signal

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "c.png")), QUrl.fromLocalFile(str(tmp_path / "a"))])
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    box.list.dropEvent(drop)
    assert box.paths() == [str(tmp_path / p) for p in ("a", "b", "c.png")]

    box.list.item(0).setSelected(True)
    qtbot.keyClick(box.list, Qt.Key.Key_Delete)
    assert box.paths() == [str(tmp_path / p) for p in ("b", "c.png")]
    box.list.item(1).setSelected(True)
    qtbot.mouseClick(box.remove_button, Qt.MouseButton.LeftButton)
    assert box.paths() == [str(tmp_path / "b")] and changes[-1] == box.paths()


def test_a_folder_only_list_hides_add_files(qtbot) -> None:
    box = PathListBox("test/folders", files=False, tooltip="folders")
    qtbot.addWidget(box)
    box.show()
    assert not box.add_files_button.isVisible() and box.add_folder_button.isVisible()
