"""GUI test fixtures: throwaway settings (never the user's), a shown main window, a visibly-acting model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PySide6.QtCore import QSettings

torch.set_num_threads(1)  # the GUI tests use tiny models; leave the other cores alone


@pytest.fixture(scope="session", autouse=True)
def main_thread_gc(qapp) -> Iterator[object]:
    """Collect garbage only on the GUI thread, as the app does (a collection in a worker thread that
    frees a Qt object crashes the process)."""
    from gui.main_thread_gc import MainThreadCollector

    collector = MainThreadCollector(qapp)
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def temp_settings(tmp_path: Path) -> Iterator[Path]:
    """Point every QSettings format at a folder under tmp_path for the test's duration."""
    folder = tmp_path / "settings"
    previous = QSettings.defaultFormat()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder))
    yield folder
    QSettings.setDefaultFormat(previous)


@pytest.fixture
def darken_model(models_dir: Path) -> str:
    """A model whose output is the input minus 0.1 everywhere: results differ visibly from the input."""
    from denoiser.archs import build_arch
    from denoiser.checkpoint import save_checkpoint

    torch.manual_seed(0)
    net = build_arch("unet", in_channels=3, channels=[8, 16], blocks=1, bottleneck_blocks=1)
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.fill_(0.1)
    save_checkpoint(models_dir / "darken.pt", net, noise={"name": "gaussian"}, training={"steps": 123},
                    metrics={"val_psnr": 31.5}, description="test model that darkens by 0.1")
    return "darken"


@pytest.fixture
def window(qtbot, models_dir: Path, temp_settings: Path):
    """The real main window, shown offscreen, with the tiny test models."""
    from gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()
