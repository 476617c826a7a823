"""The batch dialog: a queue through run_batch where one bad file fails and the rest finish."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from guihelpers import write_corrupt, write_image
from PySide6.QtCore import Qt

from denoiser.imageio import load_image
from gui.dialogs.batch_dialog import BatchDialog, format_eta


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "inputs"
    src.mkdir()
    for name in ("a.png", "b.png", "d.png"):
        write_image(src / name, h=40, w=48)
    write_corrupt(src / "c.png")
    sub = src / "nested"
    sub.mkdir()
    write_image(sub / "e.png", h=40, w=48)
    return src


def run(qtbot, dialog: BatchDialog) -> None:
    with qtbot.waitSignal(dialog.batch_finished, timeout=30000):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)


def test_batch_reports_the_corrupt_file_and_finishes_the_rest(qtbot, window, folder: Path, tmp_path: Path) -> None:
    dialog = window.open_batch()
    assert dialog.model_combo.currentData() == window.denoise_panel.model_name()
    dialog.add_inputs([folder])
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.suffix_edit.setText("_dn")
    dialog.recursive.setChecked(True)
    run(qtbot, dialog)
    statuses = {dialog.table.item(r, 0).text(): dialog.row_status(r) for r in range(dialog.table.rowCount())}
    assert statuses == {"a.png": "done", "b.png": "done", "c.png": "failed", "d.png": "done", "e.png": "done"}
    bad_row = next(r for r in range(dialog.table.rowCount()) if dialog.table.item(r, 0).text() == "c.png")
    assert "cannot read image" in dialog.row_detail(bad_row)
    assert dialog.summary.count("failed") == 1
    assert "4 done, 0 skipped, 1 failed" in dialog.summary_label.text()
    assert dialog.progress.value() == 1000
    out = tmp_path / "out"
    assert sorted(p.name for p in out.rglob("*.png")) == ["a_dn.png", "b_dn.png", "d_dn.png", "e_dn.png"]
    assert (out / "nested" / "e_dn.png").exists()
    np.testing.assert_allclose(load_image(out / "a_dn.png").data, load_image(folder / "a.png").data, atol=2 / 255)

    run(qtbot, dialog)  # again: existing outputs are skipped unless overwrite is on
    assert [dialog.row_status(r) for r in range(dialog.table.rowCount())].count("skipped") == 4
    dialog.overwrite.setChecked(True)
    run(qtbot, dialog)
    assert [dialog.row_status(r) for r in range(dialog.table.rowCount())].count("done") == 4


def test_batch_cancel_stops_the_queue(qtbot, window, tmp_path: Path) -> None:
    src = tmp_path / "many"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        write_image(src / f"{i}.png", data=rng.random((512, 512, 3), dtype=np.float32))
    dialog = window.open_batch()
    dialog.add_inputs([src])
    dialog.output_edit.setText(str(tmp_path / "out"))
    with qtbot.waitSignal(dialog.batch_finished, timeout=20000) as finished:
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
        # press Cancel as soon as the first file reports progress
        dialog.job.progressed.connect(lambda _ev: dialog.cancel_button.isEnabled() and dialog.cancel_button.click())
    assert finished.args == ["cancelled"]
    statuses = [dialog.row_status(r) for r in range(3)]
    assert statuses[-1] == "cancelled" and "done" not in statuses[1:]
    assert not list((tmp_path / "out").glob("*.png"))[1:]
    assert dialog.start_button.isEnabled()


def test_batch_needs_inputs_and_output(qtbot, window) -> None:
    dialog = window.open_batch()
    dialog.start()
    assert not dialog.running and dialog.table.rowCount() == 0


def test_format_eta() -> None:
    assert format_eta(12.4) == "12 s"
    assert format_eta(185) == "3 min 05 s"
    assert format_eta(3720) == "1 h 02 min"
