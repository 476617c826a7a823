"""Window chrome: settings persistence, menus, shortcuts, About, Fine-tune, entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from guihelpers import open_image, write_image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

from gui import settings
from gui.actions import FINE_TUNE_TIP
from gui.widgets.compare_view import SPLIT


def test_settings_persist_in_the_temporary_location(qtbot, window, models_dir, temp_settings: Path,
                                                    tmp_path: Path) -> None:
    from gui.main_window import MainWindow

    open_image(qtbot, window, write_image(tmp_path / "pics" / "x.png"))
    window.acts.modes[SPLIT].trigger()
    window.denoise_panel.model_combo.setCurrentIndex(window.denoise_panel.model_combo.findData("gaussian-color"))
    window.resize(700, 500)
    window.close()
    ini = temp_settings / "DenoiserStudio" / "Denoiser Studio.ini"
    assert ini.is_file()
    assert settings.app_settings().fileName() == str(ini)
    text = ini.read_text()
    assert "compare_mode=split" in text and "model=gaussian-color" in text and "geometry" in text
    assert settings.read("files/open_dir", "", str) == str(tmp_path / "pics")
    assert settings.read_list("recent/files") == [str(tmp_path / "pics" / "x.png")]

    again = MainWindow()
    qtbot.addWidget(again)
    assert again.compare.mode == SPLIT and again.acts.modes[SPLIT].isChecked()
    assert again.denoise_panel.model_name() == "gaussian-color"
    assert (again.width(), again.height()) == (700, 500)
    assert [a.text() for a in again.recent_menu.actions()][0] == "x.png"


def test_settings_never_touch_the_user_location(temp_settings: Path) -> None:
    assert QSettings.defaultFormat() == QSettings.Format.IniFormat
    assert settings.app_settings().fileName().startswith(str(temp_settings))


def test_models_listed_with_tooltips(window, models_dir) -> None:
    panel = window.denoise_panel
    names = [panel.model_combo.itemData(i) for i in range(panel.model_combo.count())]
    assert set(names) >= {"photo", "gaussian-color", "gaussian-gray"}
    assert panel.model_name() == "photo"  # the default model
    tip = panel.model_combo.itemData(0, 3)  # ToolTipRole
    assert "tiny test model" in tip and "unet" in tip


def test_fine_tune_opens_the_fine_tuning_dialog(window) -> None:
    action = window.acts.fine_tune
    assert action.isEnabled() and action.toolTip() == FINE_TUNE_TIP
    tools = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Tools")
    assert action in tools.actions() and tools.toolTipsVisible()
    action.trigger()
    assert window.finetune_dialog is not None and window.finetune_dialog.isVisible()


def test_about_shows_the_model_card(qtbot, window, darken_model) -> None:
    window.refresh_models(darken_model)
    window.acts.about.trigger()
    box = next(b for b in window.findChildren(QMessageBox) if b.objectName() == "aboutBox")
    text = box.text()
    for part in ("test model that darkens by 0.1", "unet", "123", "31.50 dB"):
        assert part in text
    box.close()


def test_common_shortcuts(window) -> None:
    keys = {name: [s.toString() for s in getattr(window.acts, name).shortcuts()]
            for name in ("open", "save_result", "paste", "denoise", "fit", "actual", "zoom_out", "toggle_ab")}
    assert keys == {"open": ["Ctrl+O"], "save_result": ["Ctrl+S"], "paste": ["Ctrl+V"], "denoise": ["Ctrl+D"],
                    "fit": ["Ctrl+0"], "actual": ["Ctrl+1"], "zoom_out": ["Ctrl+-"], "toggle_ab": ["B"]}
    assert all(a.statusTip() for a in window.findChildren(type(window.acts.open)) if a.text() and not a.isSeparator()
               and a.menu() is None and a.parent() is window)


def test_no_model_disables_denoise(qtbot, window, models_dir, monkeypatch, tmp_path) -> None:
    import denoiser.checkpoint

    for f in models_dir.glob("*.pt"):
        f.unlink()
    monkeypatch.setattr(denoiser.checkpoint, "bundled_models_dir", lambda: tmp_path / "no-bundled-models")
    window.refresh_models()
    assert window.denoise_panel.selected_model() is None
    assert not window.acts.denoise.isEnabled() and not window.denoise_panel.denoise_button.isEnabled()
    assert "No models found" in window.denoise_panel.info_label.text()


def test_main_py_delegates_subcommands_to_the_cli(monkeypatch) -> None:
    import denoiser.cli
    import gui.app

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    import main as entry

    seen = {}
    monkeypatch.setattr(denoiser.cli, "main", lambda argv: seen.setdefault("cli", list(argv)) and 0)
    monkeypatch.setattr(gui.app, "main", lambda argv: seen.setdefault("gui", list(argv)) and 0)
    for command in ("denoise", "add-noise", "estimate", "eval", "models", "train", "finetune", "lab"):
        seen.clear()
        entry.main([command, "x"])
        assert seen == {"cli": [command, "x"]}
    seen.clear()
    entry.main(["photo.png"])
    assert seen == {"gui": ["photo.png"]}
    seen.clear()
    entry.main([])
    assert seen == {"gui": []}


def test_app_main_opens_the_given_image(qtbot, models_dir, tmp_path: Path, monkeypatch) -> None:
    from PySide6.QtWidgets import QApplication

    import gui.app
    from gui.main_window import MainWindow

    path = write_image(tmp_path / "arg.png")
    opened = []
    monkeypatch.setattr(MainWindow, "open_path", lambda self, p: opened.append((self, p)))
    monkeypatch.setattr(QApplication, "exec", lambda self: 0)
    assert gui.app.main([str(path)]) == 0
    assert opened and opened[0][1] == str(path)
    window = opened[0][0]
    qtbot.addWidget(window)
    assert QApplication.instance().applicationName() == "Denoiser Studio"
    assert QApplication.instance().organizationName() == "DenoiserStudio"


@pytest.mark.parametrize("mode", ["side_by_side", "split", "ab"])
def test_every_mode_paints_without_error(qtbot, window, tmp_path: Path, mode: str) -> None:
    open_image(qtbot, window, write_image(tmp_path / "m.png"))
    window.compare.set_mode(mode)
    image = window.compare.grab().toImage()
    assert not image.isNull() and image.width() > 100
