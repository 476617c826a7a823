"""EXIF: orientation found, applied and reset, and EXIF carried between file chunks and TIFF tags."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage

from denoiser.io.formats import (
    _EXIF_BASE_TAGS,
    _EXIF_HEADER,
    _EXIF_IFD,
    _GPS_IFD,
    _INTEROP_IFD,
    _ORIENTATION,
)

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
