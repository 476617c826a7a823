"""Helpers shared by the GUI tests: test images and waiting for the window's background work."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageCms

from denoiser.imageio import Image, save_image


def pattern(h: int, w: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth colour image with some texture, float32 in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = [0.5 + 0.4 * np.sin(xx / 9 + seed), 0.5 + 0.4 * np.cos(yy / 13), (xx + yy) / (h + w)]
    return np.stack(base[:channels], axis=-1).astype(np.float32)


def exif_bytes(make: str = "TestCam") -> bytes:
    """EXIF with a camera make."""
    exif = PILImage.Exif()
    exif[271] = make
    return exif.tobytes()


@functools.cache
def icc_bytes() -> bytes:
    """An sRGB ICC profile (made once: its header holds a creation time)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def write_image(path: Path, h: int = 64, w: int = 96, channels: int = 3, bit_depth: int = 8,
                metadata: bool = False, data: np.ndarray | None = None) -> Path:
    """Write a test image through the engine (optionally with EXIF and ICC)."""
    pixels = pattern(h, w, channels) if data is None else data
    img = Image(pixels, None, bit_depth, exif_bytes() if metadata else None, icc_bytes() if metadata else None, "png")
    return save_image(img, path, bit_depth=bit_depth)


def write_corrupt(path: Path) -> Path:
    """A file with an image extension that is not an image."""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 4)
    return path


def wait_idle(qtbot, window, timeout: int = 20000) -> None:
    """Until no task and no background calculation is running."""
    qtbot.waitUntil(lambda: not window.tasks.busy and window.metrics_calc.idle and window.sigma_calc.idle
                    and window.level_calc.idle, timeout=timeout)


def open_image(qtbot, window, path: Path) -> None:
    """Open a file through the window and wait until it is shown."""
    window.open_path(path)
    qtbot.waitUntil(lambda: window.doc is not None and window.doc.image.path == Path(path), timeout=10000)
    wait_idle(qtbot, window)


def make_exif_reader(raw: bytes | None) -> dict[int, object]:
    """EXIF bytes -> tag dict."""
    exif = PILImage.Exif()
    if raw:
        exif.load(raw[6:] if raw.startswith(b"Exif\x00\x00") else raw)
    return dict(exif)


def shared_photo(name: str = "kodim01.png") -> Path:
    """A real photo from ../shared/data (read in place, never copied); skips when it is not there."""
    import pytest

    path = Path(__file__).resolve().parents[3] / "shared" / "data" / "test" / "Kodak24" / name
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path
