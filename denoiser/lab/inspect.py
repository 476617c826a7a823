"""Looking inside one model on one image (the GUI's Lab window): code activations, mean activation per code
unit against the sparsity target, the reconstruction-error (anomaly) map, and the PSNR of the lab's models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from denoiser.archs import DenoiserNet
from denoiser.checkpoint import ModelInfo, load_checkpoint
from denoiser.data import to_channels
from denoiser.lab.common import LAB_PREFIX
from denoiser.losses import mean_code_activation
from denoiser.metrics import psnr
from denoiser.noise import add_noise
from denoiser.progress import Progress, ProgressGen

MAX_SIZE = 256
CROP_MULTIPLE = 32
MAX_UNITS = 64


@dataclass
class PsnrRow:
    """One lab model on the noisy image."""

    model: str
    trained_on: str
    noisy_psnr: float
    psnr: float

    @property
    def gain(self) -> float:
        """Output PSNR minus noisy-input PSNR (dB)."""
        return self.psnr - self.noisy_psnr


@dataclass
class Inspection:
    """One model run on one (centre-cropped) image."""

    model: str
    image: np.ndarray  # (H, W, C) the analysed crop, in the model's channels
    code: np.ndarray  # (units, h, w) code activations
    unit_means: np.ndarray  # ρ̂_j, mean activation per unit mapped into (0, 1) as the KL loss does
    rho: float | None  # sparsity target if the model was trained with the KL penalty
    output: np.ndarray  # (H, W, C) the model's output for the clean crop
    error: np.ndarray  # (H, W) squared error of the output against the crop (the anomaly map)
    sigma: float
    seed: int
    in_unit_interval: bool  # the code lies in (0, 1) (sigmoid code units)
    psnr_rows: list[PsnrRow] = field(default_factory=list)


def is_lab_model(info: ModelInfo) -> bool:
    """Whether a listed model was written by the lab."""
    return info.name.startswith(LAB_PREFIX) or bool(info.training.get("lab"))


def sparsity_target(info: ModelInfo) -> float | None:
    """ρ of a model trained with the KL sparsity penalty (β > 0), else None."""
    loss = info.training.get("config", {}).get("loss", {})
    if float(loss.get("sparsity_beta", 0) or 0) > 0:
        return float(loss.get("sparsity_rho", 0.05))
    return None


def training_label(info: ModelInfo) -> str:
    """How a model was trained, in a few words."""
    if info.training.get("training_noise"):
        return str(info.training["training_noise"])
    name = info.noise.get("name", "")
    return str(name) if name else "—"


def centre_crop(image: np.ndarray, size: int = MAX_SIZE, multiple: int = CROP_MULTIPLE) -> np.ndarray:
    """The centre of an (H, W, C) image, at most `size` square and a multiple of `multiple` on each side."""
    h, w = image.shape[:2]
    ch = max(multiple, min(size, h) // multiple * multiple)
    cw = max(multiple, min(size, w) // multiple * multiple)
    if h < ch or w < cw:
        image = np.pad(image, ((0, max(0, ch - h)), (0, max(0, cw - w)), (0, 0)), mode="reflect")
        h, w = image.shape[:2]
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(image[y : y + ch, x : x + cw], dtype=np.float32)


def _forward(net: DenoiserNet, image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(output (H, W, C), code (units, h, w)) of one (H, W, C) image; `sigma` is on the 0–255 scale."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        res = net.encode_decode(x, torch.tensor([sigma / 255.0]))
    return res.image[0].permute(1, 2, 0).numpy(), res.code[0].float().numpy()


def activation_grid(code: np.ndarray, in_unit_interval: bool, max_units: int = MAX_UNITS, gap: int = 1) -> np.ndarray:
    """The code's feature maps tiled in a near-square grid, as an (H, W) float image in [0, 1].

    Unit-interval (sigmoid) codes are shown as they are, so sparse codes look dark; other codes are scaled per
    unit from its minimum to its maximum. Tiles are separated by `gap` mid-gray pixels.
    """
    units = code[:max_units].astype(np.float32)
    n, h, w = units.shape
    if not in_unit_interval:
        lo = units.reshape(n, -1).min(axis=1)[:, None, None]
        hi = units.reshape(n, -1).max(axis=1)[:, None, None]
        units = (units - lo) / np.maximum(hi - lo, 1e-8)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), 0.5, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = units[i]
    return np.clip(grid, 0.0, 1.0)


def heatmap(values: np.ndarray) -> np.ndarray:
    """An (H, W) map as an (H, W, 3) black–red–yellow–white image, scaled to its 99.5th percentile."""
    top = float(np.percentile(values, 99.5)) or float(values.max()) or 1.0
    t = np.clip(values / top, 0.0, 1.0)[..., None]
    stops = np.array([[0, 0, 0], [0.75, 0.05, 0.1], [1, 0.8, 0.1], [1, 1, 1]], np.float32)
    pos = t * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    frac = pos - i
    return (stops[i[..., 0]] * (1 - frac) + stops[i[..., 0] + 1] * frac).astype(np.float32)


def inspect_work(image: np.ndarray, model: ModelInfo, lab_models: list[ModelInfo], sigma: float = 25.0,
                 seed: int = 0) -> ProgressGen[Inspection]:
    """Analyse `model` on the centre of `image` and score each of `lab_models` on it with seeded noise."""
    total = 1 + len(lab_models)
    yield Progress(0, total, f"running {model.name}")
    crop = centre_crop(image)
    loaded = load_checkpoint(Path(model.path), model.source)
    net = loaded.net
    x = to_channels(crop, net.in_channels)
    output, code = _forward(net, x, 0.0)
    code_t = torch.from_numpy(code)[None]
    means = mean_code_activation(code_t, net.code_in_unit_interval).numpy()
    error = ((np.clip(output, 0, 1) - x) ** 2).mean(axis=2)
    result = Inspection(model.name, x, code, means, sparsity_target(model), np.clip(output, 0, 1), error, sigma, seed,
                        net.code_in_unit_interval)
    for i, info in enumerate(lab_models, 1):
        yield Progress(i, total, f"PSNR of {info.name}")
        lab_net = load_checkpoint(Path(info.path), info.source).net
        clean = to_channels(crop, lab_net.in_channels)
        noisy = add_noise(clean, "gaussian", seed=seed, clip=False, sigma=sigma)
        out, _ = _forward(lab_net, noisy, sigma)
        result.psnr_rows.append(PsnrRow(info.name, training_label(info),
                                        psnr(clean * 255, np.clip(noisy, 0, 1) * 255),
                                        psnr(clean * 255, np.clip(out, 0, 1) * 255)))
    return result
