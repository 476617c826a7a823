"""Compare modes, the shared zoom and pan, split divider, A/B toggle and residual view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from guihelpers import open_image, wait_idle, write_image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from denoiser.imageio import to_uint8
from gui.document import NOISY, ORIGINAL, RESIDUAL, RESULT
from gui.widgets.compare_view import AB, SIDE_BY_SIDE, SPLIT


@pytest.fixture
def opened(qtbot, window, tmp_path: Path):
    open_image(qtbot, window, write_image(tmp_path / "img.png", h=120, w=160))
    return window


def wheel(view, pos: QPointF, steps: int) -> None:
    """Send a mouse-wheel event of `steps` notches at `pos`."""
    event = QWheelEvent(pos, view.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * steps), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, event)


def test_fit_actual_and_zoom_shortcuts_share_one_zoom(qtbot, opened) -> None:
    win, state = opened, opened.compare.state
    view = win.compare.left
    assert state.fit_mode
    assert state.zoom == pytest.approx(min(view.width() / 160, view.height() / 120))
    win.acts.actual.trigger()
    assert state.zoom == 1.0
    assert win.status.zoom_label.text() == "zoom 100 %" and win.toolbar.zoom_label.text() == "100 %"
    win.acts.zoom_in.trigger()
    assert state.zoom == pytest.approx(1.25)
    win.acts.zoom_out.trigger()
    win.acts.zoom_out.trigger()
    assert state.zoom == pytest.approx(0.8)
    assert [s.toString() for s in win.acts.fit.shortcuts()] == ["Ctrl+0"]
    assert "Ctrl++" in [s.toString() for s in win.acts.zoom_in.shortcuts()]
    win.acts.fit.trigger()
    assert state.fit_mode


def test_wheel_zooms_about_the_cursor_in_both_views(qtbot, opened) -> None:
    win = opened
    left, right = win.compare.left, win.compare.right
    win.acts.actual.trigger()
    cursor = QPointF(left.width() * 0.3, left.height() * 0.4)
    before = left.to_image(cursor)
    wheel(left, cursor, 2)
    assert win.compare.state.zoom == pytest.approx(1.25**2)
    after = left.to_image(cursor)
    assert (after.x(), after.y()) == pytest.approx((before.x(), before.y()), abs=1e-6)
    # the right view shows the same image point at the same place, so they are in step
    same = right.to_image(cursor)
    assert (same.x(), same.y()) == pytest.approx((after.x(), after.y()), abs=1e-6)
    assert win.toolbar.zoom_label.text() == "156 %"


def test_drag_pans_all_views(qtbot, opened) -> None:
    win = opened
    win.acts.zoom_in.trigger()
    win.acts.zoom_in.trigger()
    left, right = win.compare.left, win.compare.right
    start = right.to_image(QPointF(50, 50))
    qtbot.mousePress(left, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(left, QPoint(80, 90))
    qtbot.mouseRelease(left, Qt.MouseButton.LeftButton, pos=QPoint(80, 90))
    moved = right.to_image(QPointF(50, 50))
    z = win.compare.state.zoom
    assert (moved.x() - start.x(), moved.y() - start.y()) == pytest.approx((20 / z, 10 / z), abs=1e-6)


def test_three_compare_modes_and_split_divider(qtbot, opened) -> None:
    win = opened
    compare = win.compare
    win.acts.modes[SPLIT].trigger()
    assert compare.mode == SPLIT and compare.stack.currentWidget() is compare.split
    split = compare.split
    zoom_in_split = compare.state.zoom
    x = int(split.divider_x())
    qtbot.mousePress(split, Qt.MouseButton.LeftButton, pos=QPoint(x, 40))
    qtbot.mouseMove(split, QPoint(split.width() // 4, 40))
    qtbot.mouseRelease(split, Qt.MouseButton.LeftButton, pos=QPoint(split.width() // 4, 40))
    assert split.divider == pytest.approx(0.25, abs=0.01)
    assert compare.state.zoom == zoom_in_split  # dragging the divider does not pan or zoom
    win.acts.modes[AB].trigger()
    assert compare.mode == AB and compare.stack.currentWidget() is compare.single
    win.acts.modes[SIDE_BY_SIDE].trigger()
    assert compare.mode == SIDE_BY_SIDE
    assert win.acts.modes[SIDE_BY_SIDE].isChecked()


def test_ab_toggle_with_b_and_space(qtbot, opened) -> None:
    win = opened
    win.noise_panel.seed_box.setValue(3)
    win.add_noise()
    wait_idle(qtbot, win)
    assert (win.view_a, win.view_b) == (ORIGINAL, NOISY)
    win.acts.modes[AB].trigger()
    single = win.compare.single
    assert single.label.startswith("A · Original")
    win.acts.toggle_ab.trigger()
    assert single.label.startswith("B · Noisy")
    single.setFocus()
    qtbot.keyClick(single, Qt.Key.Key_Space)
    assert single.label.startswith("A · Original")
    assert single.image is win.compare.left.image


def denoised_64x80(qtbot, win, darken_model, tmp_path: Path) -> None:
    """A 64×80 image opened in `win` and denoised by the darken model (it takes 0.1 off)."""
    win.refresh_models(darken_model)
    open_image(qtbot, win, write_image(tmp_path / "img.png", h=64, w=80))
    win.denoise()
    wait_idle(qtbot, win)


def test_residual_view_shows_what_was_removed(qtbot, window, darken_model, tmp_path: Path) -> None:
    win = window
    denoised_64x80(qtbot, win, darken_model, tmp_path)
    assert (win.view_a, win.view_b) == (ORIGINAL, RESULT)
    assert not win.acts.residual.isChecked()
    win.acts.residual.trigger()
    assert win.view_b == RESIDUAL and win.toolbar.b_combo.currentText() == RESIDUAL
    expected = to_uint8(np.clip(np.abs(win.doc.source - win.doc.result()) * 4, 0, 1))
    colour = win.compare.right.image.pixelColor(10, 10)
    assert (colour.red(), colour.green(), colour.blue()) == tuple(expected[10, 10])
    assert colour.red() == 102  # |x - (x - 0.1)| * 4 = 0.4
    win.acts.residual.trigger()
    assert win.view_b == RESULT


def test_a_and_b_choosers(qtbot, opened) -> None:
    win = opened
    win.add_noise()
    wait_idle(qtbot, win)
    assert [win.toolbar.a_combo.itemText(i) for i in range(win.toolbar.a_combo.count())] == [ORIGINAL, NOISY]
    win.toolbar.a_chosen.emit(NOISY)
    assert win.compare.left.label.startswith("A · Noisy")


def test_side_by_side_stacks_wide_images(qtbot, window, tmp_path: Path) -> None:
    win = window
    win.resize(1000, 700)
    open_image(qtbot, win, write_image(tmp_path / "wide.png", h=40, w=400))
    qtbot.waitUntil(lambda: win.compare.right.y() > win.compare.left.y())
    assert win.compare.right.x() == win.compare.left.x()
    open_image(qtbot, win, write_image(tmp_path / "tall.png", h=400, w=100))
    qtbot.waitUntil(lambda: win.compare.right.x() > win.compare.left.x())
    assert win.compare.right.y() == win.compare.left.y()


def test_noise_map_view_shows_the_noise_removed_region_by_region(qtbot, window, darken_model, tmp_path: Path) -> None:
    from gui.document import NOISE_BLOCK, NOISE_MAP

    win = window
    denoised_64x80(qtbot, win, darken_model, tmp_path)
    assert NOISE_MAP in [win.toolbar.b_combo.itemText(i) for i in range(win.toolbar.b_combo.count())]
    win.set_views(ORIGINAL, NOISE_MAP)
    levels = win.doc.noise_levels()
    assert levels.shape == (-(-64 // NOISE_BLOCK), -(-80 // NOISE_BLOCK))
    assert float(levels.max()) == pytest.approx(25.5, abs=0.1)  # the darken model takes 0.1 off where it can
    assert float(levels.min()) > 5
    assert win.compare.right.image.width() == 80 and "yellow" in win.compare.right.label
    assert f"{levels.max():.1f} levels rms" in win.compare.right.label
    before = win.compare.right.image.pixelColor(5, 5)
    win.denoise_panel.strength_slider.setValue(0)  # nothing removed: the whole map goes to blue
    qtbot.waitUntil(lambda: win.doc.strength == 0.0)
    wait_idle(qtbot, win)
    assert float(win.doc.noise_levels().max()) == 0.0 and win.compare.right.image.pixelColor(5, 5) != before
