"""Image load/save that keeps bit depth, alpha, EXIF and ICC: the public face of `denoiser.io`.

Pixels travel as float32 in [0, 1] (float TIFFs may go outside it), shape (H, W, C) with C == 1 or 3;
alpha travels beside them untouched. 8-bit files come back as 8-bit, 16-bit as 16-bit, float32 TIFF
as float32. EXIF orientation is applied on load and reset to 1 in the kept EXIF. Every failure is an
``ImageReadError`` / ``ImageWriteError`` naming the file; saving is atomic (temp file + ``os.replace``).

The work is split by job: `denoiser.io.formats` (the `Image` type, formats, quantisation),
`denoiser.io.exif`, `denoiser.io.decode` (reading) and `denoiser.io.encode` (writing).
"""

from __future__ import annotations

from denoiser.io.decode import load_image, read_header
from denoiser.io.encode import check_write_options, save_image
from denoiser.io.formats import (
    FORMAT_BIT_DEPTHS,
    HAVE_RAW,
    MAX_PIXELS,
    QUANTIZE_ROWS,
    RAW_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    Image,
    native_pixels,
    output_format_for,
    to_uint8,
    to_uint16,
)

__all__ = [
    "FORMAT_BIT_DEPTHS",
    "HAVE_RAW",
    "MAX_PIXELS",
    "QUANTIZE_ROWS",
    "RAW_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "Image",
    "check_write_options",
    "load_image",
    "native_pixels",
    "output_format_for",
    "read_header",
    "save_image",
    "to_uint8",
    "to_uint16",
]
