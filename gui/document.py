"""The open image and what was made from it: noisy version, denoised result, strength, residual."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from denoiser.blend import Blend, apply_blend
from denoiser.imageio import Image
from denoiser.metrics import noise_map
from gui.image_convert import heat_overlay, residual

ORIGINAL, NOISY, RESULT, RESIDUAL, NOISE_MAP = "Original", "Noisy", "Result", "Residual", "Noise map"
NOISE_BLOCK = 32  # px: the regions of the noise map
RESIDUAL_GAIN = 4.0


@dataclass
class Document:
    """State of one opened image; the engine's `Image` keeps the metadata that saving writes back."""

    image: Image
    noisy: np.ndarray | None = None
    noise_label: str = ""
    raw_result: np.ndarray | None = None  # the model's output, before the strength blend
    result_is_preview: bool = False
    raw_mosaic: Any = None  # a camera RAW denoised in the raw domain: its denoised mosaic (saved as a DNG)
    blend: Blend = field(default_factory=Blend)  # how the result is finished: strengths, detail, grain
    _blend: tuple[Blend, np.ndarray] | None = field(default=None, repr=False)
    _levels: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # (result, its noise map)

    @property
    def name(self) -> str:
        """File name, or 'Pasted image'."""
        return self.image.path.name if self.image.path is not None else "Pasted image"

    @property
    def source(self) -> np.ndarray:
        """What the denoiser works on: the noisy image when noise was added, else the original."""
        return self.noisy if self.noisy is not None else self.image.data

    @property
    def reference(self) -> np.ndarray | None:
        """The clean image to measure against (exists only when noise was added to it)."""
        return self.image.data if self.noisy is not None else None

    def set_noisy(self, noisy: np.ndarray | None, label: str = "") -> None:
        """Replace (or remove, with None) the noisy image; any result of the old input is dropped."""
        self.noisy = noisy
        self.noise_label = label if noisy is not None else ""
        self.set_result(None)

    def set_result(self, raw: np.ndarray | None, preview: bool = False) -> None:
        """The model's output for `source` (None clears it); `preview` marks a partly denoised one."""
        self.raw_result = raw
        self.raw_mosaic = None
        self.result_is_preview = preview and raw is not None
        self._blend = None

    def set_raw_result(self, developed: np.ndarray, mosaic: Any) -> None:
        """A raw-domain result: its develop (what the views show) and the denoised mosaic (for DNG)."""
        self.set_result(developed)
        self.raw_mosaic = mosaic

    @property
    def is_camera_raw(self) -> bool:
        """A camera RAW file opened as it is (its develop), with no noise added."""
        return self.image.format == "raw" and self.image.path is not None and self.noisy is None

    def set_blend(self, blend: Blend) -> None:
        """How the result is blended with the input and finished (applied when the result is next read)."""
        self.blend = blend

    @property
    def strength(self) -> float:
        """Blend factor applied to the result (1 = fully denoised)."""
        return self.blend.strength

    @property
    def luma(self) -> float:
        """Share of the luminance change kept (some grain stays below 1)."""
        return self.blend.luma

    @property
    def chroma(self) -> float:
        """Share of the colour change kept."""
        return self.blend.chroma

    def result(self) -> np.ndarray | None:
        """The result blended with the input as `blend` says (cached per blend)."""
        if self.raw_result is None:
            return None
        blend = self.blend
        if self._blend is None or self._blend[0] != blend:
            self._blend = (blend, apply_blend(self.source, self.raw_result, blend))
        return self._blend[1]

    def residual(self) -> np.ndarray | None:
        """|input − result| × RESIDUAL_GAIN."""
        out = self.result()
        return None if out is None else residual(self.source, out, RESIDUAL_GAIN)

    def noise_levels(self) -> np.ndarray | None:
        """RMS levels (0–255) removed per NOISE_BLOCK region: the noise region by region (computed once per
        result, which the view and its caption both read)."""
        out = self.result()
        if out is None:
            return None
        if self._levels is None or self._levels[0] is not out:
            self._levels = (out, noise_map(self.source, out, NOISE_BLOCK))
        return self._levels[1]

    def noise_map_view(self) -> np.ndarray | None:
        """The per-region noise levels as a colour map over the image (yellow = the noisiest region)."""
        levels = self.noise_levels()
        return None if levels is None else heat_overlay(self.source, levels, float(levels.max()))

    def view_names(self) -> list[str]:
        """The images there are to show, in menu order."""
        names = [ORIGINAL]
        if self.noisy is not None:
            names.append(NOISY)
        if self.raw_result is not None:
            names += [RESULT, RESIDUAL, NOISE_MAP]
        return names

    def view(self, name: str) -> np.ndarray:
        """Pixels of one of `view_names()`."""
        arrays = {ORIGINAL: self.image.data, NOISY: self.noisy}
        if name in (RESULT, RESIDUAL, NOISE_MAP):
            out = {RESULT: self.result, RESIDUAL: self.residual, NOISE_MAP: self.noise_map_view}[name]()
        else:
            out = arrays.get(name)
        if out is None:
            raise KeyError(f"no '{name}' image")
        return out

    def view_caption(self, name: str) -> str:
        """Caption drawn on a view."""
        if name == NOISY and self.noise_label:
            return f"Noisy ({self.noise_label})"
        if name == RESULT:
            b = self.blend
            shares = (("strength", b.strength, b.strength < 1), ("luminance", b.luma, b.luma < 1),
                      ("colour", b.chroma, b.chroma < 1), ("detail", b.detail, b.detail > 0),
                      ("grain", b.grain, b.grain > 0))
            tags = [f"{name} {value * 100:.0f} %" for name, value, shown in shares if shown] + (
                ["preview region"] if self.result_is_preview else [])
            return f"Result ({', '.join(tags)})" if tags else "Result"
        if name == RESIDUAL:
            return f"Residual |input − result| ×{RESIDUAL_GAIN:g}"
        if name == NOISE_MAP:
            levels = self.noise_levels()
            top = float(levels.max()) if levels is not None and levels.size else 0.0
            return f"Noise removed per {NOISE_BLOCK} px region: blue 0 → yellow {top:.1f} levels rms"
        return name

    def default_pair(self) -> tuple[str, str]:
        """Sensible A and B: input vs result, or clean vs noisy, or the original twice."""
        if self.raw_result is not None:
            return (NOISY if self.noisy is not None else ORIGINAL), RESULT
        if self.noisy is not None:
            return ORIGINAL, NOISY
        return ORIGINAL, ORIGINAL
