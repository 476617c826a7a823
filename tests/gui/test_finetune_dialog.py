"""The fine-tune dialog: live progress off the GUI thread, Cancel keeps the best model and the window usable,
and "Use this model" selects the new model in the main window."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from guihelpers import open_image, pattern, wait_idle, write_image
from PySide6.QtCore import Qt

from denoiser.checkpoint import read_info
from gui.dialogs import finetune_dialog
from gui.dialogs.finetune_dialog import FinetuneDialog


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    rng = np.random.default_rng(0)
    for i in range(4):
        noisy = np.clip(pattern(64, 80, seed=i) + 0.05 * rng.standard_normal((64, 80, 3)), 0, 1).astype(np.float32)
        write_image(folder / f"{i}.png", data=noisy)
    return folder


def small_run(dialog: FinetuneDialog, steps: int) -> None:
    """Tiny patches and batches so the test models train in milliseconds per step."""
    dialog.advanced_button.setChecked(True)
    dialog.steps_box.setValue(steps)
    dialog.patch_box.setValue(32)
    dialog.batch_box.setValue(2)


def test_cancel_stops_fine_tuning_keeps_the_model_and_the_window_stays_usable(qtbot, window, photos: Path,
                                                                               tmp_path: Path, monkeypatch) -> None:
    window.acts.fine_tune.trigger()
    dialog = window.finetune_dialog
    assert not dialog.advanced.isVisibleTo(dialog)  # advanced options start collapsed
    threads = []
    real_estimate = finetune_dialog.estimate_memory_mb
    monkeypatch.setattr(finetune_dialog, "estimate_memory_mb",
                        lambda cfg: (threads.append(threading.current_thread()), real_estimate(cfg))[1])
    dialog.add_folders([photos])
    qtbot.waitUntil(lambda: dialog.memory_label.text().startswith("≈ "), timeout=20000)
    assert "MB" in dialog.memory_label.text()
    assert threads and threading.main_thread() not in threads  # the estimate builds a network: never on the GUI thread
    small_run(dialog, 1_000_000)  # far more than the test will wait for
    dialog.minutes_box.setValue(600)
    name = dialog.output_edit.text()
    assert name == "photo-ft"
    with qtbot.waitSignal(dialog.run_finished, timeout=30000) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        assert not dialog.start_button.isEnabled() and not dialog.options_group.isEnabled()
        qtbot.waitUntil(lambda: len(dialog.curve.losses) >= 2, timeout=20000)  # live progress arrives
        assert not dialog.curve.grab().isNull() and dialog.eta_label.text().startswith("ETA")
        qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["cancelled"]
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert f"kept as {name}" in dialog.result_label.text()
    kept = next(m for m in window.denoise_panel.models if m.name == name)  # the kept model joined the list
    card = read_info(kept.path).training["finetune"]
    assert card["cancelled"] is True and card["steps_run"] < 1_000_000
    assert dialog.use_button.isEnabled() and dialog.output_edit.text() == "photo-ft-2"  # a fresh name for a new run
    open_image(qtbot, window, write_image(tmp_path / "x.png"))  # the window still works
    window.denoise()
    wait_idle(qtbot, window)
    assert window.doc.raw_result is not None


def test_a_finished_noisy_run_shows_thumbnails_and_use_this_model_selects_it(qtbot, window, photos: Path) -> None:
    dialog = window.open_finetune()
    dialog.add_folders([photos])
    dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("noisy"))
    assert dialog.thumbnails.isVisibleTo(dialog)
    small_run(dialog, 3)
    assert not dialog.use_button.isEnabled()
    with qtbot.waitSignal(dialog.run_finished, timeout=60000) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["done"]
    result = dialog.result
    assert result is not None and result.mode == "noisy" and result.before is not None
    assert dialog.thumbnails.shown() == {"noisy", "before", "after"}
    assert dialog.curve.scores and dialog.curve.before == pytest.approx(result.before)
    assert "N2N score" in dialog.result_label.text() and dialog.progress.value() == 1000
    assert "compare the before/after thumbnails" in dialog.result_label.text()
    assert "#b26a00" in dialog.result_label.styleSheet()  # amber: unverified, neither claimed better nor worse
    name = dialog.saved_name
    panel = window.denoise_panel
    assert name in [panel.model_combo.itemData(i) for i in range(panel.model_combo.count())]
    assert panel.model_name() == "photo"  # listed, not yet chosen
    qtbot.mouseClick(dialog.use_button, Qt.MouseButton.LeftButton)
    assert panel.model_name() == name and panel.selected_model().training["finetune"]["mode"] == "noisy"


def test_a_noisy_run_on_a_base_that_already_removes_the_noise_keeps_it_and_says_so(qtbot, window, photos: Path,
                                                                                 monkeypatch) -> None:
    import denoiser.training.finetune_noisy as finetune_module

    monkeypatch.setattr(finetune_module, "NOTHING_TO_LEARN", 100.0)  # any base now counts as removing the noise
    dialog = window.open_finetune()
    dialog.add_folders([photos])
    dialog.mode_combo.setCurrentIndex(dialog.mode_combo.findData("noisy"))
    small_run(dialog, 3)
    with qtbot.waitSignal(dialog.run_finished, timeout=60000) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert finished.args == ["done"]
    assert dialog.result is not None and dialog.result.extra["kept_base"] is True
    text = dialog.result_label.text()
    assert "already removes this noise" in text and "unchanged" in text
    assert "#b26a00" in dialog.result_label.styleSheet()
    assert dialog.thumbnails.shown() >= {"noisy", "before"} and dialog.use_button.isEnabled()
