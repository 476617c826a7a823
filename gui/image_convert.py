"""numpy ↔ QImage conversion for display, and the residual image."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from denoiser.imageio import to_uint8


def to_qimage(data: np.ndarray) -> QImage:
    """An (H, W, C) float image in [0, 1] (any bit depth) as an 8-bit QImage (gray or RGB) that owns its pixels."""
    a = np.asarray(data)
    if a.ndim == 2:
        a = a[..., None]
    u8 = np.ascontiguousarray(a if a.dtype == np.uint8 else to_uint8(a))
    h, w, c = u8.shape
    if c == 1:
        img = QImage(u8.data, w, h, u8.strides[0], QImage.Format.Format_Grayscale8)
    elif c == 3:
        img = QImage(u8.data, w, h, u8.strides[0], QImage.Format.Format_RGB888)
    else:
        raise ValueError(f"cannot display an image with {c} channels")
    return img.copy()  # detach from the numpy buffer


def from_qimage(image: QImage) -> np.ndarray:
    """A QImage (any format) as an (H, W, 3) float32 array in [0, 1]; alpha is dropped."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    buf = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : w * 3].reshape(h, w, 3).astype(np.float32) / 255.0


def residual(source: np.ndarray, result: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """|source − result| × gain, clipped to [0, 1]: what the denoiser removed, made visible."""
    return np.clip(np.abs(source.astype(np.float32) - result.astype(np.float32)) * gain, 0.0, 1.0)


HEAT_STOPS = np.array([[0.05, 0.05, 0.20], [0.20, 0.25, 0.75], [0.10, 0.65, 0.65], [0.55, 0.85, 0.25],
                       [1.00, 0.90, 0.15]], dtype=np.float32)  # dark blue (no noise) to yellow (the most)


def heat_overlay(source: np.ndarray, levels: np.ndarray, top: float) -> np.ndarray:
    """The per-region `levels` (from `denoiser.metrics.noise_map`) as a colour map over a dimmed grey copy of
    `source` (H, W, C floats), each region drawn as a block of the image's size; `top` maps to yellow."""
    h, w = source.shape[:2]
    t = np.clip(levels / max(top, 1e-6), 0.0, 1.0) * (len(HEAT_STOPS) - 1)
    lo = np.floor(t).astype(int).clip(0, len(HEAT_STOPS) - 2)
    frac = (t - lo)[..., None]
    colours = HEAT_STOPS[lo] * (1 - frac) + HEAT_STOPS[lo + 1] * frac
    by, bx = -(-h // levels.shape[0]), -(-w // levels.shape[1])
    big = np.repeat(np.repeat(colours, by, axis=0), bx, axis=1)[:h, :w]
    grey = source.astype(np.float32).mean(axis=2, keepdims=True)
    return np.clip(0.75 * big + 0.25 * grey, 0.0, 1.0)
