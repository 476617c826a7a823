"""Corruption models for denoising autoencoders, seeded, on images in [0, 1].

Every model works on torch tensors shaped (B, C, H, W) (used on the fly in training) and, through
`add_noise`, on numpy images shaped (H, W, C). Noise levels given as σ are on the 0–255 scale, the
convention of the denoising literature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class NoiseParam:
    """One parameter of a noise model, with bounds the CLI and GUI both use."""

    name: str
    default: float
    minimum: float
    maximum: float
    help: str
    integer: bool = False


@dataclass(frozen=True)
class NoiseModel:
    """A named corruption: `apply(x, generator, **params)` returns the corrupted tensor."""

    name: str
    description: str
    params: tuple[NoiseParam, ...]
    apply: Callable[..., torch.Tensor]

    def defaults(self) -> dict[str, float]:
        """Default value of every parameter."""
        return {p.name: p.default for p in self.params}

    def resolve(self, params: dict[str, Any]) -> dict[str, float]:
        """Fill defaults, drop parameters this model does not take, and check bounds."""
        out = self.defaults()
        for p in self.params:
            if params.get(p.name) is None:
                continue
            value = float(params[p.name])
            if not p.minimum <= value <= p.maximum:
                raise ValueError(f"{self.name}: {p.name}={value:g} is outside [{p.minimum:g}, {p.maximum:g}]")
            out[p.name] = int(round(value)) if p.integer else value
        return out


NOISE_MODELS: dict[str, NoiseModel] = {}


def register_noise(name: str, description: str, *params: NoiseParam):
    """Decorator adding a corruption function to `NOISE_MODELS` under `name`."""

    def wrap(fn: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        NOISE_MODELS[name] = NoiseModel(name, description, tuple(params), fn)
        return fn

    return wrap


def _randn(x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=gen, device=x.device, dtype=torch.float32)


SIGMA = NoiseParam("sigma", 25.0, 0.0, 255.0, "standard deviation on the 0–255 scale")


@register_noise("gaussian", "additive white Gaussian noise of standard deviation σ", SIGMA)
def gaussian(x: torch.Tensor, gen: torch.Generator | None = None, *, sigma: float = 25.0) -> torch.Tensor:
    """x + σ·n with n ~ N(0, 1)."""
    return x + (sigma / 255.0) * _randn(x, gen)


@register_noise(
    "poisson",
    "photon shot noise: pixel values are Poisson counts of `peak` photons at full scale",
    NoiseParam("peak", 30.0, 0.1, 100000.0, "photons at full scale (lower = noisier)"),
)
def poisson(x: torch.Tensor, gen: torch.Generator | None = None, *, peak: float = 30.0) -> torch.Tensor:
    """Poisson(peak·x)/peak."""
    return torch.poisson(x.clamp(min=0) * peak, generator=gen) / peak


@register_noise(
    "poisson-gaussian",
    "shot noise plus Gaussian read noise (the standard sensor model)",
    NoiseParam("peak", 30.0, 0.1, 100000.0, "photons at full scale (lower = noisier)"),
    NoiseParam("sigma", 5.0, 0.0, 255.0, "read-noise standard deviation on the 0–255 scale"),
)
def poisson_gaussian(
    x: torch.Tensor, gen: torch.Generator | None = None, *, peak: float = 30.0, sigma: float = 5.0
) -> torch.Tensor:
    """Poisson(peak·x)/peak + σ·n."""
    return poisson(x, gen, peak=peak) + (sigma / 255.0) * _randn(x, gen)


@register_noise(
    "salt-pepper",
    "impulse noise: a fraction `amount` of pixels set to 0 or 1",
    NoiseParam("amount", 0.05, 0.0, 1.0, "fraction of pixels hit"),
    NoiseParam("salt_ratio", 0.5, 0.0, 1.0, "share of hit pixels set to white"),
)
def salt_pepper(
    x: torch.Tensor, gen: torch.Generator | None = None, *, amount: float = 0.05, salt_ratio: float = 0.5
) -> torch.Tensor:
    """Replace a random fraction of pixels (all channels together) with black or white."""
    shape = (x.shape[0], 1, *x.shape[2:])
    hit = torch.rand(shape, generator=gen, device=x.device) < amount
    salt = torch.rand(shape, generator=gen, device=x.device) < salt_ratio
    out = x.clone()
    out = torch.where(hit & salt, torch.ones_like(x), out)
    return torch.where(hit & ~salt, torch.zeros_like(x), out)


@register_noise(
    "speckle",
    "multiplicative noise x·(1 + σ·n), as in coherent imaging",
    NoiseParam("sigma", 25.0, 0.0, 255.0, "relative standard deviation on the 0–255 scale (255 = 100 %)"),
)
def speckle(x: torch.Tensor, gen: torch.Generator | None = None, *, sigma: float = 25.0) -> torch.Tensor:
    """x + x·σ·n."""
    return x + x * (sigma / 255.0) * _randn(x, gen)


@register_noise(
    "masking",
    "dropout corruption: a random fraction of pixels set to zero",
    NoiseParam("amount", 0.25, 0.0, 1.0, "fraction of pixels zeroed"),
)
def masking(x: torch.Tensor, gen: torch.Generator | None = None, *, amount: float = 0.25) -> torch.Tensor:
    """Zero a random fraction of pixels (the masking noise of the stacked DAE paper)."""
    keep = torch.rand((x.shape[0], 1, *x.shape[2:]), generator=gen, device=x.device) >= amount
    return x * keep


# --- the camera pipeline (after Brooks et al., "Unprocessing images for learned raw denoising") ---

_SRGB_TO_XYZ = torch.tensor(
    [[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]]
)


def _smoothstep_inverse(y: torch.Tensor) -> torch.Tensor:
    y = y.clamp(0.0, 1.0)
    return 0.5 - torch.sin(torch.asin(1.0 - 2.0 * y) / 3.0)


def _smoothstep(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(0.0, 1.0)
    return 3.0 * x * x - 2.0 * x * x * x


def _mosaic_mask(h: int, w: int, device: torch.device) -> torch.Tensor:
    """RGGB Bayer mask shaped (3, h, w)."""
    m = torch.zeros(3, h, w, device=device)
    m[0, 0::2, 0::2] = 1
    m[1, 0::2, 1::2] = 1
    m[1, 1::2, 0::2] = 1
    m[2, 1::2, 1::2] = 1
    return m


def _demosaic_bilinear(raw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaicing of a mosaiced (B, 3, H, W) image (zeros where a channel was not sampled)."""
    k_g = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=raw.dtype, device=raw.device) / 4
    k_rb = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=raw.dtype, device=raw.device) / 4
    kernels = torch.stack([k_rb, k_g, k_rb]).unsqueeze(1)
    padded = F.pad(raw * mask, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(padded, kernels, groups=3)


DAYLIGHT_GAINS = torch.tensor([2.1, 1.0, 1.7])  # R, G, B white-balance gains of the camera pipeline

# XYZ → camera colour matrices (Adobe's, as dcraw's adobe_coeff table lists them, × 1e-4) of the cameras
# of the PolyU40 pairs: what the camera's develop undoes to turn its sensor's colours into sRGB
CAMERA_XYZ_TO_CAM = {
    "Canon EOS 5D Mark II": (4716, 603, -830, -7798, 15474, 2480, -1496, 1937, 6651),
    "Canon EOS 80D": (7457, -671, -937, -4849, 12495, 2643, -1213, 2354, 5492),
    "Nikon D800": (7866, -2108, -555, -4869, 12483, 2681, -1176, 2069, 7501),
    "Sony ILCE-7M2": (5271, -712, -347, -6153, 13653, 2763, -1601, 2366, 7242),
}


def camera_to_srgb(xyz_to_cam: torch.Tensor) -> torch.Tensor:
    """The colour-correction matrix (camera RGB → linear sRGB) of XYZ → camera matrices (..., 3, 3): sRGB →
    camera is xyz_to_cam · sRGB→XYZ with each row scaled to sum 1 (white balanced white stays white),
    and the develop applies its inverse."""
    srgb_to_cam = xyz_to_cam.double() @ _SRGB_TO_XYZ.double()
    srgb_to_cam = srgb_to_cam / srgb_to_cam.sum(dim=-1, keepdim=True)
    return torch.linalg.inv(srgb_to_cam).float()


def random_ccms(n: int, gen: torch.Generator | None = None) -> torch.Tensor:
    """`n` colour-correction matrices (n, 3, 3), each of a random camera between the listed ones (a random
    convex mix of their XYZ → camera matrices, as Brooks et al. draw them): the develop's mixing of the
    sensor's channels, which makes camera noise correlated across R, G and B."""
    cams = torch.tensor(list(CAMERA_XYZ_TO_CAM.values()), dtype=torch.float64).view(-1, 3, 3) / 10000.0
    w = torch.rand(n, cams.shape[0], generator=gen, dtype=torch.float64)
    w = w / w.sum(dim=1, keepdim=True)
    return camera_to_srgb(torch.einsum("nk,kij->nij", w, cams))


def _apply_matrix(m: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """Per-pixel colour matrix: (B or 1, 3, 3) applied to (B, 3, H, W)."""
    return torch.einsum("bij,bjhw->bihw", m.to(rgb.device, rgb.dtype).expand(rgb.shape[0], 3, 3), rgb)


def camera_levels(level: float) -> tuple[float, float]:
    """Shot and read noise variances (linear light) for a camera noise level in [0, 1] (ISO-like)."""
    log_shot = math.log(0.0001) + level * (math.log(0.012) - math.log(0.0001))
    log_read = 2.18 * log_shot + 1.20
    return math.exp(log_shot), math.exp(log_read)


@register_noise(
    "camera",
    "real camera noise: shot + read noise in linear raw light, then demosaicing, tone curve and JPEG",
    NoiseParam("level", 0.5, 0.0, 1.0, "sensor noise level, 0 = base ISO, 1 = very high ISO"),
    NoiseParam("demosaic", 1.0, 0.0, 1.0, "1 = mosaic to a Bayer pattern and demosaic (correlated noise)", True),
    NoiseParam("jpeg_quality", 0.0, 0.0, 100.0, "JPEG quality of the camera's output; 0 = no JPEG", True),
    NoiseParam("keep_detail", 1.0, 0.0, 1.0,
               "1 = add only the noise the pipeline makes, keeping the image's detail and colours; "
               "0 = return the developed image (demosaicing softens it)", True),
    NoiseParam("white", 0.0, 0.0, 1.0,
               "share of the sensor noise that is per-pixel (added after demosaicing, as binning, other "
               "demosaicing and in-camera processing leave it) instead of correlated by the demosaicing"),
)
def camera(
    x: torch.Tensor,
    gen: torch.Generator | None = None,
    *,
    level: float = 0.5,
    demosaic: float = 1.0,
    jpeg_quality: float = 0.0,
    keep_detail: float | torch.Tensor = 1.0,
    white: float | torch.Tensor = 0.0,
    wb_gains: torch.Tensor | None = None,
    shot: float | torch.Tensor | None = None,
    read: float | torch.Tensor | None = None,
    ccm: torch.Tensor | None = None,
) -> torch.Tensor:
    """Unprocess sRGB to linear raw, add heteroscedastic noise, and process back to sRGB.

    With `keep_detail` (the default) the result is the image plus the difference between the noisy
    and the noise-free development, so a zero noise level returns the image itself: a model trained
    on such pairs learns to remove noise only, not to undo the demosaicing (which taught the first
    `photo` model to sharpen clean photos). Gray images go through the same curve without the colour
    steps. `shot`/`read` override the variances derived from `level` (training samples them per image).
    `white` (a number, or one per image) is the share t of the noise variance drawn per pixel after
    demosaicing rather than on the mosaic: both parts are added in linear light before the one clip of
    the development, so mixing them adds no bias of its own in the shadows. A `keep_detail` between 0
    and 1 (or one per image) keeps that share of the detail the development softens. `wb_gains` (B, 3)
    replaces the fixed daylight white balance per image: the red and blue noise is amplified by them.
    `ccm` ((3, 3) or one per image, camera RGB → linear sRGB, e.g. `random_ccms`) adds the develop's
    colour correction: the image is taken back to the camera's colours before the mosaic and the noise,
    so the noise comes out mixed across the channels as a camera's does (None: the sensor's colours are sRGB's).
    """
    if shot is None or read is None:
        shot, read = camera_levels(level)
    colour = x.shape[1] == 3
    demosaic = demosaic and min(x.shape[2], x.shape[3]) >= 2  # a Bayer quad needs 2×2 pixels
    lin = _smoothstep_inverse(x).clamp(min=1e-8) ** 2.2
    gains = (DAYLIGHT_GAINS.to(x.device) if wb_gains is None else wb_gains.to(x.device, x.dtype)).view(-1, 3, 1, 1)
    mask = _mosaic_mask(x.shape[2], x.shape[3], x.device) if colour and demosaic else None
    ccm = ccm.view(-1, 3, 3) if ccm is not None and colour else None
    if ccm is not None:
        lin = _apply_matrix(torch.linalg.inv(ccm.float()), lin)
    if colour:
        lin = lin / gains
    raw = lin * mask if mask is not None else lin

    def demosaiced(r: torch.Tensor) -> torch.Tensor:
        return _demosaic_bilinear(r, mask) if mask is not None else r

    def develop(rgb: torch.Tensor) -> torch.Tensor:
        if colour:
            rgb = rgb * gains
        if ccm is not None:
            rgb = _apply_matrix(ccm, rgb)
        return _smoothstep(rgb.clamp(0.0, 1.0) ** (1 / 2.2))

    t = torch.as_tensor(white, dtype=lin.dtype, device=x.device).clamp(0.0, 1.0)
    t = t.view(-1, 1, 1, 1) if t.ndim else t
    noisy_raw = raw + (raw.clamp(min=0) * shot + read).sqrt() * _randn(raw, gen) * (1 - t).sqrt()
    noisy = demosaiced(noisy_raw)
    if bool((t > 0).any()):
        noisy = noisy + (lin.clamp(min=0) * shot + read).sqrt() * _randn(lin, gen) * t.sqrt()
    out = develop(noisy)
    k = torch.as_tensor(keep_detail, dtype=lin.dtype, device=x.device).clamp(0.0, 1.0)
    k = k.view(-1, 1, 1, 1) if k.ndim else k
    if bool((k > 0).any()):
        out = (out + k * (x - develop(demosaiced(raw)))).clamp(0.0, 1.0)
    if jpeg_quality and jpeg_quality > 0:
        out = jpeg_compress(out, int(jpeg_quality))
    return out


def _gaussian_lowpass(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Separable Gaussian low-pass (standard deviation `radius` px) of a (B, C, H, W) batch, per channel."""
    r = max(1, math.ceil(3 * radius))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / radius) ** 2)
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[1]
    pad = (r, r, r, r)
    low = F.conv2d(F.pad(x, pad, mode="reflect" if min(x.shape[-2:]) > r else "replicate"),
                   k.view(1, 1, 1, -1).expand(c, 1, 1, -1).contiguous(), groups=c)
    return F.conv2d(low, k.view(1, 1, -1, 1).expand(c, 1, -1, 1).contiguous(), groups=c)


def blur_noise(noisy: torch.Tensor, clean: torch.Tensor, radius: float) -> torch.Tensor:
    """`clean` plus the noise of `noisy` low-passed by a Gaussian of standard deviation `radius` px and
    rescaled to its former strength: the blotchy, low-frequency noise left by in-camera noise reduction
    and down-scaling, which a white-noise estimate reads as much weaker than it is."""
    if radius <= 0:
        return noisy
    noise = noisy - clean
    low = _gaussian_lowpass(noise, radius)
    scale = noise.flatten(1).std(dim=1) / low.flatten(1).std(dim=1).clamp(min=1e-8)
    return (clean + low * scale.view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def sharpen_noise(noisy: torch.Tensor, clean: torch.Tensor, amount: float, radius: float = 1.0) -> torch.Tensor:
    """`clean` plus the noise of `noisy` through an unsharp mask (noise + amount·(noise − low-pass)), as
    in-camera sharpening leaves it: finer-grained and stronger, with the negative correlation at two
    pixels that real phone and camera JPEGs show. The image's own detail is not sharpened."""
    if amount <= 0:
        return noisy
    noise = noisy - clean
    return (clean + noise + amount * (noise - _gaussian_lowpass(noise, radius))).clamp(0.0, 1.0)


def reduce_chroma_noise(noisy: torch.Tensor, clean: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """`clean` plus the noise of `noisy` with its colour part (noise minus its channel mean) scaled by `keep`
    per sample (shape (B,)), its luminance part untouched: what the chroma noise reduction of phones and
    cameras leaves, a grey grain stronger than the colour noise beside it."""
    noise = noisy - clean
    luma = noise.mean(dim=1, keepdim=True)
    k = keep.to(noise.dtype).view(-1, 1, 1, 1).clamp(0.0, 1.0)
    return (clean + luma + k * (noise - luma)).clamp(0.0, 1.0)


def jpeg_compress(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip a (B, C, H, W) batch through JPEG at the given quality (Pillow, 4:2:0 like cameras)."""
    import io

    from PIL import Image as PILImage

    imgs = (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().permute(0, 2, 3, 1).numpy()
    out = []
    for a in imgs:
        buf = io.BytesIO()
        PILImage.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(buf, "JPEG", quality=int(quality))
        dec = np.asarray(PILImage.open(io.BytesIO(buf.getvalue())), dtype=np.float32) / 255.0
        out.append(torch.from_numpy(dec.reshape(a.shape)).permute(2, 0, 1))
    return torch.stack(out).to(x.device)


def quantize_8bit(x: torch.Tensor) -> torch.Tensor:
    """Clip to [0, 1] and round to 8-bit steps, as a saved photo is."""
    return (x.clamp(0.0, 1.0) * 255.0).round() / 255.0


def apply_noise(
    x: torch.Tensor, name: str, gen: torch.Generator | None = None, **params: Any
) -> torch.Tensor:
    """Corrupt a (B, C, H, W) tensor with the named model (unknown names raise ValueError)."""
    model = get_noise_model(name)
    extra = {k: v for k, v in params.items() if k in ("shot", "read") and name == "camera"}
    return model.apply(x, gen, **model.resolve(params), **extra)


def get_noise_model(name: str) -> NoiseModel:
    """Look a noise model up by name with a clear error listing the known ones."""
    try:
        return NOISE_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown noise model '{name}' (known: {', '.join(NOISE_MODELS)})") from None


def add_noise(
    image: np.ndarray, name: str, *, seed: int | None = 0, clip: bool = True, **params: Any
) -> np.ndarray:
    """Corrupt an (H, W, C) float image in [0, 1]; `clip` clips to [0, 1] like a saved photo."""
    gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    y = apply_noise(x, name, gen, **params)[0].permute(1, 2, 0).numpy()
    return np.clip(y, 0.0, 1.0) if clip else y
