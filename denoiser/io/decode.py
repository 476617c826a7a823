"""Reading images: file checks and sniffing, the size limit, Pillow decoding (8-bit, and 16-bit colour
read twice with the high- and low-byte unpackers, since Pillow alone truncates it), TIFF through
tifffile (its pages' layouts in `tiff.py`), camera RAW through rawpy. Every failure is an
`ImageReadError` naming the file."""

from __future__ import annotations

import io
import stat
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from denoiser.errors import ImageReadError
from denoiser.io.exif import (
    _apply_orientation,
    _exif_from_tiff,
    _exif_orientation,
    _normalise_exif,
    _reset_orientation,
)
from denoiser.io.formats import (
    _ORIENTATION,
    _PIL_FORMATS,
    _PIL_GRAY_MODES,
    _PIL_OPEN_FORMATS,
    _PNG_SIGNATURE,
    _TIFF_MAGICS,
    HAVE_RAW,
    MAX_PIXELS,
    RAW_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    Image,
    _to_float,
)
from denoiser.io.tiff import tiff_page_to_image

try:  # optional: colour-managed CMYK -> sRGB
    from PIL import ImageCms
except ImportError:  # pragma: no cover - Pillow built without LittleCMS
    ImageCms = None  # type: ignore[assignment]

try:  # optional: camera RAW
    import rawpy
except ImportError:  # pragma: no cover - depends on the environment
    rawpy = None  # type: ignore[assignment]

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
                return tiff_page_to_image(p, page, arr)
    try:
        return _load_pillow(p, None)
    except Exception as pil_error:
        if tifffile_error is not None:
            raise ImageReadError(p, f"cannot decode this TIFF ({tifffile_error})") from pil_error
        try:  # 8-bit layouts Pillow does not know (extra samples, planar) may still suit tifffile
            with tifffile.TiffFile(p) as tif:
                page = tif.pages[0]
                return tiff_page_to_image(p, page, page.asarray())
        except Exception:
            raise pil_error from None
