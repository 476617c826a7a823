"""The fine-tune dialog's live plot: training loss and validation score against the step."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from denoiser.training.events import FinetuneProgress

LOSS_COLOUR = QColor(40, 110, 200)
SCORE_COLOUR = QColor(220, 120, 30)


class LossCurve(QWidget):
    """Training loss (blue line, left scale) and validation score (orange dots, right scale; dashed: the base)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.losses: list[tuple[float, float]] = []
        self.scores: list[tuple[float, float]] = []
        self.before: float | None = None
        self.steps = 1
        self.setMinimumSize(320, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setToolTip("Training loss (blue) and validation score (orange; dashed: the base model)")

    def sizeHint(self) -> QSize:
        return QSize(480, 180)

    def clear(self) -> None:
        """Forget every point."""
        self.losses, self.scores, self.before, self.steps = [], [], None, 1
        self.update()

    def add(self, event: FinetuneProgress) -> None:
        """Take the loss, score, base score and step count from a fine-tuning event."""
        self.steps = max(self.steps, event.steps or 1)
        if event.before is not None and math.isfinite(event.before):
            self.before = event.before
        if event.loss is not None and math.isfinite(event.loss):
            self.losses.append((float(event.step), event.loss))
        if event.val_score is not None and math.isfinite(event.val_score):
            self.scores.append((float(event.step), event.val_score))
        self.update()

    @staticmethod
    def _range(values: list[float]) -> tuple[float, float]:
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.1 or max(abs(hi) * 0.05, 1e-6)
        return lo - pad, hi + pad

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        plot = QRectF(self.rect()).adjusted(56, 8, -48, -20)
        p.fillRect(self.rect(), self.palette().base())
        p.setPen(QPen(self.palette().mid().color()))
        p.drawRect(plot)
        text = self.palette().text().color()
        p.setPen(text)
        p.drawText(QRectF(plot.left(), plot.bottom() + 2, plot.width(), 16), Qt.AlignmentFlag.AlignCenter,
                   f"step (of {self.steps})")
        if not self.losses and not self.scores and self.before is None:
            p.drawText(plot, Qt.AlignmentFlag.AlignCenter, "The loss curve appears when training starts")
            return

        def x_of(step: float) -> float:
            return plot.left() + plot.width() * min(1.0, step / max(1, self.steps))

        if self.losses:
            lo, hi = self._range([v for _s, v in self.losses])
            lo = max(lo, 0.0)
            path = QPainterPath()
            for i, (s, v) in enumerate(self.losses):
                point = QPointF(x_of(s), plot.bottom() - plot.height() * (v - lo) / (hi - lo))
                if i == 0:
                    path.moveTo(point)
                else:
                    path.lineTo(point)
            p.setPen(QPen(LOSS_COLOUR, 1.5))
            p.drawPath(path)
            p.drawText(QRectF(0, plot.top(), 52, 16), Qt.AlignmentFlag.AlignRight, f"{hi:.2g}")
            p.drawText(QRectF(0, plot.bottom() - 16, 52, 16), Qt.AlignmentFlag.AlignRight, f"{lo:.2g}")
        values = [v for _s, v in self.scores] + ([self.before] if self.before is not None else [])
        if values:
            lo, hi = self._range(values)

            def y_of(v: float) -> float:
                return plot.bottom() - plot.height() * (v - lo) / (hi - lo)

            p.setPen(QPen(SCORE_COLOUR, 1))
            if self.before is not None:
                pen = QPen(SCORE_COLOUR, 1, Qt.PenStyle.DashLine)
                p.setPen(pen)
                p.drawLine(QPointF(plot.left(), y_of(self.before)), QPointF(plot.right(), y_of(self.before)))
            p.setPen(QPen(SCORE_COLOUR, 1))
            p.setBrush(SCORE_COLOUR)
            for s, v in self.scores:
                p.drawEllipse(QPointF(x_of(s), y_of(v)), 3, 3)
            p.drawText(QRectF(plot.right() + 2, plot.top(), 46, 16), Qt.AlignmentFlag.AlignLeft, f"{hi:.2f}")
            p.drawText(QRectF(plot.right() + 2, plot.bottom() - 16, 46, 16), Qt.AlignmentFlag.AlignLeft, f"{lo:.2f}")
