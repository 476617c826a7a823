"""The Lab window: code activation grid, per-unit bars against ρ, anomaly map and the lab models' PSNR table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from guihelpers import open_image, pattern, write_image

from denoiser.archs import build_arch
from denoiser.checkpoint import list_models, save_checkpoint
from gui.dialogs.lab_window import PSNR_COLUMNS, LabWindow


@pytest.fixture
def lab_models(models_dir: Path) -> list[str]:
    """Two tiny conv-ae lab checkpoints (one sparse, gray) beside the test models."""
    torch.manual_seed(0)
    sparse = build_arch("conv-ae", in_channels=1, width=4, depth=1, code_channels=6, code_activation="sigmoid")
    save_checkpoint(models_dir / "lab-tiny-sparse.pt", sparse, noise={"name": "none"},
                    training={"lab": True, "training_noise": "clean",
                              "config": {"loss": {"sparsity_beta": 0.1, "sparsity_rho": 0.05}}})
    plain = build_arch("conv-ae", in_channels=1, width=4, depth=2, code_channels=2, code_activation="none")
    save_checkpoint(models_dir / "lab-tiny-ae.pt", plain, noise={"name": "gaussian"},
                    training={"lab": True, "training_noise": "gaussian σ=25"})
    return ["lab-tiny-ae", "lab-tiny-sparse"]


def test_lab_window_fills_grid_bars_map_and_psnr_table(qtbot, lab_models: list[str]) -> None:
    window = LabWindow(list_models(), pattern(80, 100), "pattern", model="lab-tiny-sparse")
    qtbot.addWidget(window)
    window.show()
    assert window.model_combo.itemData(0) in lab_models  # lab models are listed first
    window.sigma_spin.setValue(20)
    window.seed_spin.setValue(4)
    with qtbot.waitSignal(window.analysed, timeout=20000) as blocker:
        window.analyse_button.click()
    result = blocker.args[0]
    assert result.model == "lab-tiny-sparse" and result.code.shape == (6, 32, 48)  # centre 64×96 crop

    grid = window.grid_image
    assert not grid.isNull() and (grid.width(), grid.height()) == (3 * 48 + 2, 2 * 32 + 1)
    assert not window.grid_view.pixmap().isNull()
    assert np.allclose(window.bars.values, result.unit_means) and window.bars.rho == 0.05
    assert "ρ = 0.05" in window.bars_group.title()
    assert (window.error_image.width(), window.error_image.height()) == (96, 64)
    assert window.bars.grab().width() > 0  # the bar chart paints

    table = window.psnr_table
    assert table.columnCount() == len(PSNR_COLUMNS) and table.rowCount() == 2
    rows = {table.item(r, 0).text(): [table.item(r, c).text() for c in range(1, 5)] for r in range(2)}
    assert set(rows) == set(lab_models)
    assert rows["lab-tiny-ae"][0] == "gaussian σ=25"
    for _label, noisy, out, gain in rows.values():
        assert float(noisy) == pytest.approx(22.1, abs=1.0)  # σ=20 on a mid-gray pattern
        assert float(gain) == pytest.approx(float(out) - float(noisy), abs=0.011)
    assert "σ=20" in window.status_label.text() and "seed 4" in window.status_label.text()

    first = rows["lab-tiny-ae"][2]
    window.model_combo.setCurrentIndex(window.model_combo.findData("lab-tiny-ae"))
    with qtbot.waitSignal(window.analysed, timeout=20000):
        window.analyse()
    assert window.bars.rho is None and "sparse" not in window.bars_group.title()
    assert window.grid_image.width() == 2 * 24 + 1
    row = next(r for r in range(2) if table.item(r, 0).text() == "lab-tiny-ae")
    assert table.item(row, 3).text() == first  # same seeded noise, same PSNR
    window.close()


def test_tools_menu_opens_the_lab_on_the_current_image(qtbot, window, lab_models: list[str], tmp_path: Path) -> None:
    open_image(qtbot, window, write_image(tmp_path / "pic.png", h=48, w=64))
    assert window.acts.lab in window.menuBar().actions()[2].menu().actions()
    window.acts.lab.trigger()
    lab = window.lab_window
    assert lab is not None and lab.isVisible()
    assert lab.image.shape == (48, 64, 3) and "pic.png" in lab.image_label.text()
    assert {lab.model_combo.itemData(i) for i in range(lab.model_combo.count())} >= set(lab_models) | {"photo"}
    with qtbot.waitSignal(lab.analysed, timeout=20000):
        lab.analyse()
    assert lab.psnr_table.rowCount() == 2
    lab.close()
