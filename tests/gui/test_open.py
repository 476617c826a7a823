"""Opening images: file, 16-bit display, drag and drop, recent files, clipboard, sample, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from guihelpers import open_image, wait_idle, write_corrupt, write_image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from denoiser.imageio import to_uint8
from gui.image_convert import from_qimage, to_qimage


def test_open_16bit_png_is_displayed_from_full_precision(qtbot, window, tmp_path: Path) -> None:
    h, w = 40, 50
    data = np.zeros((h, w, 3), np.float32)
    data[..., 0] = np.linspace(0, 1, w)[None, :]  # full-range gradient: truncating to 8 bits would show
    data[..., 1] = 0.5
    data[..., 2] = 1.0 - data[..., 0]
    path = write_image(tmp_path / "deep.png", bit_depth=16, data=data)
    open_image(qtbot, window, path)
    assert window.doc.image.bit_depth == 16
    shown = window.compare.left.image
    assert (shown.width(), shown.height()) == (w, h)
    expected = to_uint8(window.doc.image.data)
    for x in (0, 17, 33, w - 1):
        colour = shown.pixelColor(x, 5)
        assert (colour.red(), colour.green(), colour.blue()) == tuple(expected[5, x])
    assert "16-bit" in window.status.info_label.text()
    assert window.windowTitle().startswith("deep.png")


def test_drop_file_opens_it(qtbot, window, tmp_path: Path) -> None:
    path = write_image(tmp_path / "dropped.png")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.image.path == path)


def test_recent_files_menu_reopens(qtbot, window, tmp_path: Path) -> None:
    first, second = write_image(tmp_path / "first.png"), write_image(tmp_path / "second.png")
    open_image(qtbot, window, first)
    open_image(qtbot, window, second)
    titles = [a.text() for a in window.recent_menu.actions() if a.text()]
    assert titles[:2] == ["second.png", "first.png"]
    next(a for a in window.recent_menu.actions() if a.text() == "first.png").trigger()
    qtbot.waitUntil(lambda: window.doc.image.path == first)


def test_recent_file_that_no_longer_opens_leaves_the_list(qtbot, window, tmp_path: Path) -> None:
    kept, gone = write_image(tmp_path / "kept.png"), write_image(tmp_path / "gone.png")
    open_image(qtbot, window, kept)
    open_image(qtbot, window, gone)
    write_corrupt(gone)
    next(a for a in window.recent_menu.actions() if a.text() == "gone.png").trigger()
    qtbot.waitUntil(lambda: not window.tasks.busy)
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "gone.png" in boxes[0].text()
    boxes[0].close()
    assert [a.text() for a in window.recent_menu.actions() if a.text()][0] == "kept.png"
    assert not any(a.text() == "gone.png" for a in window.recent_menu.actions())


def test_paste_image_from_clipboard(qtbot, window) -> None:
    arr = np.zeros((30, 20, 3), np.uint8)
    arr[..., 1] = 200
    QApplication.clipboard().setImage(to_qimage(arr))
    window.acts.paste.trigger()
    assert window.doc is not None
    assert window.doc.image.data.shape == (30, 20, 3)
    assert window.doc.image.path is None
    np.testing.assert_allclose(window.doc.image.data[0, 0], [0, 200 / 255, 0], atol=1e-6)


def test_corrupt_file_shows_error_and_window_survives(qtbot, window, tmp_path: Path) -> None:
    bad = write_corrupt(tmp_path / "broken.png")
    window.open_path(bad)
    qtbot.waitUntil(lambda: not window.tasks.busy)
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "broken.png" in boxes[0].text()
    assert "Cannot open broken.png" in window.status.currentMessage()
    boxes[0].close()
    open_image(qtbot, window, write_image(tmp_path / "good.png"))  # still usable


def test_open_sample(qtbot, window) -> None:
    window.acts.open_sample.trigger()
    qtbot.waitUntil(lambda: window.doc is not None, timeout=10000)
    wait_idle(qtbot, window)
    assert window.doc.image.path.name == "sample.png"
    assert window.doc.image.data.shape == (512, 768, 3)


def test_qimage_round_trip_gray_and_colour() -> None:
    gray = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4, 1)
    img = to_qimage(gray)
    assert img.format() == QImage.Format.Format_Grayscale8
    assert img.pixelColor(3, 2).red() == 255
    colour = np.random.default_rng(0).random((5, 7, 3)).astype(np.float32)
    back = from_qimage(to_qimage(colour))
    np.testing.assert_allclose(back, to_uint8(colour) / 255.0, atol=1e-6)
