"""The denoise panel: model, noise level, strength (overall, luminance, colour), detail and grain, quality passes, device, tile size, Preview region and Denoise."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from denoiser.blend import Blend
from denoiser.checkpoint import ModelInfo
from denoiser.device import available_devices
from denoiser.inference import min_tile, sigma_ceiling

MAX_SIGMA = 75
LEVEL_TIP = ("σ is what Auto tells the model: white noise measured in flat areas. Camera noise, smoothed by "
             "demosaicing and in-camera processing, reads low there. The noise level is the RMS, in 8-bit levels, "
             "of what the selected model removes from the centre of this image: what you see.")
QUALITY_CHOICES = (  # (label, self-ensemble passes); see denoiser.ensemble
    ("Standard", 1),
    ("Better · 2 passes (2× time)", 2),
    ("High · 4 passes (4× time)", 4),
    ("Best · 8 passes (8× time)", 8),
)


def model_tooltip(info: ModelInfo) -> str:
    """A model's card in a few lines, for tooltips."""
    lines = [f"<b>{info.name}</b> ({info.source})", info.description or "no description",
             f"architecture: {info.arch}, {info.in_channels}-channel"]
    if info.training.get("steps") is not None:
        lines.append(f"training steps: {info.training['steps']}")
    if info.metrics.get("val_psnr") is not None:
        lines.append(f"validation PSNR: {float(info.metrics['val_psnr']):.2f} dB")
    return "<br>".join(lines)


def quality_combo(passes: int = 1) -> QComboBox:
    """The Quality choice: how many flipped/turned passes of the model are averaged."""
    combo = QComboBox()
    for label, n in QUALITY_CHOICES:
        combo.addItem(label, n)
    combo.setCurrentIndex(max(0, combo.findData(passes)))
    combo.setToolTip("Average the model over mirrored and rotated copies of the image: a little cleaner, "
                     "most at 8 passes, at that many times the time (README, quality table)")
    return combo


def slider(minimum: int, maximum: int, value: int, tip: str) -> QSlider:
    """A horizontal slider."""
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(minimum, maximum)
    s.setValue(value)
    s.setToolTip(tip)
    return s


class DenoisePanel(QGroupBox):
    """Denoising controls; emits requests, never calls the engine itself."""

    denoise_requested = Signal()
    preview_requested = Signal()
    strength_changed = Signal(float)
    model_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Denoise", parent)
        self.models: list[ModelInfo] = []
        self.model_combo = QComboBox()
        self.model_combo.setToolTip("Trained model (bundled and user models)")
        self.model_combo.currentIndexChanged.connect(self._model_index_changed)

        self.auto_sigma = QCheckBox("Auto")
        self.auto_sigma.setChecked(True)
        self.auto_sigma.setToolTip("Estimate the noise level from the image")
        self.sigma_slider = slider(0, MAX_SIGMA, 25, "Noise level σ given to the model (0–255 scale)")
        self.raw_mosaic = QCheckBox()
        self.raw_mosaic.setToolTip(
            "Off: the RAW's develop is denoised by the model above, like any photo (on the camera-RAW benchmark "
            "`photo` on the develop scores 1.5–2.2 dB above the raw model). On: the raw model denoises the "
            "Bayer mosaic itself, and Save also offers a DNG for your raw editor")
        self.raw_mosaic.toggled.connect(self._update_raw_choice)
        self.raw_mosaic.setVisible(False)
        self.sigma_label = QLabel()
        self.sigma_label.setMinimumWidth(120)
        self.sigma_label.setWordWrap(True)
        self.estimated_sigma: float | None = None
        self.model_level: float | None = None  # RMS of the noise the model removes from the centre (0–255)
        sigma_row = QHBoxLayout()
        sigma_row.addWidget(self.auto_sigma)
        sigma_row.addWidget(self.sigma_slider, 1)
        self.auto_sigma.toggled.connect(self._update_sigma_label)
        self.sigma_slider.valueChanged.connect(self._update_sigma_label)

        self.strength_slider, strength_row = self._share_slider(
            "Blend of the result with the input: applied instantly, no re-run")
        self.luma_slider, luma_row = self._share_slider(
            "Share of the luminance noise removed: lower keeps some fine grain (skin, skies); instant")
        self.chroma_slider, chroma_row = self._share_slider(
            "Share of the colour noise removed: colour blotches are rarely wanted, so this usually stays at 100 %")
        self.detail_slider, detail_row = self._share_slider(
            "Give back texture the model took for noise (where what was removed holds more than noise); instant", 0)
        self.grain_slider, grain_row = self._share_slider(
            "Add fresh, fine luminance grain, scaled to the noise removed, so the result looks photographic; instant", 0)
        self.grain_size = QDoubleSpinBox()
        self.grain_size.setRange(0.5, 8.0)
        self.grain_size.setSingleStep(0.5)
        self.grain_size.setDecimals(1)
        self.grain_size.setValue(1.0)
        self.grain_size.setSuffix(" px")
        self.grain_size.setToolTip("Grain size (radius): 1 px is fine film grain, larger is coarser")
        self.grain_size.valueChanged.connect(lambda _v: self.strength_changed.emit(self.strength()))
        grain_row.insertWidget(1, self.grain_size)

        self.quality_combo = quality_combo()
        self.device_combo = QComboBox()
        self.device_combo.addItem("Auto", "auto")
        for dev in available_devices():
            self.device_combo.addItem(dev.upper() if dev == "cpu" else dev.capitalize(), dev)
        self.device_combo.setToolTip("Where the model runs (Auto: the GPU when there is one)")
        self.tile_box = QSpinBox()
        self.tile_box.setRange(min_tile() - 64, 4096)  # the minimum reads "Auto"; every other value is a real tile
        self.tile_box.setSingleStep(64)
        self.tile_box.setSpecialValueText("Auto")
        self.tile_box.valueChanged.connect(self._snap_tile)
        self.tile_box.setSuffix(" px")
        self.tile_box.setToolTip("Tile edge; smaller tiles use less memory (Auto picks one for the device)")

        self.preview_button = QPushButton("Preview region")
        self.preview_button.setToolTip("Denoise only the visible part of the image (Ctrl+Shift+D)")
        self.preview_button.clicked.connect(self.preview_requested)
        self.denoise_button = QPushButton("Denoise")
        self.denoise_button.setDefault(True)
        self.denoise_button.setToolTip("Denoise the whole image (Ctrl+D)")
        self.denoise_button.clicked.connect(self.denoise_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.preview_button)
        buttons.addWidget(self.denoise_button, 1)
        self.info_label = QLabel("")
        self.info_label.setWordWrap(True)
        self.info_label.setObjectName("denoiseInfo")

        form = QFormLayout()
        form.addRow("Model", self.model_combo)
        form.addRow("", self.raw_mosaic)
        form.addRow("Noise level", sigma_row)
        form.addRow("", self.sigma_label)
        form.addRow("Strength", strength_row)
        form.addRow("  Luminance", luma_row)
        form.addRow("  Colour", chroma_row)
        form.addRow("Detail", detail_row)
        form.addRow("Grain", grain_row)
        form.addRow("Quality", self.quality_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Tile size", self.tile_box)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.info_label)
        self._update_sigma_label()

    # --- models -------------------------------------------------------------------------------------
    def set_models(self, models: list[ModelInfo], selected: str | None = None) -> None:
        """Fill the model combo; keep `selected` (or the current one) when it still exists."""
        keep = selected or self.model_name()
        self.models = list(models)
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for info in self.models:
            text = info.name if info.source == "bundled" else f"{info.name}  (user)"
            self.model_combo.addItem(text, info.name)
            self.model_combo.setItemData(self.model_combo.count() - 1, model_tooltip(info), Qt.ItemDataRole.ToolTipRole)
        index = self.model_combo.findData(keep) if keep else -1
        self.model_combo.setCurrentIndex(max(index, 0) if self.models else -1)
        self.model_combo.blockSignals(False)
        self._model_index_changed()

    def model_name(self) -> str | None:
        """Name of the chosen model."""
        data = self.model_combo.currentData()
        return str(data) if data is not None else None

    def selected_model(self) -> ModelInfo | None:
        """The chosen model's info."""
        index = self.model_combo.currentIndex()
        return self.models[index] if 0 <= index < len(self.models) else None

    def _model_index_changed(self) -> None:
        info = self.selected_model()
        self.model_combo.setToolTip(model_tooltip(info) if info else "No models found: train one with `denoiser train`")
        self._update_sigma_label()
        if info is not None:
            self.model_changed.emit(info.name)

    # --- values -------------------------------------------------------------------------------------
    def sigma(self) -> float | None:
        """The manual noise level, or None for Auto."""
        return None if self.auto_sigma.isChecked() else float(self.sigma_slider.value())

    def set_sigma(self, sigma: float | None) -> None:
        """Auto (None) or a manual level."""
        self.auto_sigma.setChecked(sigma is None)
        if sigma is not None:
            self.sigma_slider.setValue(round(sigma))

    def set_raw_model(self, name: str | None) -> None:
        """Offer a camera RAW's choice: its develop denoised by the chosen model (the default), or the sensor
        mosaic by raw model `name` (needed for a DNG); None: the image is not a camera RAW, or no raw model."""
        self.raw_mosaic.setVisible(name is not None)
        if name is not None:
            self.raw_mosaic.setText(f"Denoise the mosaic ('{name}')")
        self._update_raw_choice()

    def raw_on_mosaic(self) -> bool:
        """Whether a camera RAW is denoised on its mosaic by the raw model (else its develop by the model)."""
        return not self.raw_mosaic.isHidden() and self.raw_mosaic.isChecked()

    def _update_raw_choice(self) -> None:
        self.model_combo.setEnabled(not self.raw_on_mosaic())  # the image model does not apply to a mosaic

    def set_estimated_sigma(self, sigma: float | None) -> None:
        """Show the estimated σ of the current input (None: unknown)."""
        self.estimated_sigma = sigma
        self._update_sigma_label()

    def set_model_level(self, level: float | None) -> None:
        """Show the noise level the selected model reads in the current input (None: not known yet)."""
        self.model_level = level
        self._update_sigma_label()

    def _update_sigma_label(self) -> None:
        auto = self.auto_sigma.isChecked()
        self.sigma_slider.setEnabled(not auto)
        shows_level = auto and self.estimated_sigma is not None and self.model_level is not None
        if auto:
            est, model = self.estimated_sigma, self.selected_model()
            ceiling = sigma_ceiling(model.noise) if model is not None else None
            if est is None:
                text = "estimated σ ≈ –"
            elif ceiling is not None and est > ceiling:
                text = f"estimated σ ≈ {est:.1f}: beyond the model, {ceiling:g} used"
            else:
                text = f"estimated σ ≈ {est:.1f}"
            if shows_level:
                text += f" · noise ≈ {self.model_level:.1f} levels"
            self.sigma_label.setText(text)
        else:
            self.sigma_label.setText(f"σ = {self.sigma_slider.value()}")
        self.sigma_label.setToolTip(LEVEL_TIP if shows_level else "")

    def _share_slider(self, tip: str, value: int = 100) -> tuple[QSlider, QHBoxLayout]:
        """A 0–100 % slider with its value label; moving it emits `strength_changed`."""
        bar = slider(0, 100, value, tip)
        label = QLabel(f"{value} %")
        label.setMinimumWidth(44)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        row = QHBoxLayout()
        row.addWidget(bar, 1)
        row.addWidget(label)

        def moved(value: int) -> None:
            label.setText(f"{value} %")
            self.strength_changed.emit(self.strength())

        bar.valueChanged.connect(moved)
        return bar, row

    def strength(self) -> float:
        """Strength as a fraction in [0, 1]."""
        return self.strength_slider.value() / 100.0

    def luma_strength(self) -> float:
        """Share of the luminance change kept, in [0, 1]."""
        return self.luma_slider.value() / 100.0

    def chroma_strength(self) -> float:
        """Share of the colour change kept, in [0, 1]."""
        return self.chroma_slider.value() / 100.0

    def blend(self) -> Blend:
        """How the result is finished: the strengths, detail and grain set here."""
        return Blend(strength=self.strength(), luma=self.luma_strength(), chroma=self.chroma_strength(),
                     detail=self.detail_slider.value() / 100.0, grain=self.grain_slider.value() / 100.0,
                     grain_size=self.grain_size.value())

    def ensemble(self) -> int:
        """Self-ensemble passes chosen under Quality (1 = standard)."""
        return int(self.quality_combo.currentData())

    def set_ensemble(self, passes: int) -> None:
        """Select the Quality entry with `passes` passes (standard if there is none)."""
        self.quality_combo.setCurrentIndex(max(0, self.quality_combo.findData(passes)))

    def device(self) -> str:
        """'auto', 'cpu' or 'cuda'."""
        return str(self.device_combo.currentData())

    def _snap_tile(self, value: int) -> None:
        """A typed edge between "Auto" and the tiler's minimum becomes the minimum, visibly."""
        if self.tile_box.minimum() < value < min_tile():
            self.tile_box.setValue(min_tile())

    def tile(self) -> int | None:
        """Tile edge in pixels, None for automatic."""
        value = self.tile_box.value()
        return None if value == self.tile_box.minimum() else value

    def set_actions_enabled(self, enabled: bool) -> None:
        """Enable or disable Preview and Denoise."""
        has_model = self.selected_model() is not None
        self.preview_button.setEnabled(enabled and has_model)
        self.denoise_button.setEnabled(enabled and has_model)
