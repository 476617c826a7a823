"""Image load/save that keeps bit depth, alpha, EXIF and ICC.

Pixels travel as float32 in [0, 1] (float TIFFs may go outside it), shape (H, W, C) with C == 1 or 3;
alpha travels beside them untouched. 8-bit files come back as 8-bit, 16-bit as 16-bit, float32 TIFF
as float32. EXIF orientation is applied on load and reset to 1 in the kept EXIF. Every failure is an
``ImageReadError`` / ``ImageWriteError`` naming the file; saving is atomic (temp file + ``os.replace``).

Decoders: Pillow for 8-bit files; tifffile for 16-bit/float TIFF; Pillow's own PNG/TIFF decoder run
twice with the high-byte and low-byte unpackers for 16-bit colour (Pillow alone truncates those to
8 bits); rawpy for camera RAW when it is installed. Encoders: Pillow for 8-bit files; a small zlib
PNG encoder for 16-bit PNG; a small Deflate TIFF writer (IFD built by Pillow) for every TIFF, so
EXIF sub-IFDs and ICC profiles survive at all depths.
"""

from __future__ import annotations

import dataclasses
import errno
import io
import stat
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import TiffImagePlugin, TiffTags, UnidentifiedImageError

from denoiser.atomic import TargetExistsError, atomic_write
from denoiser.errors import ImageReadError, ImageWriteError, OutputExistsError

try:  # optional: colour-managed CMYK -> sRGB
    from PIL import ImageCms
except ImportError:  # pragma: no cover - Pillow built without LittleCMS
    ImageCms = None  # type: ignore[assignment]

try:  # optional: camera RAW
    import rawpy
except ImportError:  # pragma: no cover - depends on the environment
    rawpy = None  # type: ignore[assignment]

__all__ = [
    "FORMAT_BIT_DEPTHS",
    "HAVE_RAW",
    "MAX_PIXELS",
    "RAW_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "Image",
    "load_image",
    "output_format_for",
    "read_header",
    "save_image",
    "to_uint8",
    "to_uint16",
]

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


# --------------------------------------------------------------------------------------------------
# EXIF helpers


def _normalise_exif(raw: bytes | None) -> bytes | None:
    """EXIF bytes in JPEG APP1 form ('Exif\\0\\0' + TIFF structure), or None when unusable."""
    if not raw:
        return None
    raw = bytes(raw)
    if not raw.startswith(_EXIF_HEADER):
        raw = _EXIF_HEADER + raw
    if raw[6:10] not in (b"II*\x00", b"MM\x00*"):
        return None
    return raw


def _find_orientation(exif: bytes) -> tuple[int, int, str] | None:
    """(value, byte offset of the value, byte order) of IFD0's Orientation tag, or None."""
    try:
        tiff = exif[6:] if exif.startswith(_EXIF_HEADER) else exif
        order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
        if order is None:
            return None
        ifd = struct.unpack_from(order + "I", tiff, 4)[0]
        (count,) = struct.unpack_from(order + "H", tiff, ifd)
        for i in range(count):
            entry = ifd + 2 + 12 * i
            tag, typ, n = struct.unpack_from(order + "HHI", tiff, entry)
            if tag == _ORIENTATION and typ == 3 and n >= 1:  # SHORT
                (value,) = struct.unpack_from(order + "H", tiff, entry + 8)
                offset = entry + 8 + (len(exif) - len(tiff))
                return value, offset, order
    except (struct.error, IndexError):
        return None
    return None


def _exif_orientation(exif: bytes | None) -> int:
    found = _find_orientation(exif) if exif else None
    return found[0] if found and 1 <= found[0] <= 8 else 1


def _reset_orientation(exif: bytes | None) -> bytes | None:
    """EXIF with Orientation = 1, patched in place so maker notes and offsets stay valid."""
    if not exif:
        return None
    found = _find_orientation(exif)
    if found is None or found[0] == 1:
        return exif
    _, offset, order = found
    patched = bytearray(exif)
    struct.pack_into(order + "H", patched, offset, 1)
    return bytes(patched)


def _exif_from_tiff(path: Path) -> bytes | None:
    """Photo metadata of a TIFF's first IFD (base tags, EXIF and GPS sub-IFDs) as EXIF bytes."""
    try:
        with open(path, "rb") as fp:
            src = PILImage.Exif()
            src.load_from_fp(fp)
            out = PILImage.Exif()
            for tag in _EXIF_BASE_TAGS:
                if tag in src:
                    out[tag] = src[tag]
            for ifd_tag in (_EXIF_IFD, _GPS_IFD):
                sub = dict(src.get_ifd(ifd_tag))
                sub.pop(_INTEROP_IFD, None)
                if sub:
                    out[ifd_tag] = sub
            if not any(t in out for t in (_EXIF_IFD, _GPS_IFD, 271, 272, 306, 315, 33432)):
                return None  # only resolution/software: not worth carrying as EXIF
            out[_ORIENTATION] = 1
            return _normalise_exif(out.tobytes())
    except Exception:  # metadata is best effort; the pixels still load
        return None


def _exif_tags_for_tiff(exif: bytes | None) -> dict[int, Any]:
    """EXIF bytes -> IFD0 tags (photo metadata only) and EXIF/GPS sub-IFDs as dicts."""
    if not exif:
        return {}
    try:
        src = PILImage.Exif()
        src.load(exif)
        tags: dict[int, Any] = {t: src[t] for t in _EXIF_BASE_TAGS if t in src}
        for ifd_tag in (_EXIF_IFD, _GPS_IFD):
            sub = dict(src.get_ifd(ifd_tag))
            sub.pop(_INTEROP_IFD, None)
            if sub:
                tags[ifd_tag] = sub
        return tags
    except Exception:  # unreadable EXIF is dropped rather than failing the save
        return {}


def _apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Turn stored pixels (H, W, ...) into display orientation, like PIL.ImageOps.exif_transpose."""
    if orientation == 2:
        a = a[:, ::-1]
    elif orientation == 3:
        a = a[::-1, ::-1]
    elif orientation == 4:
        a = a[::-1]
    elif orientation == 5:
        a = a.swapaxes(0, 1)
    elif orientation == 6:
        a = np.rot90(a, k=-1)
    elif orientation == 7:
        a = a.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        a = np.rot90(a, k=1)
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------------------------------
# Reading


def _check_file(path: str | Path) -> tuple[Path, str]:
    """Fail early, with a clear reason, on anything that is not a non-empty supported file."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ImageReadError(p, "file does not exist") from None
    except PermissionError:
        raise ImageReadError(p, "permission denied") from None
    except OSError as e:
        raise ImageReadError(p, e.strerror or str(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(p, "this is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(p, "not a regular file")
    ext = p.suffix.lower()
    if ext not in SUPPORTED_EXTENSIONS:
        if ext in RAW_EXTENSIONS:
            raise ImageReadError(p, "RAW files need the optional 'rawpy' package (pip install rawpy)")
        known = ", ".join(sorted(SUPPORTED_EXTENSIONS - RAW_EXTENSIONS))
        raw = ", and camera RAW such as .cr2, .nef, .arw, .dng" if HAVE_RAW else ""
        raise ImageReadError(p, f"unsupported file type '{ext or '(no extension)'}' (supported: {known}{raw})")
    if st.st_size == 0:
        raise ImageReadError(p, "file is empty")
    return p, ext


def _check_size(path: Path, width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"image has no pixels ({width} x {height})")
    if width * height > MAX_PIXELS:
        raise ImageReadError(
            path,
            f"image is too large: {width} x {height} pixels ({width * height / 1e6:.0f} megapixels; "
            f"the limit is {MAX_PIXELS / 1e6:.0f})",
        )


def _sniff(path: Path) -> bytes:
    with open(path, "rb") as fp:
        return fp.read(33)


def _png_ihdr(path: Path, head: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from a PNG's IHDR, read without Pillow."""
    if len(head) < 26 or head[12:16] != b"IHDR":
        raise ImageReadError(path, "corrupt PNG: the header (IHDR) is missing or truncated")
    width, height, depth, ctype = struct.unpack(">IIBB", head[16:26])
    if depth not in (1, 2, 4, 8, 16) or ctype not in (0, 2, 3, 4, 6):
        raise ImageReadError(path, f"corrupt PNG header (bit depth {depth}, colour type {ctype})")
    return width, height, depth, ctype


def _open_pil(path: Path) -> PILImage.Image:
    return PILImage.open(path, formats=_PIL_OPEN_FORMATS)


def _wrap_read_errors(path: Path, fn: Callable[[], Any]) -> Any:
    """Run a read step, turning any library exception into an ImageReadError naming the file."""
    try:
        return fn()
    except ImageReadError:
        raise
    except MemoryError:
        raise ImageReadError(path, "not enough memory to decode the image") from None
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as e:
        raise ImageReadError(path, f"image is too large (over {MAX_PIXELS / 1e6:.0f} megapixels)") from e
    except UnidentifiedImageError as e:
        raise ImageReadError(path, "not a recognised image (the file is corrupt or in an unsupported format)") from e
    except PermissionError as e:
        raise ImageReadError(path, "permission denied") from e
    except Exception as e:
        detail = str(e) or type(e).__name__
        raise ImageReadError(path, f"the file is corrupt or truncated ({detail})") from e


def read_header(path: str | Path) -> tuple[int, int, int]:
    """(width, height, channels) as load_image would return them, without decoding pixels.

    Width/height are after EXIF orientation; channels count colour only (1 or 3), not alpha.
    """
    p, ext = _check_file(path)
    return _wrap_read_errors(p, lambda: _read_header(p, ext))


def _read_header(p: Path, ext: str) -> tuple[int, int, int]:
    if ext in RAW_EXTENSIONS:
        with rawpy.imread(str(p)) as raw:
            s = raw.sizes
            width, height = (s.height, s.width) if s.flip in (5, 6) else (s.width, s.height)
            _check_size(p, width, height)
            return width, height, 3
    head = _sniff(p)
    if head[:4] in _TIFF_MAGICS:
        with tifffile.TiffFile(p) as tif:
            page = tif.pages[0]
            width, height = int(page.imagewidth), int(page.imagelength)
            _check_size(p, width, height)
            gray = page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.MINISWHITE)
            tag = page.tags.get(_ORIENTATION)
            orientation = int(tag.value) if tag is not None else 1
    else:
        gray_png = None
        if head.startswith(_PNG_SIGNATURE):
            w, h, _depth, ctype = _png_ihdr(p, head)
            _check_size(p, w, h)
            gray_png = ctype in (0, 4)
        with _open_pil(p) as im:
            width, height = im.size
            _check_size(p, width, height)
            gray = gray_png if gray_png is not None else im.mode in _PIL_GRAY_MODES
            exif = _normalise_exif(im.info.get("exif"))
            orientation = _exif_orientation(exif)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return width, height, 1 if gray else 3


def load_image(path: str | Path) -> Image:
    """Decode an image file to float32 pixels, keeping bit depth, alpha, EXIF and ICC."""
    p, ext = _check_file(path)
    image = _wrap_read_errors(p, lambda: _load(p, ext))
    image.path = p
    return image


def _load(p: Path, ext: str) -> Image:
    if ext in RAW_EXTENSIONS:
        return _load_raw(p)
    head = _sniff(p)
    if head[:4] in _TIFF_MAGICS:
        return _load_tiff(p)
    ihdr = None
    if head.startswith(_PNG_SIGNATURE):
        ihdr = _png_ihdr(p, head)
        _check_size(p, ihdr[0], ihdr[1])
    return _load_pillow(p, ihdr)


def _load_raw(p: Path) -> Image:
    """A camera RAW's develop. A Bayer file is developed from the DNG the raw denoise would write of it, so
    the original and a raw-denoised result are developed alike and compare pixel for pixel."""
    from denoiser.raw import develop, dng_bytes, read_raw

    with rawpy.imread(str(p)) as raw:
        s = raw.sizes
        _check_size(p, s.width, s.height)
        bayer = np.asarray(raw.raw_pattern).shape == (2, 2)
    rgb = develop(dng_bytes(read_raw(p)) if bayer else p)
    data = rgb.astype(np.float32)
    data /= 65535.0
    return Image(data=data, alpha=None, bit_depth=16, exif=None, icc_profile=None, format="raw")


def _to_float(a: np.ndarray, scale: float) -> np.ndarray:
    out = a.astype(np.float32)
    out /= scale
    return out


def _decode_pil_rawmode(path: Path, rawmode: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Decode with Pillow's own decoder but another unpacker (same bits per pixel) -> (uint8 array, info)."""
    with _open_pil(path) as im:
        tiles = []
        for tile in im.tile:
            args = tile.args
            if isinstance(args, str):
                args = rawmode
            elif isinstance(args, tuple) and args and isinstance(args[0], str):
                args = (rawmode, *args[1:])
            else:
                raise ImageReadError(path, "16-bit colour images are not supported by this Pillow version")
            tiles.append(tile._replace(args=args))
        im.tile = tiles
        im.load()
        return np.array(im), dict(im.info)


def _hi_lo_rawmodes(rawmode: str) -> tuple[str, str]:
    """Pillow unpackers that pick the high and the low byte of each 16-bit sample."""
    base, order = rawmode[:-1], rawmode[-1]
    if order == "N":
        order = "L" if sys.byteorder == "little" else "B"
    return base + order, base + ("B" if order == "L" else "L")


def _decode_16bit_colour(path: Path, rawmode: str) -> tuple[np.ndarray, dict[str, Any]]:
    """16-bit RGB(A) samples, decoded by Pillow twice: once for the high bytes, once for the low ones."""
    hi_mode, lo_mode = _hi_lo_rawmodes(rawmode)
    hi, info = _decode_pil_rawmode(path, hi_mode)
    lo, _ = _decode_pil_rawmode(path, lo_mode)
    return (hi.astype(np.uint16) << 8) | lo, info


def _transparency_mask(values: np.ndarray, key: Any) -> np.ndarray | None:
    """Alpha from a tRNS colour key: 0 where a pixel equals the key colour."""
    try:
        key_arr = np.asarray(key, dtype=values.dtype).reshape(-1)
    except (TypeError, ValueError):
        return None
    if key_arr.size != values.shape[2]:
        return None
    return (~np.all(values == key_arr, axis=2)).astype(np.float32)


def _cmyk_to_rgb(im: PILImage.Image, icc: bytes | None) -> PILImage.Image:
    """CMYK -> RGB, colour-managed when the file carries a CMYK profile, else Pillow's formula."""
    if icc and ImageCms is not None:
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if src.profile.xcolor_space.strip() == "CMYK":
                out = ImageCms.profileToProfile(im, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
                if out is not None:
                    return out
        except Exception:  # a broken profile falls back to the plain formula
            pass
    return im.convert("RGB")


def _sixteen_bit_colour_rawmode(im: PILImage.Image, fmt: str, ihdr: tuple[int, int, int, int] | None) -> str | None:
    """Pillow rawmode of a 16-bit colour PNG/TIFF (which Pillow alone would cut to 8 bits), else None."""
    if ihdr is not None:
        return {2: "RGB;16B", 4: "LA16", 6: "RGBA;16B"}.get(ihdr[3]) if ihdr[2] == 16 else None
    if fmt == "tiff" and im.mode in ("RGB", "RGBA") and im.tile:
        args = im.tile[0].args
        rawmode = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args else "")
        if isinstance(rawmode, str) and rawmode[-4:-1] == ";16" and rawmode[-1] in "LBN":
            return rawmode
    return None


def _pil_8bit_arrays(im: PILImage.Image, icc: bytes | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Any 8-bit Pillow mode -> (float data (H, W, C), alpha or None); ``icc`` guides CMYK conversion."""
    mode = im.mode
    transparency = im.info.get("transparency")
    if mode == "CMYK":
        im = _cmyk_to_rgb(im, icc)
    elif mode in ("P", "PA"):
        im = im.convert("RGBA" if mode == "PA" or transparency is not None else "RGB")
    elif mode in ("L", "RGB") and transparency is not None:
        im = im.convert("LA" if mode == "L" else "RGBA")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "La":
        im = im.convert("LA")
    elif mode == "RGBa":
        im = im.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGB")
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    alpha = None
    if im.mode in ("LA", "RGBA"):
        alpha = _to_float(arr[..., -1], 255.0)
        arr = arr[..., :-1]
    return _to_float(arr, 255.0), alpha


def _refuse_pages(p: Path, count: int, kind: str, unit: str) -> None:
    """A file of several images (pages, frames) is refused rather than reduced to its first one unannounced."""
    if count > 1:
        raise ImageReadError(p, f"{kind} with {count} {unit}: only single images are supported; "
                                f"split it into one file per {unit[:-1]} first")


_ANIMATED_FORMATS = {"WEBP": "animated WebP", "PNG": "animated PNG"}  # (TIFF pages: refused by _load_tiff)


def _load_pillow(p: Path, ihdr: tuple[int, int, int, int] | None) -> Image:
    with _open_pil(p) as im:
        fmt = _PIL_FORMATS.get(im.format or "")
        if fmt is None:
            raise ImageReadError(p, f"unsupported image format {im.format}")
        if im.format in _ANIMATED_FORMATS:  # (an MPO camera JPEG's extra frames are previews: kept as JPEG)
            _refuse_pages(p, int(getattr(im, "n_frames", 1)), _ANIMATED_FORMATS[im.format], "frames")
        _check_size(p, *im.size)
        sixteen = _sixteen_bit_colour_rawmode(im, fmt, ihdr)
        alpha: np.ndarray | None = None
        if sixteen == "LA16":
            # 16-bit gray+alpha has the byte layout of 8-bit RGBA: one lossless decode.
            raw8, info = _decode_pil_rawmode(p, "RGBA")
            raw16 = raw8.astype(np.uint16)
            data = _to_float((raw16[..., 0:1] << 8) | raw16[..., 1:2], 65535.0)
            alpha = _to_float((raw16[..., 2] << 8) | raw16[..., 3], 65535.0)
            bit_depth = 16
        elif sixteen is not None:
            values, info = _decode_16bit_colour(p, sixteen)
            data = _to_float(values[..., :3], 65535.0)
            if values.shape[2] == 4:
                alpha = _to_float(values[..., 3], 65535.0)
            elif info.get("transparency") is not None:
                alpha = _transparency_mask(values, info["transparency"])
            bit_depth = 16
        else:
            im.load()
            info = im.info
            mode = im.mode
            if mode.startswith("I;16") or mode == "I":
                values = np.asarray(im)
                scale = 65535.0 if mode != "I" or values.max(initial=0) <= 65535 else 4294967295.0
                data = _to_float(np.clip(values, 0, None)[..., None], scale)
                transparency = info.get("transparency")
                if isinstance(transparency, int):
                    alpha = (values != transparency).astype(np.float32)
                bit_depth = 16
            elif mode == "F":
                data = np.nan_to_num(np.asarray(im, dtype=np.float32), nan=0.0)[..., None]
                bit_depth = 32
            else:
                data, alpha = _pil_8bit_arrays(im, info.get("icc_profile"))
                bit_depth = 8
        icc = info.get("icc_profile") or None
        if im.mode == "CMYK":
            icc = None  # a CMYK profile must never tag RGB pixels
        if fmt == "tiff":
            exif = _exif_from_tiff(p)
            orientation = 1  # Pillow applies TIFF orientation itself while loading
        else:
            exif = _normalise_exif(info.get("exif"))
            orientation = _exif_orientation(exif)
            exif = _reset_orientation(exif)

    if orientation != 1:
        data = _apply_orientation(data, orientation)
        alpha = _apply_orientation(alpha, orientation) if alpha is not None else None
    return Image(data=data, alpha=alpha, bit_depth=bit_depth, exif=exif, icc_profile=icc, format=fmt)


def _load_tiff(p: Path) -> Image:
    """16-bit/float TIFFs through tifffile; 8-bit ones (and what tifffile cannot decode) through Pillow."""
    tifffile_error: Exception | None = None
    with tifffile.TiffFile(p) as tif:
        if not tif.pages:
            raise ImageReadError(p, "TIFF file has no images")
        _refuse_pages(p, sum(1 for pg in tif.pages if not getattr(pg, "is_reduced", False)), "TIFF", "pages")
        page = tif.pages[0]
        _check_size(p, int(page.imagewidth), int(page.imagelength))
        high = page.bitspersample > 8 or page.sampleformat == tifffile.SAMPLEFORMAT.IEEEFP
        if high:
            try:
                arr = page.asarray()
            except Exception as e:  # e.g. LZW without imagecodecs: let Pillow (libtiff) try
                tifffile_error = e
            else:
                return _tiff_page_to_image(p, page, arr)
    try:
        return _load_pillow(p, None)
    except Exception as pil_error:
        if tifffile_error is not None:
            raise ImageReadError(p, f"cannot decode this TIFF ({tifffile_error})") from pil_error
        try:  # 8-bit layouts Pillow does not know (extra samples, planar) may still suit tifffile
            with tifffile.TiffFile(p) as tif:
                page = tif.pages[0]
                return _tiff_page_to_image(p, page, page.asarray())
        except Exception:
            raise pil_error from None


def _tiff_page_to_image(p: Path, page: Any, arr: np.ndarray) -> Image:
    """A tifffile page array -> Image: layout to (H, W, S), scale, colour space, alpha, orientation."""
    photometric = page.photometric
    spp = int(page.samplesperpixel)
    axes = str(page.axes)
    arr = np.asarray(arr)
    # Normalise to (H, W, S).
    keep = [i for i, ax in enumerate(axes) if ax in "YXS"]
    if len(keep) != len(axes):
        if any(arr.shape[i] != 1 for i, ax in enumerate(axes) if ax not in "YXS"):
            raise ImageReadError(p, f"multi-dimensional TIFF layout '{axes}' is not supported")
        arr = arr.reshape([arr.shape[i] for i in keep])
        axes = "".join(axes[i] for i in keep)
    if "S" not in axes:
        arr = arr[..., None]
        axes += "S"
    arr = np.transpose(arr, [axes.index("Y"), axes.index("X"), axes.index("S")])

    dtype = arr.dtype
    if dtype.kind == "f":
        values = np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        bit_depth = 32
    elif dtype.kind in "ub":
        bits = int(page.bitspersample) if dtype.kind == "u" else 1
        values = _to_float(arr, float(2**bits - 1))
        bit_depth = 8 if bits <= 8 else 16 if bits <= 16 else 32
    elif dtype.kind == "i":
        values = _to_float(np.clip(arr, 0, None), float(np.iinfo(dtype).max))
        bit_depth = 8 if dtype.itemsize == 1 else 16 if dtype.itemsize == 2 else 32
    else:
        raise ImageReadError(p, f"unsupported TIFF sample type {dtype}")

    extras = tuple(int(e) for e in (page.extrasamples or ()))
    n_color = spp - len(extras) if extras else (1 if spp == 2 else 3 if spp in (3, 4) else spp)
    alpha_kinds = (int(tifffile.EXTRASAMPLE.ASSOCALPHA), int(tifffile.EXTRASAMPLE.UNASSALPHA))
    has_alpha = values.shape[2] > n_color and (not extras or extras[0] in alpha_kinds)
    associated = bool(extras) and extras[0] == int(tifffile.EXTRASAMPLE.ASSOCALPHA)
    icc_tag = page.tags.get(34675)
    icc = bytes(icc_tag.value) if icc_tag is not None and icc_tag.value else None

    P = tifffile.PHOTOMETRIC
    if photometric in (P.MINISBLACK, P.MINISWHITE):
        if photometric == P.MINISBLACK and n_color == 3 and values.shape[2] >= 3:
            color = values[..., :3]
        else:
            color = values[..., :1]
            n_color = 1
        if photometric == P.MINISWHITE:
            color = 1.0 - color
    elif photometric == P.RGB:
        if n_color < 3:
            raise ImageReadError(p, f"RGB TIFF with {spp} samples per pixel is not supported")
        color = values[..., :3]
    elif photometric == P.PALETTE and page.colormap is not None:
        cmap = np.asarray(page.colormap, dtype=np.float32) / 65535.0  # (3, 2**bits)
        color = np.moveaxis(cmap[:, arr[..., 0].astype(np.intp)], 0, -1)
        n_color = 1
        bit_depth = 16
    elif photometric == P.SEPARATED and n_color >= 4:
        c, m, y, k = (values[..., i] for i in range(4))
        color = np.stack([(1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)], axis=-1)
        icc = None  # a CMYK profile must never tag RGB pixels
        n_color = 4
    else:
        name = getattr(photometric, "name", str(photometric))
        raise ImageReadError(p, f"unsupported TIFF colour space {name}")

    alpha = values[..., n_color] if has_alpha and values.shape[2] > n_color else None
    color = np.ascontiguousarray(color, dtype=np.float32)
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha, dtype=np.float32)
        if associated:  # stored premultiplied: recover straight colour
            safe = np.where(alpha > 0, alpha, 1.0)[..., None]
            color = np.where(alpha[..., None] > 0, color / safe, 0.0).astype(np.float32)

    tag = page.tags.get(_ORIENTATION)
    orientation = int(tag.value) if tag is not None else 1
    if orientation not in range(1, 9):
        orientation = 1
    if orientation != 1:
        color = _apply_orientation(color, orientation)
        alpha = _apply_orientation(alpha, orientation) if alpha is not None else None
    return Image(data=color, alpha=alpha, bit_depth=bit_depth, exif=_exif_from_tiff(p), icc_profile=icc,
                 format="tiff")


# --------------------------------------------------------------------------------------------------
# Writing


def _pack_pixels(image: Image, bit_depth: int, with_alpha: bool) -> np.ndarray:
    """(H, W, C[+1]) array of the stored sample type: uint8, uint16 or float32."""
    planes = [image.data]
    if with_alpha and image.alpha is not None:
        planes.append(image.alpha[..., None])
    stacked = np.concatenate(planes, axis=2) if len(planes) > 1 else image.data
    if bit_depth == 8:
        return to_uint8(stacked)
    if bit_depth == 16:
        return to_uint16(stacked)
    return np.ascontiguousarray(stacked, dtype=np.float32)


def _write_pillow(fp: BinaryIO, pixels: np.ndarray, fmt: str, exif: bytes | None, icc: bytes | None,
                  quality: int) -> None:
    """8-bit PNG/JPEG/WebP/BMP through Pillow."""
    channels = pixels.shape[2]
    if fmt == "jpeg" and channels in (2, 4):
        pixels, channels = pixels[..., : channels - 1], channels - 1  # JPEG has no alpha
    if fmt in ("webp", "bmp") and channels in (1, 2):
        if fmt == "webp" or channels == 2:  # WebP has no gray; BMP has no gray+alpha
            rgb = np.repeat(pixels[..., :1], 3, axis=2)
            pixels = np.concatenate([rgb, pixels[..., 1:]], axis=2) if channels == 2 else rgb
            channels = pixels.shape[2]
    arr = pixels[..., 0] if channels == 1 else pixels
    pil = PILImage.fromarray(np.ascontiguousarray(arr))
    options: dict[str, Any] = {}
    if fmt in _METADATA_FORMATS:
        if exif:
            options["exif"] = exif
        if icc:
            options["icc_profile"] = icc
    if fmt == "jpeg":
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "webp":
        options.update(quality=quality, lossless=quality >= 100, method=4, exact=True)  # keep RGB under alpha 0
    elif fmt == "png":
        options.update(compress_level=6)
    pil.save(fp, format={"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP"}[fmt], **options)


def _png_chunk(fp: BinaryIO, kind: bytes, payload: bytes) -> None:
    fp.write(struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload)))


def _write_png16(fp: BinaryIO, pixels: np.ndarray, exif: bytes | None, icc: bytes | None) -> None:
    """Minimal 16-bit PNG encoder (any of gray, gray+alpha, RGB, RGBA), 'Up' filter, zlib level 6."""
    height, width, channels = pixels.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    fp.write(_PNG_SIGNATURE)
    _png_chunk(fp, b"IHDR", struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0))
    if icc:
        _png_chunk(fp, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        _png_chunk(fp, b"eXIf", exif[6:] if exif.startswith(_EXIF_HEADER) else exif)
    rows = pixels.astype(">u2").reshape(height, width * channels).view(np.uint8)
    compressor = zlib.compressobj(6)
    block = max(1, (1 << 20) // max(1, rows.shape[1]))
    previous = np.zeros(rows.shape[1], dtype=np.uint8)
    pending = bytearray()
    for start in range(0, height, block):
        chunk = rows[start:start + block]
        up = np.empty((chunk.shape[0], chunk.shape[1] + 1), dtype=np.uint8)
        up[:, 0] = 2  # filter type Up
        up[0, 1:] = chunk[0] - previous
        up[1:, 1:] = chunk[1:] - chunk[:-1]
        previous = chunk[-1].copy()
        pending += compressor.compress(up.tobytes())
        if len(pending) >= (1 << 20):
            _png_chunk(fp, b"IDAT", bytes(pending))
            pending.clear()
    pending += compressor.flush()
    _png_chunk(fp, b"IDAT", bytes(pending))
    _png_chunk(fp, b"IEND", b"")


def _write_tiff(fp: BinaryIO, pixels: np.ndarray, has_alpha: bool, exif: bytes | None,
                icc: bytes | None) -> None:
    """Baseline little-endian TIFF, Deflate-compressed strips; 8/16-bit ints or float32 samples."""
    height, width, samples = pixels.shape
    is_float = pixels.dtype.kind == "f"
    bits = pixels.dtype.itemsize * 8
    stored = pixels.astype(pixels.dtype.newbyteorder("<"), copy=False)
    if not is_float:  # horizontal differencing (predictor 2) makes photos compress far better
        stored = stored.copy()
        stored[:, 1:] -= pixels[:, :-1]
    row_bytes = width * samples * pixels.dtype.itemsize
    rows_per_strip = max(1, min(height, _TIFF_STRIP_BYTES // max(1, row_bytes)))
    strips = [zlib.compress(stored[r:r + rows_per_strip].tobytes(), 6) for r in range(0, height, rows_per_strip)]

    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    for tag, value in _exif_tags_for_tiff(exif).items():
        ifd[tag] = value
    ifd[_ORIENTATION] = 1
    ifd[256] = width
    ifd[257] = height
    ifd[258] = (bits,) * samples
    ifd[259] = 8  # Adobe Deflate
    ifd[262] = 2 if samples >= 3 else 1  # RGB / BlackIsZero
    ifd[277] = samples
    ifd[278] = rows_per_strip
    ifd[284] = 1  # contiguous
    ifd[339] = (3 if is_float else 1,) * samples
    if not is_float:
        ifd[317] = 2
    if has_alpha:
        ifd[338] = (2,)  # unassociated alpha
    if icc:
        ifd[34675] = icc
    ifd.tagtype[273] = TiffTags.LONG
    ifd.tagtype[279] = TiffTags.LONG
    offsets, position = [], 0
    for s in strips:  # relative to the end of the IFD; Pillow adds that offset when writing
        offsets.append(position)
        position += len(s)
    ifd[273] = tuple(offsets)
    ifd[279] = tuple(len(s) for s in strips)
    ifd.save(fp)
    for s in strips:
        fp.write(s)


_WRITE_ERRNO_REASONS = {
    errno.EACCES: "folder is not writable (permission denied)",
    errno.EPERM: "folder is not writable (operation not permitted)",
    errno.EROFS: "folder is not writable (read-only file system)",
    errno.ENOSPC: "not enough disk space",
    errno.ENAMETOOLONG: "file name is too long",
}
if hasattr(errno, "EDQUOT"):
    _WRITE_ERRNO_REASONS[errno.EDQUOT] = "disk quota exceeded"


def _os_reason(e: OSError) -> str:
    return _WRITE_ERRNO_REASONS.get(e.errno or -1, e.strerror or str(e))


def _atomic_write(target: Path, write: Callable[[BinaryIO], None], overwrite: bool) -> None:
    """denoiser.atomic.atomic_write with its failures as ImageWriteError naming the file."""
    try:
        atomic_write(target, write, overwrite=overwrite)
    except TargetExistsError:
        raise OutputExistsError(target) from None
    except IsADirectoryError:
        raise ImageWriteError(target, "a folder with that name already exists") from None
    except ImageWriteError:
        raise
    except OSError as e:
        parent = target.parent
        if not parent.is_dir():
            reason = "a file is in the way" if isinstance(e, FileExistsError | NotADirectoryError) else _os_reason(e)
            raise ImageWriteError(target, f"cannot create folder '{parent}': {reason}") from e
        raise ImageWriteError(target, _os_reason(e)) from e
    except Exception as e:
        raise ImageWriteError(target, f"encoding failed ({e})") from e


def check_write_options(fmt: str | None, bit_depth: int | None = None, quality: int = 95) -> None:
    """ValueError when format `fmt` (a FORMAT_BIT_DEPTHS name; None: not known yet, depth unchecked) cannot be
    written with this explicit depth or quality; batch runs call it before denoising, so a bad pair fails
    before the work rather than after it."""
    allowed = FORMAT_BIT_DEPTHS[fmt] if fmt is not None else ()
    if fmt is not None and bit_depth is not None and bit_depth not in allowed:
        supported = "/".join(str(d) for d in allowed)
        raise ValueError(f"{fmt.upper()} cannot store {bit_depth}-bit images (only {supported}-bit)")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")


def save_image(
    image: Image,
    path: str | Path,
    *,
    format: str | None = None,
    bit_depth: int | None = None,
    quality: int = 95,
    overwrite: bool = True,
) -> Path:
    """Write an image atomically; format from ``format`` or the extension, depth kept where possible.

    ``bit_depth=None`` keeps the image's depth, lowered to the best the format holds (JPEG/WebP/BMP: 8,
    PNG: 8/16, TIFF: 8/16/32). An explicit depth the format cannot hold is an error. EXIF (Orientation
    forced to 1) and ICC are written to JPEG, PNG, WebP and TIFF; alpha to every format except JPEG.
    """
    target = Path(path)
    if format is not None:
        fmt = _normalise_format(format)
        if fmt == "raw" or "." + fmt in RAW_EXTENSIONS:
            raise ImageWriteError(target, "cannot write RAW files; save as TIFF or PNG to keep 16 bits")
        if fmt not in FORMAT_BIT_DEPTHS:
            raise ImageWriteError(target, f"unknown output format '{format}'")
    else:
        try:
            fmt = output_format_for(target)
        except ValueError as e:
            raise ImageWriteError(target, str(e)) from None
    try:
        check_write_options(fmt, bit_depth, quality)
    except ValueError as e:
        raise ImageWriteError(target, str(e)) from None
    allowed = FORMAT_BIT_DEPTHS[fmt]
    depth = bit_depth if bit_depth is not None else max((d for d in allowed if d <= image.bit_depth), default=allowed[0])

    with_alpha = image.alpha is not None and fmt != "jpeg"
    pixels = _pack_pixels(image, depth, with_alpha)
    exif = _reset_orientation(_normalise_exif(image.exif)) if fmt in _METADATA_FORMATS else None
    icc = image.icc_profile if fmt in _METADATA_FORMATS else None

    def write(fp: BinaryIO) -> None:
        if fmt == "tiff":
            _write_tiff(fp, pixels, with_alpha, exif, icc)
        elif fmt == "png" and depth == 16:
            _write_png16(fp, pixels, exif, icc)
        else:
            _write_pillow(fp, pixels, fmt, exif, icc, int(quality))

    _atomic_write(target, write, overwrite)
    return target
