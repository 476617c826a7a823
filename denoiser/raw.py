"""Camera RAW in, DNG out: the Bayer mosaic is denoised in the raw domain and written back as a raw file.

In the raw domain the noise is plain shot + read noise (variance `shot·x + read` on the black-subtracted,
white-scaled signal x), not yet correlated by demosaicing, colour matrices, tone curves or JPEG. The
mosaic is packed into four half-size planes (R, G, G, B), the two noise parameters are estimated from
the image itself (the difference of the two greens of each quad is noise; its variance against the
level gives the line `shot·x + read`), and a 4-channel model is given the per-pixel noise level
`sqrt(shot·x + read)` as its noise map. The result is written as a DNG with the original CFA pattern,
black and white levels, colour matrix, white balance and orientation, so a raw editor opens and
develops it as it would the camera's file. Reading needs `rawpy` (LibRaw), an optional extra.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import tifffile
import torch
import torch.nn.functional as F

from denoiser.archs import DenoiserNet
from denoiser.atomic import TargetExistsError, atomic_write
from denoiser.errors import DenoiserError, ImageReadError, ImageWriteError, OutputExistsError
from denoiser.progress import Progress, ProgressGen

SOFTWARE = "Denoiser Studio (raw denoise)"  # written to the DNG: marks our own outputs
RAW_TILE = 256  # packed-plane tile edge of the tiled inference (a 512-px square of the mosaic)
RAW_MARGIN = 16  # context on each side of a tile, packed pixels
QUIET_SHARE = 0.05  # the share of the flattest blocks per brightness that the raw noise estimate reads
_LIBRAW_FLIP_TO_EXIF = {0: 1, 3: 3, 5: 8, 6: 6}
_COLOURS = {ord("R"): 0, ord("G"): 1, ord("B"): 2}
# sRGB (D65) primaries to XYZ: the colour matrix of a mosaic unprocessed from an sRGB image
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])


@dataclass
class RawMosaic:
    """A Bayer mosaic as the camera stored it, and what a raw developer needs to develop it."""

    cfa: np.ndarray  # (H, W) uint16 raw values
    pattern: np.ndarray  # (2, 2) colour at each position of the repeating quad: 0 R, 1 G, 2 B
    black: np.ndarray  # (2, 2) black level at each quad position
    white: int  # saturation level
    wb: tuple[float, float, float] = (2.0, 1.0, 1.6)  # as-shot white-balance multipliers R, G, B (G = 1)
    color_matrix: np.ndarray | None = None  # (3, 3) XYZ → camera RGB under D65 (the DNG ColorMatrix1)
    orientation: int = 1  # EXIF orientation
    make: str = ""
    model: str = ""
    datetime: str = ""

    def _black_map(self) -> np.ndarray:
        """The per-quad black levels laid over the whole mosaic."""
        h, w = self.cfa.shape
        return np.tile(self.black, (h // 2 + 1, w // 2 + 1))[:h, :w].astype(np.float32)

    def normalised(self) -> np.ndarray:
        """Black-subtracted, white-scaled signal (0 black, 1 saturation; noise may dip below 0)."""
        black = self._black_map()
        return (self.cfa.astype(np.float32) - black) / np.maximum(np.float32(self.white) - black, 1.0)

    def with_normalised(self, signal: np.ndarray) -> RawMosaic:
        """The same mosaic holding `signal` (as from `normalised`), rounded back to raw values."""
        black = self._black_map()
        values = signal * np.maximum(np.float32(self.white) - black, 1.0) + black
        return replace(self, cfa=np.clip(np.round(values), 0, self.white).astype(np.uint16))


def quad_positions(pattern: np.ndarray) -> list[tuple[int, int]]:
    """(dy, dx) of R, the first G, the second G and B in the 2×2 quad: the packed planes' order."""
    flat = [(dy, dx) for dy in range(2) for dx in range(2)]
    reds = [p for p in flat if pattern[p] == 0]
    greens = [p for p in flat if pattern[p] == 1]
    blues = [p for p in flat if pattern[p] == 2]
    if len(reds) != 1 or len(greens) != 2 or len(blues) != 1:
        raise DenoiserError(f"not a Bayer pattern: {pattern.tolist()}")
    return [reds[0], greens[0], greens[1], blues[0]]


def pack(signal: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """(H, W) mosaic → (4, H/2, W/2) planes R, G, G, B (an odd last row or column is left out)."""
    h, w = signal.shape[0] // 2 * 2, signal.shape[1] // 2 * 2
    return np.stack([signal[dy:h:2, dx:w:2] for dy, dx in quad_positions(pattern)])


def unpack(planes: np.ndarray, pattern: np.ndarray, into: np.ndarray) -> np.ndarray:
    """The inverse of `pack`, written over a copy of the full-size mosaic `into`."""
    out = into.copy()
    h, w = planes.shape[1] * 2, planes.shape[2] * 2
    for plane, (dy, dx) in zip(planes, quad_positions(pattern), strict=True):
        out[dy:h:2, dx:w:2] = plane
    return out


# --- the noise of a mosaic ------------------------------------------------------------------------------


def estimate_raw_noise(planes: np.ndarray, block: int = 4, quiet: float = QUIET_SHARE) -> tuple[float, float]:
    """(shot, read): the noise variance `shot·x + read` of packed planes, from the image alone.

    The two greens of a quad see nearly the same light, so each second green less the mean of its four
    first-green neighbours is mostly noise, and its variance in a flat block is the noise variance at
    that block's level. Textured blocks only add to it, so the
    lowest fifth of the blocks in each level bin is kept before a non-negative line is fitted."""
    g1, g2 = planes[1].astype(np.float64), planes[2].astype(np.float64)
    if g1.shape[0] < 2 or g1.shape[1] < 2:
        return 0.0, float(np.var(g1 - g2) / 2) if g1.size > 1 else 0.0
    # each second green against the mean of its four diagonal first-green neighbours: a gradient cancels,
    # and for pure noise the residual's variance is (1 + 1/4)·σ²
    g2c = g2[:-1, 1:]
    pred = (g1[:-1, 1:] + g1[:-1, :-1] + g1[1:, 1:] + g1[1:, :-1]) / 4
    h, w = g2c.shape[0] // block * block, g2c.shape[1] // block * block
    if h == 0 or w == 0:
        return 0.0, float(np.var(g2c - pred) / 1.25)
    shape = (h // block, block, w // block, block)
    diff = (g2c[:h, :w] - pred[:h, :w]).reshape(shape)
    level = ((g2c[:h, :w] + pred[:h, :w]) / 2).reshape(shape).mean(axis=(1, 3)).ravel()
    var = (diff.var(axis=(1, 3)) / 1.25).ravel()
    keep = (level > 0.002) & (level < 0.9)  # clipped blacks and highlights carry no noise
    level, var = level[keep], var[keep]
    if level.size < 4:
        return 0.0, float(np.median(var)) if var.size else 0.0
    edges = np.quantile(level, np.linspace(0, 1, 11))
    xs, ys = [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (level >= lo) & (level <= hi)
        if sel.sum() >= 2:
            cut = np.quantile(var[sel], quiet)
            low = sel & (var <= cut)
            xs.append(level[low].mean())
            ys.append(var[low].mean())
    xs_a, ys_a = np.array(xs), np.array(ys)
    if xs_a.size < 2 or np.ptp(xs_a) < 1e-6:
        return 0.0, float(max(ys_a.mean(), 0.0)) if ys_a.size else 0.0
    ys_a = ys_a / _quiet_bias(block * block, quiet)
    shot, read = np.polyfit(xs_a, ys_a, 1)
    if shot < 0:
        return 0.0, float(max(ys_a.mean(), 0.0))
    if read < 0:  # through the origin
        return float((xs_a @ ys_a) / (xs_a @ xs_a)), 0.0
    return float(shot), float(read)


@functools.cache
def _quiet_bias(n: int, quiet: float) -> float:
    """E[sample variance | among the quietest share `quiet`] / true variance, for blocks of `n` pure-noise
    samples: the estimator's choice of quiet blocks would otherwise read the noise too low."""
    samples = np.random.default_rng(0).standard_normal((40000, n)).var(axis=1)
    return float(samples[samples <= np.quantile(samples, quiet)].mean())


def noise_level_map(planes: torch.Tensor, shot: torch.Tensor | float, read: torch.Tensor | float) -> torch.Tensor:
    """(B, 1, h, w) noise σ of (B, 4, h, w) noisy planes: `sqrt(shot·x + read)` at a smoothed level x
    (the mean of the four planes over 5×5, so the map is not itself noisy)."""
    level = F.avg_pool2d(F.pad(planes.mean(dim=1, keepdim=True), (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    shot_t = torch.as_tensor(shot, dtype=planes.dtype, device=planes.device).reshape(-1, 1, 1, 1)
    read_t = torch.as_tensor(read, dtype=planes.dtype, device=planes.device).reshape(-1, 1, 1, 1)
    return (level.clamp(min=0) * shot_t + read_t).clamp(min=0).sqrt()


# --- training pairs: clean images unprocessed to raw --------------------------------------------------


def unprocess_to_planes(rgb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) sRGB in [0, 1] → (B, 4, H/2, W/2) clean linear raw planes R, G, G, B.

    The inverse of a simple development (Brooks et al., CVPR 2019): the tone curve and gamma undone,
    white-balance gains drawn per image divided out, then the Bayer samples taken."""
    b = rgb.shape[0]
    x = rgb.clamp(0.0, 1.0)
    x = (0.5 - torch.sin(torch.asin(1.0 - 2.0 * x) / 3.0)).clamp(min=1e-8) ** 2.2  # smoothstep⁻¹, then linear
    red = 1.9 + 0.5 * torch.rand(b, generator=gen)
    blue = 1.5 + 0.4 * torch.rand(b, generator=gen)
    gains = torch.stack([red, torch.ones(b), blue], dim=1).to(rgb.device).view(b, 3, 1, 1)
    x = x / gains
    h, w = x.shape[2] // 2 * 2, x.shape[3] // 2 * 2
    return torch.stack([x[:, 0, 0:h:2, 0:w:2], x[:, 1, 0:h:2, 1:w:2], x[:, 1, 1:h:2, 0:w:2], x[:, 2, 1:h:2, 1:w:2]], 1)


def raw_noise_levels(b: int, level_range: tuple[float, float], gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Shot and read variances for `b` images, jointly drawn as in the camera pipeline: log-uniform shot
    noise over the level range (0 base ISO … 1 very high ISO) and read noise tied to it, with scatter."""
    from denoiser.noise import camera_levels

    lo, hi = level_range
    levels = lo + (hi - lo) * torch.rand(b, generator=gen)
    pairs = [camera_levels(float(v)) for v in levels]
    shot = torch.tensor([s for s, _ in pairs])
    read = torch.tensor([r for _, r in pairs]) * torch.exp(0.3 * torch.randn(b, generator=gen))
    return shot, read


def raw_training_pair(rgb: torch.Tensor, level_range: tuple[float, float], clean_prob: float,
                      gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(clean planes, noisy planes, σ map) for a batch of clean sRGB patches. The map is made from the
    noisy planes and the true (shot, read) scaled by a factor in [0.8, 1.25], as the estimate errs."""
    clean = unprocess_to_planes(rgb, gen)
    b = clean.shape[0]
    shot, read = raw_noise_levels(b, level_range, gen)
    if clean_prob > 0:
        keep = torch.rand(b, generator=gen) < clean_prob
        shot, read = torch.where(keep, 0.0, shot), torch.where(keep, 0.0, read)
    dev = clean.device
    shot_d, read_d = shot.to(dev).view(-1, 1, 1, 1), read.to(dev).view(-1, 1, 1, 1)
    noise = torch.randn(clean.shape, generator=gen).to(dev)
    noisy = (clean + (clean * shot_d + read_d).sqrt() * noise).clamp(max=1.0)
    err = torch.exp(torch.empty(b).uniform_(math.log(0.8), math.log(1.25), generator=gen)).to(dev)
    return clean, noisy, noise_level_map(noisy, shot_d.flatten() * err, read_d.flatten() * err)


# --- reading, denoising and writing -------------------------------------------------------------------


def read_raw(path: str | Path) -> RawMosaic:
    """The Bayer mosaic of a camera RAW (or DNG) file, read with LibRaw; non-Bayer sensors are refused."""
    try:
        import rawpy
    except ImportError:
        raise ImageReadError(path, "RAW files need the optional 'rawpy' package (pip install rawpy)") from None
    p = Path(path)
    try:
        with rawpy.imread(str(p)) as raw:
            pattern_idx = np.asarray(raw.raw_pattern)
            if pattern_idx.shape != (2, 2):
                raise ImageReadError(p, "only Bayer sensors are supported (this is an X-Trans or other sensor)")
            desc = raw.color_desc
            pattern = np.vectorize(lambda i: _COLOURS.get(desc[i], 1))(pattern_idx)
            levels = np.asarray(raw.black_level_per_channel, dtype=np.int64)
            black = levels[pattern_idx]
            wb = np.asarray(raw.camera_whitebalance, dtype=np.float64)[:3]
            wb = wb / wb[1] if wb[1] > 0 and np.all(wb > 0) else np.array([2.0, 1.0, 1.6])
            matrix = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
            rgb_cam = np.asarray(raw.color_matrix, dtype=np.float64)[:3, :3]
            if not np.abs(matrix).sum() and abs(np.linalg.det(rgb_cam)) > 1e-6:
                # LibRaw leaves a DNG's XYZ → camera matrix out and keeps camera → sRGB: invert that
                matrix = np.linalg.inv(rgb_cam) @ np.linalg.inv(SRGB_TO_XYZ)
            mosaic = RawMosaic(cfa=np.array(raw.raw_image_visible, dtype=np.uint16), pattern=pattern, black=black,
                               white=int(raw.white_level), wb=(float(wb[0]), 1.0, float(wb[2])),
                               color_matrix=matrix if np.abs(matrix).sum() > 0 else None,
                               orientation=_LIBRAW_FLIP_TO_EXIF.get(int(raw.sizes.flip), 1))
    except ImageReadError:
        raise
    except (rawpy.LibRawError, OSError, ValueError) as exc:
        raise ImageReadError(p, f"not a readable camera RAW file ({type(exc).__name__}: {exc})") from None
    return replace(mosaic, **_tiff_names(p))


def _tiff_names(p: Path) -> dict[str, str]:
    """Make, Model and DateTime from a TIFF-based RAW's first IFD (most are), else nothing."""
    try:
        with tifffile.TiffFile(p) as tif:
            tags = tif.pages[0].tags
            found = {k: tags.get(t) for k, t in (("make", 271), ("model", 272), ("datetime", 306))}
            return {k: str(v.value).strip("\0 ") for k, v in found.items() if v is not None}
    except Exception:  # noqa: BLE001 — CR3, RAF and others are not TIFF: the names are optional
        return {}


def _rationals(values: np.ndarray, signed: bool, denominator: int = 10000) -> tuple[int, ...]:
    out: list[int] = []
    for v in np.asarray(values, dtype=np.float64).ravel():
        out += [int(round(v * denominator)), denominator]
    if not signed and min(out) < 0:
        raise ValueError("negative value in an unsigned rational")
    return tuple(out)


def dng_bytes(mosaic: RawMosaic) -> bytes:
    """The mosaic as an uncompressed DNG 1.4 file (one CFA image, the tags a raw developer needs)."""
    matrix = mosaic.color_matrix if mosaic.color_matrix is not None else np.linalg.inv(SRGB_TO_XYZ)
    neutral = np.array([1.0 / mosaic.wb[0], 1.0, 1.0 / mosaic.wb[2]])
    name = " ".join(v for v in (mosaic.make, mosaic.model) if v) or "Denoiser Studio raw"
    tags: list[tuple[int, str, int, Any, bool]] = [
        (33421, "H", 2, (2, 2), False),  # CFARepeatPatternDim
        (33422, "B", 4, tuple(int(v) for v in mosaic.pattern.ravel()), False),  # CFAPattern
        (50706, "B", 4, (1, 4, 0, 0), False),  # DNGVersion
        (50707, "B", 4, (1, 1, 0, 0), False),  # DNGBackwardVersion
        (50708, "s", 0, name, False),  # UniqueCameraModel
        (50710, "B", 3, (0, 1, 2), False),  # CFAPlaneColor
        (50711, "H", 1, 1, False),  # CFALayout: rectangular
        (50713, "H", 2, (2, 2), False),  # BlackLevelRepeatDim
        (50714, "I", 4, tuple(int(v) for v in mosaic.black.ravel()), False),  # BlackLevel
        (50717, "I", 1, int(mosaic.white), False),  # WhiteLevel
        (50721, "2i", 9, _rationals(matrix, signed=True), False),  # ColorMatrix1
        (50728, "2I", 3, _rationals(neutral, signed=False), False),  # AsShotNeutral
        (50778, "H", 1, 21, False),  # CalibrationIlluminant1: D65
        (274, "H", 1, int(mosaic.orientation), False),  # Orientation
    ]
    for code, value in ((271, mosaic.make), (272, mosaic.model), (306, mosaic.datetime)):
        if value:
            tags.append((code, "s", 0, value, False))
    buf = io.BytesIO()
    tifffile.imwrite(buf, mosaic.cfa, photometric=32803, subfiletype=0, software=SOFTWARE,
                     extratags=tags, metadata=None)
    return buf.getvalue()


def write_dng(mosaic: RawMosaic, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write the mosaic as a DNG atomically (never replacing a file unless `overwrite`)."""
    target = Path(path)
    data = dng_bytes(mosaic)

    def write(fp: BinaryIO) -> None:
        fp.write(data)

    try:
        atomic_write(target, write, overwrite=overwrite)
    except TargetExistsError:
        raise OutputExistsError(target) from None
    except OSError as exc:
        raise ImageWriteError(target, exc.strerror or str(exc)) from None
    return target


@dataclass
class RawResult:
    """A denoised mosaic and the noise it was told about."""

    mosaic: RawMosaic
    shot: float
    read: float

    @property
    def sigma(self) -> float:
        """The noise σ at mid-grey, on the 0–255 scale (for the batch's report)."""
        return math.sqrt(max(self.shot * 0.18 + self.read, 0.0)) * 255.0


def denoise_mosaic(mosaic: RawMosaic, net: DenoiserNet, *, sigma: float | None = None,
                   device: str | torch.device = "cpu", strength: float = 1.0) -> ProgressGen[RawResult]:
    """Denoise the mosaic in the raw domain with a 4-plane model, tile by tile (yielding progress per
    tile); saturated samples stay as they are. `sigma` (0–255 scale of the linear signal) fixes the
    noise level instead of the (shot, read) estimate."""
    if net.in_channels != 4:
        raise DenoiserError(f"a raw mosaic needs a 4-plane raw model, not a {net.in_channels}-channel one")
    if min(mosaic.cfa.shape) < 2:
        raise DenoiserError("the mosaic is smaller than one 2×2 Bayer quad")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0–1, got {strength}")
    signal = mosaic.normalised()
    planes = pack(signal, mosaic.pattern)
    shot, read = (0.0, (sigma / 255.0) ** 2) if sigma is not None else estimate_raw_noise(planes)
    dev = torch.device(device)
    net = net.to(dev).eval()
    x = torch.from_numpy(np.ascontiguousarray(planes)).unsqueeze(0).to(dev)
    sigma_map = noise_level_map(x, shot, read)
    out = torch.empty_like(x)
    _, _, h, w = x.shape
    mult = max(1, net.size_multiple)
    tiles = [(y, xx) for y in range(0, h, RAW_TILE) for xx in range(0, w, RAW_TILE)]
    for i, (y0, x0) in enumerate(tiles):
        y1, x1 = min(y0 + RAW_TILE, h), min(x0 + RAW_TILE, w)
        ty0, tx0 = max(0, y0 - RAW_MARGIN), max(0, x0 - RAW_MARGIN)
        ty1, tx1 = min(h, y1 + RAW_MARGIN), min(w, x1 + RAW_MARGIN)
        tile, tmap = x[..., ty0:ty1, tx0:tx1], sigma_map[..., ty0:ty1, tx0:tx1]
        ph, pw = -tile.shape[2] % mult, -tile.shape[3] % mult
        mode = "reflect" if ph < tile.shape[2] and pw < tile.shape[3] else "replicate"
        with torch.no_grad():
            res = net(F.pad(tile, (0, pw, 0, ph), mode=mode), F.pad(tmap, (0, pw, 0, ph), mode="replicate")).float()
        out[..., y0:y1, x0:x1] = res[..., y0 - ty0 : y1 - ty0, x0 - tx0 : x1 - tx0]
        yield Progress(i + 1, len(tiles), f"raw tile {i + 1}/{len(tiles)}")
    result = out[0].cpu().numpy()
    result = planes + strength * (result - planes)
    saturated = planes >= 0.999
    result = np.where(saturated, planes, np.minimum(result, 1.0))
    denoised = unpack(result, mosaic.pattern, signal)
    return RawResult(mosaic.with_normalised(denoised), shot, read)


def at_strength(original: RawMosaic, denoised: RawMosaic, strength: float) -> RawMosaic:
    """The denoised mosaic blended with the original at `strength` (1 = fully denoised), as
    `denoise_mosaic(strength=)` blends, for a strength chosen after the denoise."""
    if strength >= 1.0:
        return denoised
    a, b = original.normalised(), denoised.normalised()
    return denoised.with_normalised(a + strength * (b - a))


DEMOSAICS = ("AHD", "AAHD", "DCB", "DHT", "LINEAR", "PPG", "VNG")  # LibRaw's own (no GPL demosaic packs)


def develop(source: str | Path | bytes, demosaic: str | None = None) -> np.ndarray:
    """A RAW or DNG file (a path, or the bytes of one) developed by LibRaw to 16-bit sRGB (H, W, 3) with
    the camera's white balance: what the batch writes for `--format tiff` and what the tests compare.
    `demosaic` names one of DEMOSAICS (None: LibRaw's default, AHD)."""
    import rawpy

    options: dict[str, Any] = {}
    if demosaic is not None:
        if demosaic not in DEMOSAICS:
            raise DenoiserError(f"unknown demosaic {demosaic!r}: one of {', '.join(DEMOSAICS)}")
        options["demosaic_algorithm"] = rawpy.DemosaicAlgorithm[demosaic]
    with rawpy.imread(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as raw:
        return raw.postprocess(output_bps=16, use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB,
                               no_auto_bright=True, gamma=(2.222, 4.5), **options)


def is_raw_model(net: DenoiserNet) -> bool:
    """Whether a model denoises packed raw planes (4 input channels) rather than images."""
    return net.in_channels == 4


def mosaic_from_image(rgb: np.ndarray, *, shot: float = 0.0, read: float = 0.0, black: int = 512,
                      white: int = 16383, wb: tuple[float, float, float] = (2.0, 1.0, 1.6),
                      seed: int = 0) -> RawMosaic:
    """An RGGB mosaic unprocessed from an sRGB image (H, W, 3) in [0, 1] with fixed white balance, with
    shot/read noise added: a camera file without a camera, for tests and benchmarks."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0).clamp(0, 1)
    lin = (0.5 - torch.sin(torch.asin(1.0 - 2.0 * x) / 3.0)).clamp(min=1e-8) ** 2.2
    lin = lin / torch.tensor(wb, dtype=torch.float32).view(1, 3, 1, 1)
    h, w = lin.shape[2] // 2 * 2, lin.shape[3] // 2 * 2
    signal = torch.zeros(h, w)
    signal[0::2, 0::2], signal[0::2, 1::2] = lin[0, 0, 0:h:2, 0:w:2], lin[0, 1, 0:h:2, 1:w:2]
    signal[1::2, 0::2], signal[1::2, 1::2] = lin[0, 1, 1:h:2, 0:w:2], lin[0, 2, 1:h:2, 1:w:2]
    if shot > 0 or read > 0:
        signal = signal + (signal * shot + read).sqrt() * torch.randn(signal.shape, generator=gen)
    pattern = np.array([[0, 1], [1, 2]])
    base = RawMosaic(cfa=np.zeros((h, w), np.uint16), pattern=pattern, black=np.full((2, 2), black), white=white,
                     wb=wb, color_matrix=np.linalg.inv(SRGB_TO_XYZ))
    return base.with_normalised(signal.clamp(max=1.0).numpy())
