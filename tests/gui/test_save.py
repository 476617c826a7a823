"""Saving: 16-bit kept, EXIF/ICC kept, JPEG quality, and the original is never overwritten."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from guihelpers import icc_bytes, make_exif_reader, open_image, wait_idle, write_image
from PySide6.QtWidgets import QMessageBox

from denoiser.imageio import load_image
from gui import files
from gui.dialogs.save_options import SaveOptions, SaveOptionsDialog, default_depth


@pytest.fixture
def denoised(qtbot, window, darken_model, tmp_path: Path):
    window.refresh_models(darken_model)
    path = write_image(tmp_path / "in" / "photo16.png", h=48, w=64, bit_depth=16, metadata=True)
    open_image(qtbot, window, path)
    window.denoise()
    wait_idle(qtbot, window)
    assert window.doc.raw_result is not None
    return window


@pytest.mark.parametrize("name", ["out.png", "out.tif"])
def test_save_16bit_keeps_depth_and_metadata(qtbot, denoised, tmp_path: Path, monkeypatch, name: str) -> None:
    target = tmp_path / "out" / name
    target.parent.mkdir()
    asked = []
    monkeypatch.setattr(files, "ask_save_path", lambda *a: target)
    monkeypatch.setattr(SaveOptionsDialog, "ask",
                        lambda fmt, depth, q, parent=None: asked.append((fmt, depth)) or SaveOptions(default_depth(fmt, depth), q))
    denoised.acts.save_result.trigger()
    wait_idle(qtbot, denoised)
    assert asked == [("png" if name.endswith("png") else "tiff", 16)]
    saved = load_image(target)
    assert saved.bit_depth == 16
    np.testing.assert_allclose(saved.data, np.clip(denoised.doc.result(), 0, 1), atol=1 / 65535)
    assert make_exif_reader(saved.exif).get(271) == "TestCam"
    assert saved.icc_profile == icc_bytes()
    assert "Saved" in denoised.status.currentMessage()
    reopened = tmp_path / "out" / name
    open_image(qtbot, denoised, reopened)
    assert denoised.doc.image.bit_depth == 16


def test_save_refuses_the_original(qtbot, denoised, monkeypatch) -> None:
    original = denoised.doc.image.path
    before = original.read_bytes()
    monkeypatch.setattr(files, "ask_save_path", lambda *a: original)
    monkeypatch.setattr(SaveOptionsDialog, "ask", lambda *a, **k: pytest.fail("must refuse before asking options"))
    denoised.acts.save_result.trigger()
    assert not denoised.tasks.busy
    boxes = [b for b in denoised.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "never overwritten" in boxes[0].text()
    assert "Refused to overwrite the original" in denoised.status.currentMessage()
    denoised.save_to(original.parent / "." / original.name, denoised.doc.result(), SaveOptions(16))  # other spelling
    assert not denoised.tasks.busy
    assert original.read_bytes() == before


def test_save_jpeg_with_quality(qtbot, denoised, tmp_path: Path) -> None:
    low, high = tmp_path / "low.jpg", tmp_path / "high.jpg"
    for path, quality in ((low, 20), (high, 98)):
        denoised.save_to(path, denoised.doc.result(), SaveOptions(8, quality))
        wait_idle(qtbot, denoised)
    assert load_image(high).bit_depth == 8
    assert low.stat().st_size < high.stat().st_size
    assert make_exif_reader(load_image(high).exif).get(271) == "TestCam"


def test_save_options_dialog_defaults(qtbot) -> None:
    dialog = SaveOptionsDialog("png", 16)
    qtbot.addWidget(dialog)
    assert dialog.options() == SaveOptions(16, 95)
    assert not dialog.quality_box.isEnabled()
    jpeg = SaveOptionsDialog("jpeg", 16, 80)
    qtbot.addWidget(jpeg)
    assert jpeg.options() == SaveOptions(8, 80) and jpeg.quality_box.isEnabled()
    assert default_depth("tiff", 32) == 32 and default_depth("png", 8) == 8


def test_preview_result_is_not_saved(qtbot, window, monkeypatch, tmp_path: Path) -> None:
    open_image(qtbot, window, write_image(tmp_path / "p.png"))
    window.preview_region()
    wait_idle(qtbot, window)
    monkeypatch.setattr(files, "ask_save_path", lambda *a: pytest.fail("no dialog for a preview"))
    window.save_result()
    assert any("Only a region" in b.text() for b in window.findChildren(QMessageBox) if b.isVisible())


def test_with_extension_from_filter() -> None:
    assert files.with_extension("/x/name", files.SAVE_FILTERS["tiff"]) == Path("/x/name.tif")
    assert files.with_extension("/x/name.jpg", files.SAVE_FILTERS["png"]) == Path("/x/name.jpg")
