"""Help › About: the application and the current model's card."""

from __future__ import annotations

from html import escape

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QMessageBox, QWidget

from denoiser.checkpoint import ModelInfo
from denoiser.resources import icon_path


def model_card_html(info: ModelInfo | None) -> str:
    """Description, architecture, training steps and validation PSNR of a model, as HTML."""
    if info is None:
        return "<p><i>No model is installed.</i> Train one with <code>denoiser train</code>.</p>"
    steps = info.training.get("steps")
    val = info.metrics.get("val_psnr")
    rows = [
        ("Model", f"{escape(info.name)} ({escape(info.source)})"),
        ("Description", escape(info.description or "–")),
        ("Architecture", f"{escape(info.arch)}, {info.in_channels}-channel input"),
        ("Noise", escape(", ".join(f"{k}={v}" for k, v in info.noise.items()) or "–")),
        ("Training steps", "–" if steps is None else f"{int(steps):,}"),
        ("Validation PSNR", "–" if val is None else f"{float(val):.2f} dB"),
        ("File", escape(str(info.path))),
    ]
    body = "".join(f"<tr><td><b>{k}</b>&nbsp;&nbsp;</td><td>{v}</td></tr>" for k, v in rows)
    return f"<h4>Current model</h4><table>{body}</table>"


def about_html(info: ModelInfo | None) -> str:
    """The whole About text."""
    return (
        "<h3>Denoiser Studio</h3>"
        "<p>Removes noise from photographs with a convolutional denoising autoencoder.</p>"
        + model_card_html(info)
    )


def show_about(parent: QWidget | None, info: ModelInfo | None) -> QMessageBox:
    """Open the About box (non-blocking)."""
    box = QMessageBox(parent)
    box.setObjectName("aboutBox")
    box.setWindowTitle("About Denoiser Studio")
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_html(info))
    icon = QPixmap(str(icon_path("app.png")))
    if not icon.isNull():
        box.setIconPixmap(icon.scaled(64, 64, Qt.AspectRatioMode.KeepAspectRatio,
                                      Qt.TransformationMode.SmoothTransformation))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
