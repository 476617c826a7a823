"""The main window: assembles the views, panels, menus and status bar, and runs the engine's work in tasks."""

from __future__ import annotations

import traceback
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QImage
from PySide6.QtWidgets import QApplication, QMainWindow, QScrollArea, QSplitter, QVBoxLayout, QWidget

from denoiser.checkpoint import DEFAULT_MODEL, ModelInfo, list_models
from denoiser.errors import DenoiserError
from denoiser.imageio import SUPPORTED_EXTENSIONS, Image, output_format_for
from denoiser.inference import DenoiseResult, sigma_ceiling
from denoiser.metrics import removed_noise
from denoiser.resources import icon_path, sample_image_path
from gui import files, jobs, settings
from gui.actions import WindowActions, build_menus
from gui.dialogs.about import show_about
from gui.dialogs.batch_dialog import BatchDialog
from gui.dialogs.finetune_dialog import FinetuneDialog
from gui.dialogs.lab_window import LabWindow
from gui.dialogs.save_options import SaveOptions, SaveOptionsDialog
from gui.document import NOISE_MAP, RESIDUAL, RESULT, Document
from gui.image_convert import from_qimage, to_qimage
from gui.messages import show_error, show_warning
from gui.widgets.compare_view import MODES, SIDE_BY_SIDE, CompareView
from gui.widgets.denoise_panel import DenoisePanel
from gui.widgets.noise_panel import NoisePanel
from gui.widgets.status_bar import StatusBar
from gui.widgets.view_toolbar import ViewToolbar
from gui.workers import LatestOnly, TaskController, Work

STRENGTH_DELAY_MS = 30
PANEL_WIDTH = 330


def split_models(models: list[ModelInfo]) -> tuple[list[ModelInfo], list[ModelInfo]]:
    """The images' models and the 4-plane raw models (which denoise camera RAW mosaics only)."""
    return [m for m in models if m.in_channels != 4], [m for m in models if m.in_channels == 4]


class MainWindow(QMainWindow):
    """Open → (add noise) → denoise → compare → save; every long step runs as a cancellable task."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Denoiser Studio")
        self.setWindowIcon(QIcon(str(icon_path("app.png"))))
        self.setAcceptDrops(True)
        self.doc: Document | None = None
        self.raw_models: list[ModelInfo] = []
        self.view_a, self.view_b = "", ""
        self._qimages: dict[str, QImage] = {}
        self.tasks = TaskController(self)
        self.metrics_calc = LatestOnly(self.tasks.pool, self)
        self.sigma_calc = LatestOnly(self.tasks.pool, self)
        self.level_calc = LatestOnly(self.tasks.pool, self)
        self.recent = files.RecentFiles()
        self.batch_dialog: BatchDialog | None = None
        self.finetune_dialog: FinetuneDialog | None = None
        self.lab_window: LabWindow | None = None

        self.acts = WindowActions(self)
        self.recent_menu = build_menus(self.menuBar(), self.acts)
        self.compare = CompareView()
        self.toolbar = ViewToolbar(list(self.acts.modes.values()), self.acts.residual, self.acts.zoom_actions(), self)
        self.addToolBar(self.toolbar)
        self.denoise_panel = DenoisePanel()
        self.noise_panel = NoisePanel()
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self._build_layout()
        self._strength_timer = QTimer(self, singleShot=True, interval=STRENGTH_DELAY_MS)
        self._strength_timer.timeout.connect(self._apply_strength)
        self._connect()
        self.refresh_models(settings.read("denoise/model", None, str))
        self._restore_settings()
        self._rebuild_recent_menu()
        self._update_actions()

    # --- construction -------------------------------------------------------------------------------
    def _build_layout(self) -> None:
        side = QWidget()
        column = QVBoxLayout(side)
        column.addWidget(self.denoise_panel)
        column.addWidget(self.noise_panel)
        column.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(side)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(PANEL_WIDTH)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.compare)
        self.splitter.addWidget(scroll)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 0)
        self.splitter.setCollapsible(0, False)
        self.setCentralWidget(self.splitter)
        self.resize(1280, 800)
        self.splitter.setSizes([1280 - PANEL_WIDTH, PANEL_WIDTH])

    def _connect(self) -> None:
        a = self.acts
        a.open.triggered.connect(self.open_dialog)
        a.paste.triggered.connect(self.paste_image)
        a.save_result.triggered.connect(self.save_result)
        a.save_noisy.triggered.connect(self.save_noisy)
        a.batch.triggered.connect(self.open_batch)
        a.fine_tune.triggered.connect(self.open_finetune)
        a.lab.triggered.connect(self.open_lab)
        a.quit.triggered.connect(self.close)
        for mode, action in a.modes.items():
            action.triggered.connect(partial(self.compare.set_mode, mode))
        a.toggle_ab.triggered.connect(self.compare.toggle_ab)
        a.residual.toggled.connect(self.show_residual)
        a.fit.triggered.connect(self.compare.fit)
        a.actual.triggered.connect(self.compare.state.actual_size)
        a.zoom_in.triggered.connect(self.compare.state.zoom_in)
        a.zoom_out.triggered.connect(self.compare.state.zoom_out)
        a.add_noise.triggered.connect(self.add_noise)
        a.remove_noise.triggered.connect(self.remove_noise)
        a.denoise.triggered.connect(self.denoise)
        a.preview.triggered.connect(self.preview_region)
        a.cancel.triggered.connect(self.cancel_task)
        a.reload_models.triggered.connect(lambda: self.refresh_models())
        a.open_sample.triggered.connect(self.open_sample)
        a.about.triggered.connect(self.show_about)

        self.compare.mode_changed.connect(self._mode_changed)
        self.compare.ab_toggled.connect(lambda _b: self._update_actions())
        self.compare.state.changed.connect(self._zoom_changed)
        self.toolbar.a_chosen.connect(lambda name: self.set_views(name, self.view_b))
        self.toolbar.b_chosen.connect(lambda name: self.set_views(self.view_a, name))
        self.noise_panel.add_requested.connect(self.add_noise)
        self.noise_panel.remove_requested.connect(self.remove_noise)
        self.noise_panel.type_combo.currentIndexChanged.connect(
            lambda: settings.write("noise/type", self.noise_panel.noise_name()))
        self.denoise_panel.denoise_requested.connect(self.denoise)
        self.denoise_panel.preview_requested.connect(self.preview_region)
        self.denoise_panel.strength_changed.connect(lambda _s: self._strength_timer.start())
        self.denoise_panel.model_changed.connect(lambda name: settings.write("denoise/model", name))
        self.denoise_panel.model_changed.connect(lambda _name: self._read_noise_level())
        self.denoise_panel.quality_combo.currentIndexChanged.connect(
            lambda: settings.write("denoise/ensemble", self.denoise_panel.ensemble()))
        self.status.cancel_requested.connect(self.cancel_task)
        self.tasks.busy_changed.connect(lambda _busy: self._update_actions())
        self.tasks.progressed.connect(self.status.task_progress)
        self.tasks.finished.connect(self._task_finished)

    def _restore_settings(self) -> None:
        geometry = settings.read("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        splitter = settings.read("window/splitter")
        if isinstance(splitter, QByteArray):
            self.splitter.restoreState(splitter)
        mode = settings.read("view/compare_mode", SIDE_BY_SIDE, str)
        self.compare.set_mode(mode if mode in MODES else SIDE_BY_SIDE)
        self.acts.modes[self.compare.mode].setChecked(True)
        self.noise_panel.set_noise_name(settings.read("noise/type", "gaussian", str))
        self.denoise_panel.set_ensemble(settings.read("denoise/ensemble", 1, int))

    def refresh_models(self, selected: str | None = None) -> None:
        """Scan bundled and user models into the model combo."""
        models, self.raw_models = split_models(list_models())
        keep = selected or self.denoise_panel.model_name() or DEFAULT_MODEL
        self.denoise_panel.set_models(models, keep)
        if not models:
            self.denoise_panel.info_label.setText("No models found. Train one with `denoiser train`.")
        self._update_actions()

    # --- tasks --------------------------------------------------------------------------------------
    def _run(self, label: str, work: Work, on_success: Any, failure_title: str, on_failure: Any = None) -> None:
        def failed(exc: BaseException) -> None:
            if on_failure is not None:
                on_failure(exc)
            self._report_failure(failure_title, exc)

        self.status.task_started(label)
        self.tasks.start(label, work, on_success, failed, lambda: self.status.showMessage(f"{label}: cancelled", 5000))

    def _task_finished(self, _label: str, _outcome: str) -> None:
        if not self.tasks.busy:
            self.status.task_finished()
        self._update_actions()

    def cancel_task(self) -> None:
        """Stop the running task at its next step."""
        if self.tasks.busy:
            self.tasks.cancel()
            self.status.task_cancelling()

    def _report_failure(self, title: str, exc: BaseException) -> None:
        """Errors become a message box and a status line, never a crash."""
        known = isinstance(exc, DenoiserError | OSError | ValueError | MemoryError)
        text = str(exc) if known else f"{type(exc).__name__}: {exc}"
        details = "" if known else "".join(traceback.format_exception(exc))
        self.status.showMessage(f"{title}: {text}", 10000)
        show_error(self, title, text, details)

    def _update_actions(self) -> None:
        a, doc, busy = self.acts, self.doc, self.tasks.busy
        has_model = self.denoise_panel.selected_model() is not None
        has_result = doc is not None and doc.raw_result is not None
        a.save_result.setEnabled(has_result)
        a.save_noisy.setEnabled(doc is not None and doc.noisy is not None)
        a.add_noise.setEnabled(doc is not None and not busy)
        a.remove_noise.setEnabled(doc is not None and doc.noisy is not None and not busy)
        a.denoise.setEnabled(doc is not None and has_model and not busy)
        a.preview.setEnabled(doc is not None and has_model and not busy)
        a.cancel.setEnabled(busy)
        a.residual.setEnabled(has_result)
        for action in (*a.zoom_actions(), a.toggle_ab):
            action.setEnabled(doc is not None)
        self.noise_panel.add_button.setEnabled(a.add_noise.isEnabled())
        self.noise_panel.remove_button.setEnabled(a.remove_noise.isEnabled())
        self.denoise_panel.set_actions_enabled(doc is not None and not busy)
        raw_model = self.raw_model() if doc is not None and doc.is_camera_raw else None
        self.denoise_panel.set_raw_model(raw_model.name if raw_model is not None else None)

    # --- opening ------------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        """File › Open."""
        path = files.ask_open_path(self, settings.read("files/open_dir", "", str))
        if path is not None:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        """Load an image file in the background."""
        p = Path(path)
        self._run(f"Opening {p.name}", partial(jobs.load_work, p), self._loaded, f"Cannot open {p.name}")

    def open_recent(self, path: str) -> None:
        """File › Recent: open it; a file that is gone or no longer an image leaves the list (with the reason
        shown); other failures, such as running out of memory, keep it."""
        def forget(exc: BaseException) -> None:
            if isinstance(exc, DenoiserError):
                self.recent.remove(path)
                self._rebuild_recent_menu()

        p = Path(path)
        self._run(f"Opening {p.name}", partial(jobs.load_work, p), self._loaded, f"Cannot open {p.name}", forget)

    def open_sample(self) -> None:
        """Help › Open sample."""
        self.open_path(sample_image_path())

    def paste_image(self) -> None:
        """Edit › Paste: an image on the clipboard, or a copied image file."""
        clipboard = QApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and mime.hasImage() and not clipboard.image().isNull():
            data = from_qimage(clipboard.image())
            self._set_document(Document(Image(data, None, 8, None, None, "png")))
            self.status.showMessage(f"Pasted a {data.shape[1]}×{data.shape[0]} image", 5000)
        elif mime is not None and mime.hasUrls() and any(u.isLocalFile() for u in mime.urls()):
            self.open_path(next(u.toLocalFile() for u in mime.urls() if u.isLocalFile()))
        else:
            self.status.showMessage("The clipboard holds no image", 5000)

    def _loaded(self, image: Image) -> None:
        self._set_document(Document(image))
        if image.path is not None:
            self.recent.add(image.path)
            settings.write("files/open_dir", str(image.path.parent))
            self._rebuild_recent_menu()
        self.status.showMessage(f"Opened {self.doc.name}", 5000)

    def _set_document(self, doc: Document) -> None:
        self.doc = doc
        self._blend_from_panel(doc)
        self._qimages.clear()
        self.view_a, self.view_b = doc.default_pair()
        self.compare.state.fit_mode = True
        self._refresh_views()
        self.compare.fit()
        self.noise_panel.set_has_noise(False)
        self.denoise_panel.info_label.setText("")
        img = doc.image
        kind = "RGB" if img.channels == 3 else "gray"
        alpha = " + alpha" if img.alpha is not None else ""
        self.status.info_label.setText(f"{img.width}×{img.height} · {kind}{alpha} · {img.bit_depth}-bit")
        self.setWindowTitle(f"{doc.name} — Denoiser Studio")
        self._estimate_sigma()
        self._update_actions()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        for path in paths:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(partial(self.open_recent, path))
        if paths:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", lambda: (self.recent.clear(), self._rebuild_recent_menu()))
        self.recent_menu.setEnabled(bool(paths))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._dropped_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = self._dropped_file(event)
        if path is not None:
            event.acceptProposedAction()
            self.open_path(path)

    @staticmethod
    def _dropped_file(event: QDropEvent | QDragEnterEvent) -> Path | None:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in SUPPORTED_EXTENSIONS:
                return Path(url.toLocalFile())
        return None

    # --- views --------------------------------------------------------------------------------------
    def _qimage(self, name: str) -> QImage:
        if name not in self._qimages:
            self._qimages[name] = to_qimage(self.doc.view(name))
        return self._qimages[name]

    def _refresh_views(self) -> None:
        doc = self.doc
        if doc is None:
            self.compare.set_images(None, None)
            self.toolbar.set_choices([], "", "")
            return
        names = doc.view_names()
        default_a, default_b = doc.default_pair()
        self.view_a = self.view_a if self.view_a in names else default_a
        self.view_b = self.view_b if self.view_b in names else default_b
        self.compare.set_images((doc.view_caption(self.view_a), self._qimage(self.view_a)),
                                (doc.view_caption(self.view_b), self._qimage(self.view_b)))
        self.toolbar.set_choices(names, self.view_a, self.view_b)
        self.acts.residual.blockSignals(True)
        self.acts.residual.setChecked(self.view_b == RESIDUAL)
        self.acts.residual.blockSignals(False)

    def set_views(self, a: str, b: str) -> None:
        """Choose what A and B show (names from the document's view list)."""
        self.view_a, self.view_b = a, b
        self._refresh_views()

    def show_residual(self, on: bool) -> None:
        """B shows the residual (on) or the result (off)."""
        if self.doc is None or self.doc.raw_result is None:
            return
        self.set_views(self.view_a, RESIDUAL if on else RESULT)

    def _mode_changed(self, mode: str) -> None:
        self.acts.modes[mode].setChecked(True)
        settings.write("view/compare_mode", mode)

    def _zoom_changed(self) -> None:
        zoom = self.compare.state.zoom if self.doc is not None else None
        self.status.set_zoom(zoom)
        self.toolbar.set_zoom(zoom)

    # --- noise lab ----------------------------------------------------------------------------------
    def add_noise(self) -> None:
        """Corrupt the clean image with the noise lab's model, parameters and seed."""
        if self.doc is None:
            return
        doc, panel = self.doc, self.noise_panel
        label = panel.describe()
        work = partial(jobs.noise_work, doc.image.data, panel.noise_name(), panel.seed(), panel.params())
        self._run("Adding noise", work, lambda noisy: self._noise_added(doc, noisy, label), "Cannot add noise")

    def _noise_added(self, doc: Document, noisy: np.ndarray, label: str) -> None:
        if doc is not self.doc:
            return
        doc.set_noisy(noisy, label)
        self._input_changed()
        self.status.showMessage(f"Added {label} (seed {self.noise_panel.seed()})", 5000)

    def remove_noise(self) -> None:
        """Back to the clean image."""
        if self.doc is not None and self.doc.noisy is not None:
            self.doc.set_noisy(None)
            self._input_changed()

    def _input_changed(self) -> None:
        self._qimages.clear()
        self.view_a, self.view_b = self.doc.default_pair()
        self._refresh_views()
        self.noise_panel.set_has_noise(self.doc.noisy is not None)
        self.denoise_panel.info_label.setText("")
        self._estimate_sigma()
        self._schedule_metrics()
        self._update_actions()

    def _estimate_sigma(self) -> None:
        doc = self.doc
        source = doc.source
        self.denoise_panel.set_estimated_sigma(None)

        def done(sigma: float) -> None:
            if self.doc is doc and doc.source is source:
                self.denoise_panel.set_estimated_sigma(sigma)

        self.sigma_calc.submit(partial(jobs.estimate_noise, source), done)
        self._read_noise_level()

    def _read_noise_level(self) -> None:
        """Have the selected model read the input's noise level (what it removes from the centre)."""
        doc, panel = self.doc, self.denoise_panel
        panel.set_model_level(None)
        info = panel.selected_model()
        if doc is None or info is None:
            return
        source = doc.source

        def done(level: float) -> None:
            if self.doc is doc and doc.source is source and panel.selected_model() is info:
                panel.set_model_level(level)

        self.level_calc.submit(partial(jobs.model_noise, source, info.path, info.source, panel.device()), done)

    def _schedule_metrics(self) -> None:
        doc = self.doc
        if doc is None or doc.reference is None:
            self.noise_panel.set_has_noise(False)
            return
        noisy, result = doc.noisy, doc.result()

        def done(values: tuple[Any, Any]) -> None:
            if self.doc is doc and doc.noisy is noisy:
                self.noise_panel.set_metrics(*values)

        self.metrics_calc.submit(partial(jobs.quality_pair, doc.reference, noisy, result), done)

    # --- denoising ----------------------------------------------------------------------------------
    def _model_or_warn(self) -> ModelInfo | None:
        info = self.denoise_panel.selected_model()
        if info is None:
            show_warning(self, "Denoise", "No model is installed. Train one with `denoiser train`.")
        return info

    def denoise(self) -> None:
        """Denoise the whole input (noisy image if noise was added) in the background."""
        if self.doc is None or (info := self._model_or_warn()) is None:
            return
        doc, panel = self.doc, self.denoise_panel
        source = doc.source
        work = partial(jobs.denoise_work, source, info.path, info.source, panel.sigma(), panel.tile(), panel.device(),
                       panel.ensemble())
        raw_model = self.raw_model()
        if doc.is_camera_raw and raw_model is not None and panel.raw_on_mosaic():  # the mosaic, in the raw domain
            work = partial(jobs.raw_denoise_work, doc.image.path, raw_model.path, raw_model.source, panel.sigma(),
                           panel.device(), work)
        self._run("Denoising", work, lambda res: self._denoised(doc, source, res), "Denoising failed")

    def raw_model(self) -> ModelInfo | None:
        """The model that denoises camera RAW files in the raw domain: `raw`, else the first raw model."""
        return next((m for m in self.raw_models if m.name == "raw"), self.raw_models[0] if self.raw_models else None)

    def _denoised(self, doc: Document, source: np.ndarray, res: DenoiseResult | jobs.RawDenoised) -> None:
        if doc is not self.doc or doc.source is not source:
            return
        if isinstance(res, jobs.RawDenoised):
            doc.set_raw_result(res.developed, res.raw.mosaic)
            text = (f"Denoised the raw mosaic in {res.seconds:.2f} s with '{self.raw_model().name}' · noise σ "
                    f"{res.raw.sigma:.1f} at mid-grey (estimated from the mosaic) · save as DNG for your raw editor")
            self._result_changed(text)
            return
        doc.set_result(res.image)
        how = "estimated" if res.sigma_estimated else "manual"
        passes = f" · {res.ensemble} passes" if res.ensemble > 1 else ""
        removed = removed_noise(source, res.image)
        text = (f"Denoised in {res.seconds:.2f} s on {res.device} · {res.tiles} tiles{passes} · σ {res.sigma:.1f} ({how})"
                f" · noise removed {removed:.1f} levels rms")
        if doc.is_camera_raw and self.raw_model() is not None:
            text += " · the RAW's develop: tick 'Denoise the mosaic' to save a DNG"
        self._result_changed(text)

    def preview_region(self) -> None:
        """Denoise only the visible region (plus a margin) and paste it into the result."""
        if self.doc is None or (info := self._model_or_warn()) is None:
            return
        rect = self.compare.visible_image_rect()
        if rect.isEmpty():
            self.status.showMessage("No part of the image is visible", 5000)
            return
        doc, panel = self.doc, self.denoise_panel
        source = doc.source
        sigma = panel.sigma()
        if sigma is None and panel.estimated_sigma is not None:  # the whole image's estimate, clamped as Denoise does
            sigma = min(panel.estimated_sigma, sigma_ceiling(info.noise))
        region = (rect.x(), rect.y(), rect.width(), rect.height())
        work = partial(jobs.preview_work, source, region, info.path, info.source, sigma, panel.tile(), panel.device(),
                       ensemble=panel.ensemble())
        self._run("Previewing region", work, lambda pr: self._previewed(doc, source, pr), "Preview failed")

    def _previewed(self, doc: Document, source: np.ndarray, preview: jobs.PreviewResult) -> None:
        if doc is not self.doc or doc.source is not source:
            return
        base = doc.raw_result if doc.raw_result is not None else source
        doc.set_result(jobs.paste_region(base, preview), preview=True)
        x, y, w, h = preview.region
        res = preview.result
        self._result_changed(f"Previewed {w}×{h} at ({x}, {y}) in {res.seconds:.2f} s on {res.device} · "
                             f"σ {res.sigma:.1f}. Denoise the whole image to save it.")

    def _result_changed(self, text: str) -> None:
        for name in (RESULT, RESIDUAL, NOISE_MAP):
            self._qimages.pop(name, None)
        keep_residual = self.view_b == RESIDUAL
        self.view_a, self.view_b = self.doc.default_pair()
        if keep_residual:
            self.view_b = RESIDUAL
        self._refresh_views()
        self.denoise_panel.info_label.setText(text)
        self.status.showMessage(text, 8000)
        self._schedule_metrics()
        self._update_actions()

    def _blend_from_panel(self, doc: Document) -> None:
        doc.set_blend(self.denoise_panel.blend())

    def _apply_strength(self) -> None:
        """Re-blend the result at the new strengths; the model does not run again."""
        if self.doc is None:
            return
        self._blend_from_panel(self.doc)
        if self.doc.raw_result is None:
            return
        for name in (RESULT, RESIDUAL, NOISE_MAP):
            self._qimages.pop(name, None)
        self._refresh_views()
        self._schedule_metrics()

    # --- saving -------------------------------------------------------------------------------------
    def save_result(self) -> None:
        """File › Save result: choose a name and options; the original file is never replaced."""
        doc = self.doc
        if doc is None or doc.raw_result is None:
            self.status.showMessage("Nothing to save yet: denoise the image first", 5000)
            return
        if doc.result_is_preview:
            show_warning(self, "Save result", "Only a region was denoised. Denoise the whole image before saving.")
            return
        self._save_with_dialogs(doc.result(), "_denoised", "Save result", raw=doc.raw_mosaic is not None)

    def save_noisy(self) -> None:
        """File › Save noisy image."""
        if self.doc is not None and self.doc.noisy is not None:
            self._save_with_dialogs(self.doc.noisy, "_noisy", "Save noisy image")

    def _save_with_dialogs(self, data: np.ndarray, suffix: str, title: str, raw: bool = False) -> None:
        doc = self.doc
        fmt = "dng" if raw else files.default_save_format(doc.image.path, doc.image.bit_depth)
        stem = doc.image.path.stem if doc.image.path is not None else "pasted"
        folder = Path(settings.read("files/save_dir", "", str) or (doc.image.path.parent if doc.image.path else "."))
        path = files.ask_save_path(self, title, folder / f"{stem}{suffix}{files.DEFAULT_EXTENSIONS[fmt]}", fmt, raw)
        if path is None:
            return
        if self._refuse_original(path):
            return
        if raw and path.suffix.lower() == ".dng":
            self.save_dng(path)
            return
        options = SaveOptionsDialog.ask(output_format_for(path), doc.image.bit_depth,
                                        settings.read("files/quality", 95, int), self)
        if options is not None:
            self.save_to(path, data, options)

    def _refuse_original(self, path: Path) -> bool:
        if files.same_file(Path(path), self.doc.image.path):
            show_warning(self, "Save", f"{Path(path).name} is the original image; it is never overwritten.\n"
                                       "Choose another name or folder.")
            self.status.showMessage("Refused to overwrite the original", 8000)
            return True
        return False

    def save_dng(self, path: Path) -> None:
        """Write the raw-denoised mosaic as a DNG at the panel's strength, in the background. The luminance and
        colour strengths, detail and grain act on a develop: a DNG cannot carry them, so it is refused."""
        doc = self.doc
        if doc is None or doc.raw_mosaic is None or self._refuse_original(Path(path)):
            return
        b = self.denoise_panel.blend()  # as the panel shows it now, even before the re-blend timer fires
        if b.luma != 1.0 or b.chroma != 1.0 or b.detail > 0 or b.grain > 0:
            show_warning(self, "Save DNG", "Luminance and colour strength, detail and grain act on the developed "
                                           "image; a DNG holds the sensor mosaic. Set them back (Strength alone "
                                           "applies to a DNG) or save a TIFF.")
            return
        settings.write("files/save_dir", str(Path(path).parent))
        work = partial(jobs.save_dng_work, doc.image.path, doc.raw_mosaic, b.strength, Path(path))
        self._run("Saving", work, lambda p: self.status.showMessage(f"Saved {p}", 8000), "Cannot save")

    def save_to(self, path: Path, data: np.ndarray, options: SaveOptions) -> None:
        """Write `data` with the original's metadata, in the background."""
        if self.doc is None or self._refuse_original(Path(path)):
            return
        settings.write("files/save_dir", str(Path(path).parent))
        settings.write("files/quality", options.quality)
        work = partial(jobs.save_work, self.doc.image, data, Path(path), options.bit_depth, options.quality)
        self._run("Saving", work, lambda p: self.status.showMessage(f"Saved {p}", 8000), "Cannot save")

    # --- dialogs ------------------------------------------------------------------------------------
    def open_batch(self) -> BatchDialog:
        """File › Batch: the batch dialog (non-modal), seeded with the panel's settings."""
        if self.batch_dialog is None or not self.batch_dialog.isVisible():
            panel = self.denoise_panel
            self.batch_dialog = BatchDialog(panel.models, panel.model_name(), panel.sigma(), panel.strength(),
                                            panel.device(), self, ensemble=panel.ensemble(),
                                            finish=panel.blend())
        self.batch_dialog.show()
        self.batch_dialog.raise_()
        return self.batch_dialog

    def open_finetune(self) -> FinetuneDialog:
        """Tools › Fine-tune: the fine-tuning dialog (non-modal); new models join the model list."""
        if self.finetune_dialog is None or not self.finetune_dialog.isVisible():
            panel = self.denoise_panel
            dialog = FinetuneDialog(panel.models, panel.model_name(), panel.device(), self)
            dialog.model_saved.connect(lambda _name: self.refresh_models())
            dialog.use_model.connect(self.refresh_models)
            self.finetune_dialog = dialog
        self.finetune_dialog.show()
        self.finetune_dialog.raise_()
        return self.finetune_dialog

    def open_lab(self) -> LabWindow:
        """Tools › Autoencoder lab: the Lab window (non-modal) on the current image and model."""
        if self.lab_window is None or not self.lab_window.isVisible():
            doc = self.doc
            self.lab_window = LabWindow(split_models(list_models())[0], doc.image.data if doc is not None else None,
                                        doc.name if doc is not None else "", self, pool=self.tasks.pool,
                                        model=self.denoise_panel.model_name())
        self.lab_window.show()
        self.lab_window.raise_()
        return self.lab_window

    def show_about(self) -> None:
        """Help › About, with the current model's card."""
        show_about(self, self.denoise_panel.selected_model())

    def closeEvent(self, event: QCloseEvent) -> None:
        settings.write("window/geometry", self.saveGeometry())
        settings.write("window/splitter", self.splitter.saveState())
        if self.batch_dialog is not None:
            self.batch_dialog.close()
        if self.finetune_dialog is not None:
            self.finetune_dialog.close()
        self.tasks.pool.shutdown()
        super().closeEvent(event)
