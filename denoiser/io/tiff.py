"""A TIFF page's samples as an `Image`: any axis layout to (H, W, S), integer or float samples to
[0, 1] floats at their bit depth, the photometric colour spaces (gray, RGB, palette, CMYK) to RGB or
gray, straight or premultiplied alpha, the ICC profile, EXIF and the orientation tag."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from denoiser.errors import ImageReadError
from denoiser.io.exif import _apply_orientation, _exif_from_tiff
from denoiser.io.formats import _ORIENTATION, Image, _to_float


def tiff_page_to_image(p: Path, page: Any, arr: np.ndarray) -> Image:
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
