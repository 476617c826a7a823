"""Noise lab and denoising: seeded noise, metrics, strength without re-running, preview region, cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from guihelpers import open_image, shared_photo, wait_idle, write_image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QSpinBox

from denoiser.noise import NOISE_MODELS
from gui import jobs
from gui.document import RESULT


@pytest.fixture
def opened(qtbot, window, tmp_path: Path):
    open_image(qtbot, window, write_image(tmp_path / "img.png", h=96, w=128))
    return window


def test_every_noise_model_gets_its_parameter_editors(window) -> None:
    panel = window.noise_panel
    assert [panel.type_combo.itemData(i) for i in range(panel.type_combo.count())] == list(NOISE_MODELS)
    for name, model in NOISE_MODELS.items():
        panel.set_noise_name(name)
        assert list(panel.editors) == [p.name for p in model.params]
        for p in model.params:
            box = panel.editors[p.name]
            assert box.toolTip() == p.help
            if isinstance(box, QCheckBox):
                assert p.integer and box.isChecked() == bool(p.default)
            else:
                assert isinstance(box, QSpinBox if p.integer else QDoubleSpinBox)
                assert (box.minimum(), box.maximum()) == pytest.approx((p.minimum, p.maximum))
        assert panel.params() == pytest.approx(model.defaults())


def test_add_noise_is_seeded_and_measured(qtbot, opened) -> None:
    win, panel = opened, opened.noise_panel
    panel.set_noise_name("gaussian")
    panel.set_param("sigma", 30)
    panel.seed_box.setValue(42)
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, win)
    first = win.doc.noisy.copy()
    noise_std = float(np.std(first - win.doc.image.data)) * 255
    assert 20 < noise_std < 32  # clipping at 0/1 trims a little
    psnr_text = panel.metric_labels["noisy"][0].text()
    assert psnr_text.endswith(" dB") and 15 < float(psnr_text.split()[0]) < 25
    assert 0 < float(panel.metric_labels["noisy"][1].text()) < 1
    assert panel.metric_labels["denoised"][0].text() == "–"
    assert win.denoise_panel.sigma_label.text().startswith("estimated σ ≈ ")
    win.add_noise()
    wait_idle(qtbot, win)
    np.testing.assert_array_equal(win.doc.noisy, first)
    panel.seed_box.setValue(43)
    win.add_noise()
    wait_idle(qtbot, win)
    assert not np.array_equal(win.doc.noisy, first)
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)
    assert win.doc.noisy is None and not panel.metrics.isVisible()


def test_denoise_then_strength_blends_without_rerunning(qtbot, opened, darken_model, monkeypatch) -> None:
    win, panel = opened, opened.denoise_panel
    calls = []
    real = jobs.denoise_array

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(jobs, "denoise_array", counting)
    win.refresh_models(darken_model)
    assert panel.model_name() == "darken"
    win.add_noise()
    wait_idle(qtbot, win)
    qtbot.mouseClick(panel.denoise_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, win)
    assert len(calls) == 1
    source = win.doc.source
    darker = np.clip(source - 0.1, 0, 1)  # results stay within the input's range
    np.testing.assert_allclose(win.doc.result(), darker, atol=1e-4)
    assert panel.info_label.text().startswith("Denoised in ")
    assert "(estimated)" in panel.info_label.text()
    removed = float(panel.info_label.text().split("noise removed ")[1].split()[0])
    assert removed == pytest.approx(float(np.sqrt(np.mean(np.square((source - darker) * 255)))), abs=0.2)  # the darkening by 0.1 is what was taken out
    assert win.noise_panel.metric_labels["denoised"][0].text().endswith("dB")
    before = win.compare.right.image.pixelColor(20, 20).red()
    panel.strength_slider.setValue(50)
    qtbot.waitUntil(lambda: win.doc.strength == 0.5)
    wait_idle(qtbot, win)
    assert len(calls) == 1
    np.testing.assert_allclose(win.doc.result(), 0.5 * darker + 0.5 * source, atol=1e-4)
    after = win.compare.right.image.pixelColor(20, 20).red()
    assert after - before in (12, 13)  # half of 0.1 × 255 brighter again
    assert "strength 50 %" in win.compare.right.label


def test_luminance_and_colour_sliders_blend_apart_without_rerunning(qtbot, opened, darken_model, monkeypatch) -> None:
    from dataclasses import replace

    from denoiser.blend import apply_blend, luma

    win, panel = opened, opened.denoise_panel
    calls = []
    real = jobs.denoise_array
    monkeypatch.setattr(jobs, "denoise_array", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    win.refresh_models(darken_model)
    win.add_noise()
    wait_idle(qtbot, win)
    qtbot.mouseClick(panel.denoise_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, win)
    source, full = win.doc.source, win.doc.result().copy()
    panel.chroma_slider.setValue(0)
    qtbot.waitUntil(lambda: win.doc.chroma == 0.0)
    wait_idle(qtbot, win)
    out = win.doc.result()
    change = full - source
    inside = ((source > 0.1) & (source < 0.9)).all(-1)  # away from the range clip
    expected = source + luma(change)  # only the luminance part of the change: the input's colour kept
    np.testing.assert_allclose(out[inside], expected[inside], atol=1e-4)
    assert "colour 0 %" in win.compare.right.label
    panel.luma_slider.setValue(0)
    qtbot.waitUntil(lambda: win.doc.luma == 0.0)
    np.testing.assert_allclose(win.doc.result(), source, atol=1e-6)  # neither part kept: the input
    panel.luma_slider.setValue(100)
    panel.chroma_slider.setValue(100)
    qtbot.waitUntil(lambda: win.doc.luma == 1.0 and win.doc.chroma == 1.0)
    np.testing.assert_allclose(win.doc.result(), full, atol=1e-6)
    win.doc.set_result(win.doc.reference.copy())  # as if the added noise were removed: grain scales to it
    panel.detail_slider.setValue(50)
    panel.grain_slider.setValue(40)
    qtbot.waitUntil(lambda: win.doc.blend.detail == 0.5 and win.doc.blend.grain == 0.4)
    grainy = win.doc.result().copy()
    plain = apply_blend(win.doc.source, win.doc.reference, replace(win.doc.blend, grain=0.0))
    assert float(np.std(luma(grainy - plain))) > 1 / 255 and "grain 40 %" in win.doc.view_caption(RESULT)
    panel.grain_size.setValue(3.0)
    qtbot.waitUntil(lambda: win.doc.blend.grain_size == 3.0)
    assert not np.allclose(win.doc.result(), grainy, atol=1e-4)  # coarser grain
    assert len(calls) == 1  # every blend without running the model again
    dialog = win.open_batch()
    assert (dialog.detail_box.value(), dialog.grain_box.value()) == (50, 40)
    assert dialog.options().grain_size == 3.0
    dialog.close()
    panel.detail_slider.setValue(0)
    panel.grain_slider.setValue(0)
    dialog = win.open_batch()
    assert (dialog.luma_box.value(), dialog.chroma_box.value()) == (100, 100)
    dialog.chroma_box.setValue(30)
    assert dialog.options().chroma_strength == pytest.approx(0.3)
    dialog.close()


def test_manual_sigma_reaches_the_model(qtbot, opened) -> None:
    win, panel = opened, opened.denoise_panel
    panel.set_sigma(40)
    assert panel.sigma() == 40.0 and panel.sigma_slider.isEnabled()
    win.denoise()
    wait_idle(qtbot, win)
    assert "σ 40.0 (manual)" in panel.info_label.text()


def test_quality_passes_reach_denoise_preview_and_batch(qtbot, opened, darken_model, monkeypatch) -> None:
    from gui import settings

    win, panel = opened, opened.denoise_panel
    win.refresh_models(darken_model)
    passes = []
    real = jobs.denoise_array
    monkeypatch.setattr(jobs, "denoise_array", lambda *a, **k: (passes.append(k["ensemble"]), real(*a, **k))[1])
    assert panel.ensemble() == 1 and panel.quality_combo.count() == 4
    panel.quality_combo.setCurrentIndex(panel.quality_combo.findData(8))
    assert settings.read("denoise/ensemble", 1, int) == 8
    qtbot.mouseClick(panel.denoise_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, win)
    assert " · 8 passes · " in panel.info_label.text()
    np.testing.assert_allclose(win.doc.result(), np.clip(win.doc.source - 0.1, 0, 1), atol=1e-4)  # the same model, averaged
    qtbot.mouseClick(panel.preview_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, win)
    assert passes == [8, 8]
    dialog = win.open_batch()
    assert dialog.quality_combo.currentData() == 8
    dialog.quality_combo.setCurrentIndex(dialog.quality_combo.findData(2))
    dialog.output_edit.setText(str(win.doc.image.path.parent / "out"))
    assert dialog.options().ensemble == 2
    dialog.close()


def test_an_estimate_beyond_the_model_says_what_is_used(qtbot, opened, monkeypatch) -> None:
    win = opened
    qtbot.mouseClick(win.denoise_panel.denoise_button, Qt.MouseButton.LeftButton)  # a clean photo: small σ
    wait_idle(qtbot, win)
    panel = win.denoise_panel
    assert panel.auto_sigma.isChecked() and "beyond" not in panel.sigma_label.text()
    panel.set_estimated_sigma(210.9)  # what a dithered 1-bit scan reads as
    assert panel.sigma_label.text().startswith("estimated σ ≈ 210.9: beyond the model, 75 used · noise ≈ ")
    sigmas = []
    real = jobs.denoise_array
    monkeypatch.setattr(jobs, "denoise_array", lambda *a, **k: (sigmas.append(k["sigma"]), real(*a, **k))[1])
    qtbot.mouseClick(panel.preview_button, Qt.MouseButton.LeftButton)  # the preview uses the σ the label says
    wait_idle(qtbot, win)
    assert sigmas == [75.0]
    panel.set_estimated_sigma(30.0)
    assert panel.sigma_label.text().startswith("estimated σ ≈ 30.0 · noise ≈ ")


def test_quality_choice_is_restored_in_a_new_window(qtbot, window) -> None:
    from gui.main_window import MainWindow

    window.denoise_panel.quality_combo.setCurrentIndex(window.denoise_panel.quality_combo.findData(4))
    again = MainWindow()
    qtbot.addWidget(again)
    assert again.denoise_panel.ensemble() == 4
    assert again.denoise_panel.quality_combo.currentData() == 4
    again.close()


def test_preview_region_denoises_only_the_visible_area(qtbot, window, darken_model, tmp_path: Path,
                                                       monkeypatch) -> None:
    win = window
    win.refresh_models(darken_model)
    open_image(qtbot, win, write_image(tmp_path / "big.png", h=300, w=400))
    seen = []
    real = jobs.denoise_array
    monkeypatch.setattr(jobs, "denoise_array", lambda img, *a, **k: (seen.append(img.shape), real(img, *a, **k))[1])
    win.acts.actual.trigger()
    win.compare.state.set_zoom(4.0)
    rect = win.compare.visible_image_rect()
    assert 0 < rect.width() < 400 and 0 < rect.height() < 300
    qtbot.mouseClick(win.denoise_panel.preview_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, win)
    margin = jobs.PREVIEW_MARGIN
    assert seen and seen[0][0] <= rect.height() + 2 * margin and seen[0][1] <= rect.width() + 2 * margin
    diff = np.abs(win.doc.result() - win.doc.source).max(axis=2) > 0.05
    ys, xs = np.nonzero(diff)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (rect.left(), rect.top(), rect.right() + 1,
                                                                rect.bottom() + 1)
    assert win.doc.result_is_preview
    assert "preview region" in win.compare.right.label


def test_cancel_a_long_denoise(qtbot, window, tmp_path: Path) -> None:
    win = window
    rng = np.random.default_rng(0)
    open_image(qtbot, win, write_image(tmp_path / "large.png", data=rng.random((1024, 1024, 3), dtype=np.float32)))
    win.denoise_panel.tile_box.setValue(160)  # the smallest tile: hundreds of steps
    events = []
    win.tasks.progressed.connect(lambda _label, ev: events.append(ev))
    win.denoise()
    assert win.status.cancel_button.isVisible() and win.acts.cancel.isEnabled()
    qtbot.waitUntil(lambda: any(ev.total > 1 for ev in events), timeout=20000)
    total = next(ev.total for ev in events if ev.total > 1)
    with qtbot.waitSignal(win.tasks.finished, timeout=5000) as finished:
        qtbot.mouseClick(win.status.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args[1] == "cancelled"
    assert max(ev.done for ev in events) < total
    assert win.doc.raw_result is None
    assert "cancelled" in win.status.currentMessage()
    assert not win.status.cancel_button.isVisible()
    assert win.denoise_panel.denoise_button.isEnabled()
    win.noise_panel.set_noise_name("salt-pepper")
    win.add_noise()  # the window still works
    wait_idle(qtbot, win)
    assert win.doc.noisy is not None


def test_failing_denoise_reports_instead_of_crashing(qtbot, opened, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (simulated)")
        yield

    monkeypatch.setattr(jobs, "denoise_array", broken)
    opened.denoise()
    wait_idle(qtbot, opened)
    assert "Denoising failed: RuntimeError: CUDA out of memory" in opened.status.currentMessage()
    assert opened.doc.raw_result is None


def test_real_photo_noise_and_denoise_metrics(qtbot, window) -> None:
    win = window
    open_image(qtbot, win, shared_photo())
    win.noise_panel.set_noise_name("gaussian")
    win.noise_panel.set_param("sigma", 15)
    win.add_noise()
    wait_idle(qtbot, win)
    noisy_psnr = float(win.noise_panel.metric_labels["noisy"][0].text().split()[0])
    assert 24 < noisy_psnr < 26  # σ = 15 on a real photo
    assert 14 < win.denoise_panel.estimated_sigma < 17
    win.denoise()
    wait_idle(qtbot, win)
    assert win.noise_panel.metric_labels["denoised"][0].text().endswith("dB")


def test_tile_box_offers_auto_and_only_tiles_the_tiler_keeps(qtbot, window) -> None:
    from denoiser.inference import min_tile

    box = window.denoise_panel.tile_box
    box.setValue(box.minimum())
    assert box.text() == "Auto" and window.denoise_panel.tile() is None
    box.stepUp()
    assert window.denoise_panel.tile() == min_tile()
    box.setValue(min_tile() - 20)  # typed below the minimum: shown and used as the minimum, never silently changed
    assert box.value() == min_tile() and window.denoise_panel.tile() == min_tile()
    box.setValue(512)
    assert window.denoise_panel.tile() == 512


def test_auto_shows_the_noise_level_the_model_reads(qtbot, window, models_dir: Path, tmp_path: Path) -> None:
    """A real camera JPEG: the blind σ reads a fraction of its noise; the label adds what the model removes."""
    import re

    from denoiser.checkpoint import load_model
    from denoiser.noise_level import model_noise_level

    polyu = Path(__file__).resolve().parents[3] / "shared" / "data" / "train" / "real" / "PolyU40" / "noisy"
    if not polyu.is_dir():
        pytest.skip(f"shared data not found: {polyu}")
    from PIL import Image as PILImage

    a = np.asarray(PILImage.open(polyu / "Nikon800_wall.jpg").convert("RGB"))
    h, w = a.shape[:2]
    path = tmp_path / "wall.png"
    PILImage.fromarray(a[h // 2 - 192 : h // 2 + 192, w // 2 - 192 : w // 2 + 192]).save(path)
    import shutil

    from tests.helpers import REPO

    for name in ("photo", "gaussian-color"):  # the tests' tiny models shadow the bundled ones by name
        shutil.copy(REPO / "resources" / "models" / f"{name}.pt", models_dir / f"bundled-{name}.pt")
    window.refresh_models("bundled-photo")
    panel = window.denoise_panel
    open_image(qtbot, window, path)
    assert panel.model_name() == "bundled-photo" and panel.auto_sigma.isChecked()
    found = re.fullmatch(r"estimated σ ≈ ([\d.]+) · noise ≈ ([\d.]+) levels", panel.sigma_label.text())
    assert found, panel.sigma_label.text()
    sigma, level = map(float, found.groups())
    assert level > 2 * sigma
    assert level == pytest.approx(model_noise_level(window.doc.source, load_model("bundled-photo"), device="cpu"),
                                  abs=0.05)
    assert "what the selected model removes" in panel.sigma_label.toolTip()
    panel.model_combo.setCurrentIndex(panel.model_combo.findData("bundled-gaussian-color"))
    wait_idle(qtbot, window)
    other = float(re.search(r"noise ≈ ([\d.]+) levels", panel.sigma_label.text()).group(1))
    assert other == pytest.approx(model_noise_level(window.doc.source, load_model("bundled-gaussian-color"), device="cpu"),
                                  abs=0.05)
    panel.auto_sigma.setChecked(False)  # a manual σ: the reading (made with Auto's σ) is not shown
    assert panel.sigma_label.text().startswith("σ = ") and panel.sigma_label.toolTip() == ""
