"""An image view that paints through a shared `ViewState`, so several views zoom and pan as one."""

from __future__ import annotations

import math

from PySide6.QtCore import QObject, QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QResizeEvent, QWheelEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

BACKGROUND = QColor(38, 38, 42)
PLACEHOLDER = "Open an image (Ctrl+O), drop one here, paste one (Ctrl+V),\nor try Help › Open sample"


class ViewState(QObject):
    """Zoom (screen pixels per image pixel) and the image point shown at the centre of every view."""

    changed = Signal()
    MIN_ZOOM = 0.02
    MAX_ZOOM = 32.0
    STEP = 1.25

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.zoom = 1.0
        self.center = QPointF(0.0, 0.0)
        self.image_size = QSize()
        self.fit_mode = True  # follow the window size until the user zooms or pans

    def set_image_size(self, size: QSize) -> None:
        """A new image: keep zoom and centre when the size is unchanged, else centre it."""
        if size != self.image_size:
            self.image_size = QSize(size)
            self.center = QPointF(size.width() / 2, size.height() / 2)
            self.changed.emit()

    def _clamp(self) -> None:
        w, h = self.image_size.width(), self.image_size.height()
        self.center = QPointF(min(max(self.center.x(), 0.0), float(w)), min(max(self.center.y(), 0.0), float(h)))

    def set_zoom(self, zoom: float, anchor: QPointF | None = None, offset: QPointF | None = None) -> None:
        """Set the zoom; the image point `anchor` stays at `offset` from a view's centre (the cursor)."""
        zoom = min(max(zoom, self.MIN_ZOOM), self.MAX_ZOOM)
        if anchor is not None and offset is not None:
            self.center = QPointF(anchor.x() - offset.x() / zoom, anchor.y() - offset.y() / zoom)
        self.zoom = zoom
        self.fit_mode = False
        self._clamp()
        self.changed.emit()

    def zoom_by(self, factor: float, anchor: QPointF | None = None, offset: QPointF | None = None) -> None:
        """Multiply the zoom by `factor` (about the view centre, or about `anchor`)."""
        self.set_zoom(self.zoom * factor, anchor, offset)

    def zoom_in(self) -> None:
        """One step closer."""
        self.zoom_by(self.STEP)

    def zoom_out(self) -> None:
        """One step further."""
        self.zoom_by(1 / self.STEP)

    def actual_size(self) -> None:
        """100 %: one image pixel per screen pixel."""
        self.set_zoom(1.0)

    def pan_by(self, dx: float, dy: float) -> None:
        """Move the image by (dx, dy) screen pixels."""
        self.center = QPointF(self.center.x() - dx / self.zoom, self.center.y() - dy / self.zoom)
        self.fit_mode = False
        self._clamp()
        self.changed.emit()

    def fit(self, viewport: QSize) -> None:
        """Show the whole image in a viewport of this size, centred."""
        w, h = self.image_size.width(), self.image_size.height()
        if w <= 0 or h <= 0 or viewport.width() <= 0 or viewport.height() <= 0:
            return
        self.zoom = min(max(min(viewport.width() / w, viewport.height() / h), self.MIN_ZOOM), self.MAX_ZOOM)
        self.center = QPointF(w / 2, h / 2)
        self.fit_mode = True
        self.changed.emit()


def draw_label(painter: QPainter, text: str, rect: QRect, align: Qt.AlignmentFlag) -> None:
    """A caption on a translucent rounded box in a corner of `rect`."""
    if not text:
        return
    font = QFont(painter.font())
    font.setBold(True)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    box = QRectF(0, 0, metrics.horizontalAdvance(text) + 16, metrics.height() + 8)
    x = rect.left() + 8 if align & Qt.AlignmentFlag.AlignLeft else rect.right() - box.width() - 8
    box.moveTo(x, rect.top() + 8)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(0, 0, 0, 150))
    painter.drawRoundedRect(box, 5, 5)
    painter.setPen(QColor(240, 240, 240))
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


class ImageView(QWidget):
    """Paints one image at the shared zoom and centre; wheel zooms about the cursor, drag pans."""

    resized = Signal()

    def __init__(self, state: ViewState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.image: QImage | None = None
        self.label = ""
        self._drag_from: QPointF | None = None
        state.changed.connect(self.update)
        self.setMinimumSize(120, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.setMouseTracking(True)

    def set_image(self, image: QImage | None, label: str = "") -> None:
        """Show `image` (None: the placeholder) captioned with `label`."""
        self.image = image
        self.label = label
        self.update()

    # --- geometry -----------------------------------------------------------------------------------
    def _origin(self) -> QPointF:
        """Widget position of image point (0, 0)."""
        z = self.state.zoom
        return QPointF(self.width() / 2 - self.state.center.x() * z, self.height() / 2 - self.state.center.y() * z)

    def to_image(self, pos: QPointF) -> QPointF:
        """Image coordinates of a widget position."""
        o, z = self._origin(), self.state.zoom
        return QPointF((pos.x() - o.x()) / z, (pos.y() - o.y()) / z)

    def visible_image_rect(self) -> QRect:
        """The part of the image this view shows, in whole image pixels (empty without an image)."""
        if self.image is None:
            return QRect()
        tl, br = self.to_image(QPointF(0, 0)), self.to_image(QPointF(self.width(), self.height()))
        x0, y0 = max(0, math.floor(tl.x())), max(0, math.floor(tl.y()))
        x1, y1 = min(self.image.width(), math.ceil(br.x())), min(self.image.height(), math.ceil(br.y()))
        return QRect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))

    # --- painting -----------------------------------------------------------------------------------
    def paint_image(self, painter: QPainter, image: QImage, clip: QRectF) -> None:
        """Draw the visible part of `image` inside `clip` (widget coordinates)."""
        o, z = self._origin(), self.state.zoom
        target = QRectF(o.x(), o.y(), image.width() * z, image.height() * z).intersected(clip)
        if target.isEmpty():
            return
        source = QRectF((target.x() - o.x()) / z, (target.y() - o.y()) / z, target.width() / z, target.height() / z)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, z < 1.0)
        painter.drawImage(target, image, source)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.image is None:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, PLACEHOLDER)
            return
        self.paint_image(painter, self.image, QRectF(self.rect()))
        draw_label(painter, self.label, self.rect(), Qt.AlignmentFlag.AlignLeft)

    # --- interaction --------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if not steps or self.image is None:
            return
        pos = event.position()
        offset = QPointF(pos.x() - self.width() / 2, pos.y() - self.height() / 2)
        self.state.zoom_by(ViewState.STEP**steps, self.to_image(pos), offset)
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.image is not None:
            self._drag_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_from is not None:
            pos = event.position()
            self.state.pan_by(pos.x() - self._drag_from.x(), pos.y() - self._drag_from.y())
            self._drag_from = pos
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._drag_from = None
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        super().mouseReleaseEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()
