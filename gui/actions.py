"""The window's actions (text, shortcuts, tooltips) and its menu bar; the window connects the slots."""

from __future__ import annotations

from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMenuBar, QWidget

from gui.widgets.compare_view import AB, MODE_TITLES, MODES, SIDE_BY_SIDE, SPLIT

FINE_TUNE_TIP = "Adapt a model to your own photos, clean or noisy only"


def make_action(parent: QWidget, text: str, shortcut: str | list[str] | None = None, tip: str = "",
                checkable: bool = False) -> QAction:
    """A QAction with shortcuts, and the tooltip also shown in the status bar."""
    action = QAction(text, parent)
    if shortcut:
        keys = [shortcut] if isinstance(shortcut, str) else shortcut
        action.setShortcuts([QKeySequence(k) for k in keys])
    if tip:
        hint = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{tip} ({hint})" if hint else tip)
        action.setStatusTip(tip)
    action.setCheckable(checkable)
    return action


class WindowActions:
    """Every action of the main window, grouped as in the menus."""

    def __init__(self, parent: QWidget) -> None:
        a = make_action
        self.open = a(parent, "&Open…", "Ctrl+O", "Open an image file")
        self.paste = a(parent, "&Paste image", "Ctrl+V", "Open the image on the clipboard")
        self.save_result = a(parent, "&Save result…", "Ctrl+S", "Save the denoised image (never over the original)")
        self.save_noisy = a(parent, "Save &noisy image…", None, "Save the image with the added noise")
        self.batch = a(parent, "&Batch…", "Ctrl+B", "Denoise many files or folders")
        self.quit = a(parent, "&Quit", "Ctrl+Q", "Close Denoiser Studio")

        self.modes: dict[str, QAction] = {}
        self.mode_group = QActionGroup(parent)
        keys = {SIDE_BY_SIDE: "1", SPLIT: "2", AB: "3"}
        tips = {SIDE_BY_SIDE: "Show A and B next to each other", SPLIT: "One image, A left and B right of a divider",
                AB: "One image; B or Space toggles between A and B"}
        for mode in MODES:
            action = a(parent, MODE_TITLES[mode], keys[mode], tips[mode], checkable=True)
            action.setData(mode)
            self.mode_group.addAction(action)
            self.modes[mode] = action
        self.toggle_ab = a(parent, "Toggle A/B", "B", "Switch between A and B (A/B mode)")
        self.residual = a(parent, "Residual", "R", "Show |input − result| ×4 as B: what the denoiser removed",
                          checkable=True)
        self.fit = a(parent, "Fit", "Ctrl+0", "Fit the image to the view")
        self.actual = a(parent, "100%", "Ctrl+1", "One image pixel per screen pixel")
        self.zoom_in = a(parent, "Zoom in", ["Ctrl++", "Ctrl+="], "Zoom in")
        self.zoom_out = a(parent, "Zoom out", "Ctrl+-", "Zoom out")

        self.add_noise = a(parent, "&Add noise", "Ctrl+Shift+N", "Corrupt the clean image with the noise lab's settings")
        self.remove_noise = a(parent, "&Remove noise", None, "Go back to the clean image")
        self.denoise = a(parent, "&Denoise", "Ctrl+D", "Denoise the whole image")
        self.preview = a(parent, "&Preview region", "Ctrl+Shift+D", "Denoise only the visible region")
        self.cancel = a(parent, "&Cancel", "Esc", "Stop the running task")
        self.reload_models = a(parent, "Re&load models", "F5", "Scan the model folders again")
        self.fine_tune = a(parent, "&Fine-tune…", None, FINE_TUNE_TIP)
        self.lab = a(parent, "Autoencoder &lab…", None,
                     "Look inside a model: code activations, sparsity, anomaly map and the lab models' PSNR")

        self.open_sample = a(parent, "Open &sample", None, "Open the bundled sample image")
        self.about = a(parent, "&About Denoiser Studio", None, "The application and the current model's card")

    def zoom_actions(self) -> list[QAction]:
        """Toolbar order of the zoom actions."""
        return [self.fit, self.actual, self.zoom_out, self.zoom_in]


def build_menus(bar: QMenuBar, acts: WindowActions) -> QMenu:
    """File, View, Tools and Help menus; returns the (empty) Open Recent menu for the window to fill."""
    file_menu = bar.addMenu("&File")
    file_menu.addAction(acts.open)
    recent = file_menu.addMenu("Open &recent")
    file_menu.addAction(acts.paste)
    file_menu.addSeparator()
    file_menu.addAction(acts.save_result)
    file_menu.addAction(acts.save_noisy)
    file_menu.addSeparator()
    file_menu.addAction(acts.batch)
    file_menu.addSeparator()
    file_menu.addAction(acts.quit)

    view = bar.addMenu("&View")
    for action in acts.modes.values():
        view.addAction(action)
    view.addAction(acts.toggle_ab)
    view.addAction(acts.residual)
    view.addSeparator()
    for action in acts.zoom_actions():
        view.addAction(action)

    tools = bar.addMenu("&Tools")
    for action in (acts.add_noise, acts.remove_noise, None, acts.denoise, acts.preview, acts.cancel, None,
                   acts.reload_models, acts.fine_tune, acts.lab):
        if action is None:
            tools.addSeparator()
        else:
            tools.addAction(action)

    help_menu = bar.addMenu("&Help")
    help_menu.addAction(acts.open_sample)
    help_menu.addAction(acts.about)
    for menu in (file_menu, view, tools, help_menu, recent):
        menu.setToolTipsVisible(True)
    return recent
