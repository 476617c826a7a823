"""The `Image` type, the formats and bit depths read and written, and pixel quantisation.

Part of the image I/O (`denoiser.imageio` is its public face).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

try:  # optional: camera RAW
    import rawpy
except ImportError:  # pragma: no cover - depends on the environment
    rawpy = None  # type: ignore[assignment]


MAX_PIXELS: int = 400_000_000
# Pillow raises its own DecompressionBombError above 2x this (caught and re-worded below); our own
# header check rejects anything above MAX_PIXELS before pixels are decoded.
PILImage.MAX_IMAGE_PIXELS = MAX_PIXELS

HAVE_RAW: bool = rawpy is not None
RAW_EXTENSIONS: frozenset[str] = frozenset(
    {".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2",
     ".pef", ".srw", ".3fr", ".erf", ".kdc", ".mrw", ".iiq", ".rwl", ".x3f"}
)
_EXTENSION_FORMATS: dict[str, str] = {
    ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff",
    ".webp": "webp", ".bmp": "bmp",
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_EXTENSION_FORMATS) | (RAW_EXTENSIONS if HAVE_RAW else frozenset())

# Bit depths each output format can hold, in increasing order.
FORMAT_BIT_DEPTHS: dict[str, tuple[int, ...]] = {
    "png": (8, 16), "jpeg": (8,), "webp": (8,), "bmp": (8,), "tiff": (8, 16, 32),
}
_FORMAT_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "tif": "tiff"}
_METADATA_FORMATS = frozenset({"jpeg", "png", "webp", "tiff"})  # can hold EXIF and ICC

_PIL_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "TIFF": "tiff", "WEBP": "webp", "BMP": "bmp", "DIB": "bmp"}
_PIL_OPEN_FORMATS = ["PNG", "JPEG", "TIFF", "WEBP", "BMP", "DIB"]
_PIL_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_EXIF_HEADER = b"Exif\x00\x00"
_ORIENTATION = 0x0112
_EXIF_IFD, _GPS_IFD, _INTEROP_IFD = 0x8769, 0x8825, 0xA005
# IFD0 tags that are photo metadata (not image structure) and so are carried between TIFF and EXIF.
_EXIF_BASE_TAGS = (270, 271, 272, 282, 283, 296, 305, 306, 315, 33432)
_TIFF_STRIP_BYTES = 256 * 1024


@dataclass(eq=False)
class Image:
    """Decoded pixels plus everything needed to write them back faithfully."""

    data: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    exif: bytes | None
    icc_profile: bytes | None
    format: str
    path: Path | None = None

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim != 3 or data.shape[2] not in (1, 3):
            raise ValueError(f"image data must have shape (H, W, 1) or (H, W, 3), got {data.shape}")
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        self.data = data
        if self.alpha is not None:
            alpha = np.asarray(self.alpha)
            if alpha.shape != data.shape[:2]:
                raise ValueError(f"alpha shape {alpha.shape} does not match image size {data.shape[:2]}")
            self.alpha = alpha if alpha.dtype == np.float32 else alpha.astype(np.float32)
        if self.bit_depth not in (8, 16, 32):
            raise ValueError(f"bit_depth must be 8, 16 or 32, got {self.bit_depth}")
        if self.path is not None:
            self.path = Path(self.path)

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def channels(self) -> int:
        return int(self.data.shape[2])

    @property
    def megapixels(self) -> float:
        return self.height * self.width / 1e6

    def with_data(self, new_data: np.ndarray) -> Image:
        """Same metadata, new pixels; alpha is kept when the size is unchanged, dropped otherwise."""
        new_data = np.asarray(new_data)
        keep_alpha = self.alpha is not None and new_data.ndim == 3 and new_data.shape[:2] == self.alpha.shape
        return dataclasses.replace(self, data=new_data, alpha=self.alpha if keep_alpha else None)


# --------------------------------------------------------------------------------------------------
# Small public helpers


QUANTIZE_ROWS = 256  # rows converted at a time, so a 50-megapixel image needs no full-size float temporaries


def _quantize(data: np.ndarray, scale: float, dtype: type) -> np.ndarray:
    """round(clip(x * scale)) as `dtype`, a band of rows at a time; NaN becomes 0."""
    arr = np.asarray(data)
    flat = arr.reshape(1) if arr.ndim == 0 else arr
    out = np.empty(flat.shape, dtype=dtype)
    for r in range(0, flat.shape[0], QUANTIZE_ROWS):
        band = np.nan_to_num(flat[r : r + QUANTIZE_ROWS].astype(np.float32), nan=0.0, copy=False)
        band *= np.float32(scale)
        np.clip(band, 0.0, scale, out=band)
        out[r : r + QUANTIZE_ROWS] = np.rint(band, out=band)
    return out.reshape(arr.shape)


def to_uint8(data: np.ndarray) -> np.ndarray:
    """round(clip(x * 255)) as uint8; NaN becomes 0."""
    return _quantize(data, 255.0, np.uint8)


def to_uint16(data: np.ndarray) -> np.ndarray:
    """round(clip(x * 65535)) as uint16; NaN becomes 0."""
    return _quantize(data, 65535.0, np.uint16)


def native_pixels(image: Image) -> np.ndarray:
    """The pixels at the file's own integer depth (exact for 8- and 16-bit files: a quarter or half of
    the float32 memory), or the float data for 32-bit images; the engine's denoiser takes either."""
    if image.bit_depth == 8:
        return to_uint8(image.data)
    if image.bit_depth == 16:
        return to_uint16(image.data)
    return image.data


def _normalise_format(name: str) -> str:
    name = name.lower().lstrip(".")
    return _FORMAT_ALIASES.get(name, name)


def output_format_for(path: str | Path) -> str:
    """Output format name for a file name's extension; ValueError when it cannot be written."""
    ext = Path(path).suffix.lower()
    fmt = _EXTENSION_FORMATS.get(ext)
    if fmt is None:
        if ext in RAW_EXTENSIONS:
            raise ValueError(f"cannot write RAW files ('{ext}') from an image; save as .tif or .png to keep 16 bits "
                             "(a camera RAW input is written as .dng)")
        known = ", ".join(sorted(_EXTENSION_FORMATS))
        raise ValueError(f"unknown image file extension '{ext or '(none)'}' (use one of {known})")
    return fmt


def _to_float(a: np.ndarray, scale: float) -> np.ndarray:
    """Integer samples as float32 in [0, 1] (`scale` is the format's maximum), without a float64 copy."""
    out = a.astype(np.float32)
    out /= scale
    return out
