"""Three ways to compare two images, all on one shared zoom and pan: side by side, split, A/B toggle."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import QBoxLayout, QStackedWidget, QVBoxLayout, QWidget

from gui.widgets.image_view import BACKGROUND, PLACEHOLDER, ImageView, ViewState, draw_label

SIDE_BY_SIDE, SPLIT, AB = "side_by_side", "split", "ab"
MODES = (SIDE_BY_SIDE, SPLIT, AB)
MODE_TITLES = {SIDE_BY_SIDE: "Side by side", SPLIT: "Split", AB: "A/B toggle"}
GRAB_DISTANCE = 8


class SplitView(ImageView):
    """Image A left of a draggable divider, image B right of it, both at the same place and zoom."""

    divider_moved = Signal(float)

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(state, parent)
        self.image_b: QImage | None = None
        self.label_b = ""
        self.divider = 0.5  # fraction of the widget's width
        self._dragging_divider = False

    def set_pair(self, a: QImage | None, label_a: str, b: QImage | None, label_b: str) -> None:
        """Show `a` left and `b` right of the divider."""
        self.image, self.label, self.image_b, self.label_b = a, label_a, b, label_b
        self.update()

    def set_divider(self, fraction: float) -> None:
        """Move the divider to a fraction of the width (clamped to [0, 1])."""
        self.divider = min(max(fraction, 0.0), 1.0)
        self.divider_moved.emit(self.divider)
        self.update()

    def divider_x(self) -> float:
        """The divider's widget x coordinate."""
        return self.divider * self.width()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.image is None:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, PLACEHOLDER)
            return
        x = self.divider_x()
        self.paint_image(painter, self.image, QRectF(0, 0, x, self.height()))
        self.paint_image(painter, self.image_b or self.image, QRectF(x, 0, self.width() - x, self.height()))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
        painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        handle = QRectF(x - 11, self.height() / 2 - 11, 22, 22)
        painter.setBrush(QColor(30, 30, 30, 200))
        painter.drawEllipse(handle)
        painter.drawText(handle, Qt.AlignmentFlag.AlignCenter, "⇔")
        draw_label(painter, self.label, self.rect(), Qt.AlignmentFlag.AlignLeft)
        draw_label(painter, self.label_b, self.rect(), Qt.AlignmentFlag.AlignRight)

    def _near_divider(self, pos: QPointF) -> bool:
        return abs(pos.x() - self.divider_x()) <= GRAB_DISTANCE

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.image is not None and self._near_divider(event.position()):
            self._dragging_divider = True
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging_divider:
            self.set_divider(event.position().x() / max(1, self.width()))
            return
        if self._drag_from is None:
            near = self.image is not None and self._near_divider(event.position())
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.OpenHandCursor)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging_divider and event.button() == Qt.MouseButton.LeftButton:
            self._dragging_divider = False
            return
        super().mouseReleaseEvent(event)


class CompareView(QWidget):
    """A stack of the three compare modes over one `ViewState`."""

    mode_changed = Signal(str)
    ab_toggled = Signal(bool)  # True while B is shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = ViewState(self)
        self.left = ImageView(self.state)
        self.right = ImageView(self.state)
        self.split = SplitView(self.state)
        self.single = ImageView(self.state)
        pair = QWidget()
        self.pair_layout = QBoxLayout(QBoxLayout.Direction.LeftToRight, pair)
        self.pair_layout.setContentsMargins(0, 0, 0, 0)
        self.pair_layout.setSpacing(2)
        self.pair_layout.addWidget(self.left, 1)
        self.pair_layout.addWidget(self.right, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(pair)
        self.stack.addWidget(self.split)
        self.stack.addWidget(self.single)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.mode = SIDE_BY_SIDE
        self.showing_b = False
        self._a: tuple[str, QImage] | None = None
        self._b: tuple[str, QImage] | None = None
        for view in (self.left, self.right, self.split, self.single):
            view.resized.connect(self._refit)

    # --- content ------------------------------------------------------------------------------------
    def set_images(self, a: tuple[str, QImage] | None, b: tuple[str, QImage] | None) -> None:
        """The A and B images with their captions (None clears the view)."""
        self._a, self._b = a, b if b is not None else a
        size = a[1].size() if a is not None else QSize()
        self.state.set_image_size(size)
        self._orient_pair()
        self._refresh()

    def _refresh(self) -> None:
        la, ia = self._a if self._a else ("", None)
        lb, ib = self._b if self._b else ("", None)
        self.left.set_image(ia, f"A · {la}" if la else "")
        self.right.set_image(ib, f"B · {lb}" if lb else "")
        self.split.set_pair(ia, f"A · {la}" if la else "", ib, f"B · {lb}" if lb else "")
        shown = (lb, ib) if self.showing_b else (la, ia)
        hint = "  (B or Space toggles)"
        self.single.set_image(shown[1], f"{'B' if self.showing_b else 'A'} · {shown[0]}{hint}" if shown[0] else "")

    @property
    def has_image(self) -> bool:
        """Whether an image is shown."""
        return self._a is not None

    # --- modes --------------------------------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """Switch to one of MODES."""
        if mode not in MODES:
            raise ValueError(f"unknown compare mode '{mode}'")
        if mode == self.mode:
            return
        self.mode = mode
        self.stack.setCurrentIndex(MODES.index(mode))
        self._refit()
        self.mode_changed.emit(mode)

    def toggle_ab(self) -> None:
        """Swap between A and B in the A/B mode (switching to that mode first)."""
        if self.mode != AB:
            self.set_mode(AB)
        else:
            self.showing_b = not self.showing_b
        self._refresh()
        self.ab_toggled.emit(self.showing_b)

    def active_view(self) -> ImageView:
        """The view whose size and visible area count (the left one when side by side)."""
        return {SIDE_BY_SIDE: self.left, SPLIT: self.split, AB: self.single}[self.mode]

    def visible_image_rect(self) -> QRect:
        """The image region visible in the active view."""
        return self.active_view().visible_image_rect()

    def _orient_pair(self) -> None:
        """Stack the side-by-side views top/bottom when that shows the image larger (wide images)."""
        iw, ih = self.state.image_size.width(), self.state.image_size.height()
        w, h = self.stack.width(), self.stack.height()
        if iw <= 0 or ih <= 0 or w <= 0 or h <= 0:
            return
        beside = min(w / 2 / iw, h / ih)
        stacked = min(w / iw, h / 2 / ih)
        direction = QBoxLayout.Direction.TopToBottom if stacked > beside * 1.05 else QBoxLayout.Direction.LeftToRight
        if direction != self.pair_layout.direction():
            self.pair_layout.setDirection(direction)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._orient_pair()

    # --- zoom ---------------------------------------------------------------------------------------
    def fit(self) -> None:
        """Fit the whole image into the active view."""
        self.state.fit(self.active_view().size())

    def _refit(self) -> None:
        if self.state.fit_mode and self.has_image:
            self.fit()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and self.mode == AB:
            self.toggle_ab()
            return
        super().keyPressEvent(event)
