"""Writing images: Pillow for 8-bit files, a small zlib PNG encoder for 16-bit PNG, a Deflate TIFF
writer for every TIFF (so EXIF sub-IFDs and ICC survive at all depths), all through one atomic write."""

from __future__ import annotations

import errno
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image as PILImage
from PIL import TiffImagePlugin, TiffTags

from denoiser.atomic import TargetExistsError, atomic_write
from denoiser.errors import ImageWriteError, OutputExistsError
from denoiser.io.exif import (
    _exif_tags_for_tiff,
    _normalise_exif,
    _reset_orientation,
)
from denoiser.io.formats import (
    _EXIF_HEADER,
    _METADATA_FORMATS,
    _ORIENTATION,
    _PNG_SIGNATURE,
    _TIFF_STRIP_BYTES,
    FORMAT_BIT_DEPTHS,
    RAW_EXTENSIONS,
    Image,
    _normalise_format,
    output_format_for,
    to_uint8,
    to_uint16,
)

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
