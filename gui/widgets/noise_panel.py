"""The noise lab: corrupt the clean image with any engine noise model, and measure against it."""

from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from denoiser.noise import NOISE_MODELS, NoiseParam

MAX_SEED = 2**31 - 1


def param_label(name: str) -> str:
    """Display name of a parameter ('sigma' is written σ)."""
    return "σ" if name == "sigma" else name.replace("_", " ")


def _decimals(p: NoiseParam) -> int:
    """Decimals a spin box needs for this parameter's range."""
    return 3 if p.maximum <= 1.0 else 2 if p.maximum <= 10 else 1


def param_editor(p: NoiseParam) -> QWidget:
    """A check box (0/1 integers), spin box (integers) or double spin box, bounded by the parameter."""
    if p.integer and p.minimum == 0 and p.maximum == 1:
        box = QCheckBox()
        box.setChecked(bool(p.default))
    elif p.integer:
        box = QSpinBox()
        box.setRange(int(p.minimum), int(p.maximum))
        box.setValue(int(p.default))
    else:
        box = QDoubleSpinBox()
        box.setDecimals(_decimals(p))
        box.setRange(p.minimum, p.maximum)
        box.setStepType(QAbstractSpinBox.StepType.AdaptiveDecimalStepType)
        box.setValue(p.default)
    box.setToolTip(p.help)
    box.setObjectName(f"param_{p.name}")
    return box


def editor_value(box: QWidget) -> float:
    """The value an editor from `param_editor` holds."""
    if isinstance(box, QCheckBox):
        return 1.0 if box.isChecked() else 0.0
    return float(box.value())  # type: ignore[attr-defined]


class NoisePanel(QGroupBox):
    """Noise type and its parameters, seed, Add/Remove noise, and PSNR/SSIM against the clean image."""

    add_requested = Signal()
    remove_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Noise lab", parent)
        self.type_combo = QComboBox()
        for name, model in NOISE_MODELS.items():
            self.type_combo.addItem(name, name)
            self.type_combo.setItemData(self.type_combo.count() - 1, model.description, Qt.ItemDataRole.ToolTipRole)
        self.type_combo.setToolTip("Noise model from the engine's registry")
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(placeholder-text);")
        self.params_form = QFormLayout()
        self.params_form.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, QWidget] = {}
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, MAX_SEED)
        self.seed_box.setToolTip("Same seed, same noise: results are reproducible")
        new_seed = QToolButton()
        new_seed.setText("New")
        new_seed.setToolTip("Pick a random seed")
        new_seed.clicked.connect(lambda: self.seed_box.setValue(random.randint(0, 99999)))
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed_box, 1)
        seed_row.addWidget(new_seed)

        self.add_button = QPushButton("Add noise")
        self.add_button.setToolTip("Corrupt the clean image with this noise (Ctrl+Shift+N)")
        self.add_button.clicked.connect(self.add_requested)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Go back to the clean image")
        self.remove_button.clicked.connect(self.remove_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.add_button, 1)

        self.metrics_hint = QLabel("Add noise to a clean image to measure PSNR and SSIM against it.")
        self.metrics_hint.setWordWrap(True)
        self.metrics_hint.setStyleSheet("color: palette(placeholder-text);")
        self.metrics = QWidget()
        grid = QGridLayout(self.metrics)
        grid.setContentsMargins(0, 4, 0, 0)
        grid.addWidget(QLabel("<b>vs clean</b>"), 0, 0)
        grid.addWidget(QLabel("<b>PSNR</b>"), 0, 1, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(QLabel("<b>SSIM</b>"), 0, 2, Qt.AlignmentFlag.AlignRight)
        self.metric_labels: dict[str, tuple[QLabel, QLabel]] = {}
        for row, key in enumerate(("noisy", "denoised"), start=1):
            grid.addWidget(QLabel(key.capitalize()), row, 0)
            labels = (QLabel("–"), QLabel("–"))
            for col, label in enumerate(labels, start=1):
                label.setObjectName(f"{key}_{'psnr' if col == 1 else 'ssim'}")
                label.setAlignment(Qt.AlignmentFlag.AlignRight)
                label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
                grid.addWidget(label, row, col)
            self.metric_labels[key] = labels
        self.metrics.setVisible(False)

        form = QFormLayout()
        form.addRow("Type", self.type_combo)
        form.addRow(self.description)
        form.addRow(self.params_form)
        form.addRow("Seed", seed_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.metrics_hint)
        layout.addWidget(self.metrics)
        self.type_combo.currentIndexChanged.connect(self._rebuild_params)
        self._rebuild_params()
        self.set_has_noise(False)

    def _rebuild_params(self) -> None:
        while self.params_form.rowCount():
            self.params_form.removeRow(0)
        self.editors.clear()
        model = NOISE_MODELS[self.noise_name()]
        self.description.setText(model.description)
        for p in model.params:
            editor = param_editor(p)
            self.editors[p.name] = editor
            label = QLabel(param_label(p.name))
            label.setToolTip(p.help)
            self.params_form.addRow(label, editor)

    # --- values -------------------------------------------------------------------------------------
    def noise_name(self) -> str:
        """The chosen noise model's name."""
        return str(self.type_combo.currentData())

    def set_noise_name(self, name: str) -> None:
        """Select a noise model by name."""
        index = self.type_combo.findData(name)
        if index >= 0:
            self.type_combo.setCurrentIndex(index)

    def params(self) -> dict[str, float]:
        """The parameter values, by name."""
        return {name: editor_value(box) for name, box in self.editors.items()}

    def set_param(self, name: str, value: float) -> None:
        """Set one parameter's editor."""
        box = self.editors[name]
        if isinstance(box, QCheckBox):
            box.setChecked(bool(value))
        else:
            box.setValue(value)  # type: ignore[attr-defined]

    def seed(self) -> int:
        """The seed."""
        return self.seed_box.value()

    def describe(self) -> str:
        """A short caption such as 'gaussian σ=25'."""
        parts = [f"{param_label(k).replace(' ', '_')}={v:g}" for k, v in self.params().items()]
        return " ".join([self.noise_name(), *parts])

    # --- state --------------------------------------------------------------------------------------
    def set_has_noise(self, has_noise: bool) -> None:
        """Enable Remove and the metrics table when noise was added."""
        self.remove_button.setEnabled(has_noise)
        self.metrics.setVisible(has_noise)
        self.metrics_hint.setVisible(not has_noise)
        if not has_noise:
            self.set_metrics(None, None)

    def set_metrics(self, noisy: tuple[float, float] | None, denoised: tuple[float, float] | None) -> None:
        """Show (PSNR, SSIM) of the noisy and the denoised image against the clean one."""
        for key, value in (("noisy", noisy), ("denoised", denoised)):
            psnr_label, ssim_label = self.metric_labels[key]
            psnr_label.setText("–" if value is None else f"{value[0]:.2f} dB")
            ssim_label.setText("–" if value is None else f"{value[1]:.4f}")
