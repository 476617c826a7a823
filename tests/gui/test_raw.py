"""A camera RAW in the app: it opens as its develop; Denoise runs the chosen model on that develop, or, with
"denoise the sensor mosaic" ticked, the raw model on the Bayer mosaic, and then Save offers DNG (the denoised
mosaic, for a raw editor) besides the develop's formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from guihelpers import open_image, pattern, wait_idle
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from denoiser.archs import build_arch
from denoiser.checkpoint import save_checkpoint
from denoiser.imageio import load_image
from gui import files
from gui.dialogs.save_options import SaveOptions, SaveOptionsDialog

raw = pytest.importorskip("denoiser.raw")
pytest.importorskip("rawpy")


@pytest.fixture
def raw_window(qtbot, window, models_dir: Path, tmp_path: Path):
    """The window with a 4-plane `raw` model that lowers every raw sample by 0.01, and a noisy DNG open."""
    net = build_arch("unet", in_channels=4, channels=[8, 16], blocks=1, bottleneck_blocks=1)
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.fill_(0.01)
    save_checkpoint(models_dir / "raw.pt", net, noise={"name": "raw"}, training={"steps": 1}, metrics={},
                    description="test raw model")
    window.refresh_models()
    rgb = pattern(96, 128).astype(np.float32) / 255.0 * 0.8 + 0.1
    path = raw.write_dng(raw.mosaic_from_image(rgb, shot=0.003, read=1e-4, seed=2), tmp_path / "shot.dng")
    open_image(qtbot, window, path)
    return window


def test_a_raw_opens_as_its_develop_and_the_raw_model_is_not_offered_for_images(raw_window) -> None:
    doc = raw_window.doc
    assert doc.is_camera_raw and doc.image.data.shape == (96, 128, 3)
    developed = raw.develop(raw.dng_bytes(raw.read_raw(doc.image.path))) / 65535.0  # as a raw result develops
    np.testing.assert_allclose(doc.image.data, developed, atol=1e-6)
    names = [m.name for m in raw_window.denoise_panel.models]
    assert "raw" not in names and raw_window.raw_model().name == "raw"
    panel = raw_window.denoise_panel
    assert not panel.raw_mosaic.isHidden() and "'raw'" in panel.raw_mosaic.text()
    assert not panel.raw_mosaic.isChecked() and panel.model_combo.isEnabled()  # by default the develop, by the model
    panel.raw_mosaic.click()
    assert panel.raw_on_mosaic() and not panel.model_combo.isEnabled()  # the image model does not apply to a mosaic
    panel.raw_mosaic.click()
    assert not panel.raw_on_mosaic() and panel.model_combo.isEnabled()


def test_an_ordinary_image_after_a_raw_gets_the_model_choice_back(qtbot, raw_window, tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "plain.png"
    Image.fromarray((pattern(64, 64) * 255).astype(np.uint8)).save(png)
    open_image(qtbot, raw_window, png)
    panel = raw_window.denoise_panel
    assert panel.raw_mosaic.isHidden() and not panel.raw_on_mosaic() and panel.model_combo.isEnabled()


def test_by_default_the_develop_is_denoised_by_the_chosen_model_and_saved_as_a_develop(
        qtbot, raw_window, tmp_path: Path, monkeypatch) -> None:
    from denoiser.checkpoint import load_model
    from denoiser.inference import denoise

    panel = raw_window.denoise_panel
    assert panel.model_name() == "photo"
    qtbot.mouseClick(panel.denoise_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, raw_window)
    doc = raw_window.doc
    assert doc.raw_mosaic is None and "raw mosaic" not in panel.info_label.text()
    assert "tick 'Denoise the mosaic' to save a DNG" in panel.info_label.text()  # the way to a DNG is told
    expected = denoise(doc.image.data, load_model(panel.selected_model().path), precision="fp32").image
    np.testing.assert_allclose(doc.result(), expected, atol=2e-2)  # photo on the develop (app precision: auto)
    offered = []
    target = tmp_path / "shot_denoised.tif"
    monkeypatch.setattr(files, "ask_save_path", lambda *a: offered.append(a[4]) or target)
    monkeypatch.setattr(SaveOptionsDialog, "ask", lambda fmt, depth, q, parent=None: SaveOptions(depth, q))
    raw_window.acts.save_result.trigger()
    wait_idle(qtbot, raw_window)
    assert offered == [False]  # no DNG offered: there is no denoised mosaic
    saved = load_image(target)
    assert saved.bit_depth == 16 and np.abs(saved.data - doc.result()).max() <= 1 / 65535 + 1e-6


def test_denoise_runs_on_the_mosaic_and_save_writes_a_dng(qtbot, raw_window, tmp_path: Path, monkeypatch) -> None:
    raw_window.denoise_panel.raw_mosaic.click()
    raw_window.denoise()
    wait_idle(qtbot, raw_window)
    doc = raw_window.doc
    assert doc.raw_mosaic is not None and "raw mosaic" in raw_window.denoise_panel.info_label.text()
    original = raw.read_raw(doc.image.path)
    lowered = original.normalised() - doc.raw_mosaic.normalised()
    assert np.median(lowered) == pytest.approx(0.01, abs=2e-4)  # the raw model ran on the mosaic
    assert doc.result().shape == doc.image.data.shape and not np.allclose(doc.result(), doc.image.data)
    offered = []
    target = tmp_path / "out" / "shot_denoised.dng"
    target.parent.mkdir()
    monkeypatch.setattr(files, "ask_save_path", lambda *a: offered.append(a[3:]) or target)
    raw_window.acts.save_result.trigger()
    wait_idle(qtbot, raw_window)
    assert offered == [("dng", True)]
    saved = raw.read_raw(target)
    assert np.array_equal(saved.cfa, doc.raw_mosaic.cfa) and np.array_equal(saved.pattern, original.pattern)
    assert "Saved" in raw_window.status.currentMessage()

    raw_window.denoise_panel.grain_slider.setValue(30)  # grain needs a develop: a DNG is refused, not made wrong
    again = tmp_path / "out" / "grain.dng"
    monkeypatch.setattr(files, "ask_save_path", lambda *a: again)
    raw_window.acts.save_result.trigger()
    boxes = [b for b in raw_window.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and "a DNG holds the sensor mosaic" in boxes[0].text() and not again.exists()
    for box in boxes:
        box.close()

    raw_window.denoise_panel.grain_slider.setValue(0)
    raw_window.denoise_panel.strength_slider.setValue(50)  # Strength applies to the mosaic itself
    half = tmp_path / "out" / "half.dng"
    monkeypatch.setattr(files, "ask_save_path", lambda *a: half)
    raw_window.acts.save_result.trigger()
    wait_idle(qtbot, raw_window)
    halfway = original.normalised() - raw.read_raw(half).normalised()
    assert np.median(halfway) == pytest.approx(0.005, abs=2e-4)
