"""Folder → folder denoising: one bad file never stops the rest, an input is never overwritten.

The output tree mirrors the input tree; existing outputs are skipped unless `overwrite`; every
output is written atomically (temporary file, then rename), so a cancel or Ctrl-C leaves no partial
file, and without `overwrite` the rename is an exclusive create: a file that appears in the output
folder during the run (another run, the user's own) is reported as skipped, never replaced. The
outputs of an earlier run into the input folder are not inputs. The CLI and the GUI's batch dialog both drain `run_batch`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from denoiser.blend import Blend, apply_blend
from denoiser.checkpoint import LoadedModel, load_model, read_info, resolve_model
from denoiser.data import find_images
from denoiser.device import resolve_device
from denoiser.errors import DenoiserError, OutputExistsError
from denoiser.imageio import (
    FORMAT_BIT_DEPTHS,
    RAW_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    Image,
    check_write_options,
    load_image,
    native_pixels,
    output_format_for,
    save_image,
)
from denoiser.inference import check_tile, denoise_array, unit_float
from denoiser.progress import Progress, ProgressGen
from denoiser.raw import denoise_mosaic, develop, dng_bytes, is_raw_model, read_raw, write_dng

FORMAT_EXTENSIONS = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg", "webp": ".webp", "bmp": ".bmp", "dng": ".dng"}


@dataclass
class BatchOptions:
    """How a batch is denoised and where it goes."""

    output: Path
    model: str = "default"
    raw_model: str = "raw"  # the 4-plane model that denoises camera RAW files in the raw domain
    raw_pipeline: str = "auto"  # a camera RAW: mosaic (raw_model, then develop) | develop (develop, then model)
    sigma: float | None = None  # None = estimate per image
    strength: float = 1.0
    luma_strength: float = 1.0  # share of the luminance change kept (grain), see denoiser.blend
    chroma_strength: float = 1.0  # share of the colour change kept
    detail: float = 0.0  # share of the texture in the removed residual given back
    grain: float = 0.0  # fresh luminance grain, as a share of the removed noise
    grain_size: float = 1.0  # its radius in px
    grain_seed: int = 0  # image i's grain uses grain_seed + i
    tile: int | None = None
    device: str = "auto"
    precision: str = "auto"  # auto|fp32|bf16|fp16, see device.resolve_precision
    ensemble: int = 1  # passes per tile over flips/quarter turns (1, 2, 4, 8), see denoiser.ensemble
    keep_clipped: bool = True  # keep regions clipped to black or white as they are, see denoiser.fidelity
    clip_to_input: bool = True  # a float image's result stays within the input's range (at least 0–1)
    recursive: bool = False
    suffix: str = ""
    format: str = "same"  # same|png|tiff|jpeg|webp|bmp|dng (same: a camera RAW becomes a DNG, or with
    # raw_pipeline develop a 16-bit TIFF)
    bit_depth: int | None = None  # None = keep the input's where the format allows
    quality: int = 95
    overwrite: bool = False


@dataclass
class FileResult:
    """What happened to one input."""

    input: Path
    output: Path | None
    status: str  # "done", "skipped" or "failed"
    reason: str = ""
    seconds: float = 0.0
    sigma: float | None = None


@dataclass
class BatchSummary:
    """All results, in input order."""

    results: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many inputs ended with `status`."""
        return sum(r.status == status for r in self.results)

    @property
    def failed(self) -> list[FileResult]:
        """The failed inputs with their reasons."""
        return [r for r in self.results if r.status == "failed"]

    def text(self) -> str:
        """A one-line summary plus one line per failure."""
        lines = [f"{self.count('done')} done, {self.count('skipped')} skipped, {self.count('failed')} failed"]
        lines += [f"  failed: {r.input}: {r.reason}" for r in self.failed]
        return "\n".join(lines)


RAW_PIPELINES = ("auto", "mosaic", "develop")


def raw_pipeline_for(pipeline: str, fmt: str) -> str:
    """How a camera RAW written as `fmt` (a resolved format: dng, tiff, png, …) is denoised: 'mosaic' (the
    raw model on the Bayer mosaic, then LibRaw's develop: the only way to a DNG) or 'develop' (LibRaw's
    develop, then the image model, as for any photo). Auto picks the mosaic for a DNG and the develop for
    everything else, where `photo` on the develop measures 1.5–2.2 dB above the raw model (README,
    camera-RAW table)."""
    if pipeline not in RAW_PIPELINES:
        raise ValueError(f"unknown RAW pipeline '{pipeline}' (one of {', '.join(RAW_PIPELINES)})")
    if pipeline == "develop" and fmt == "dng":
        raise DenoiserError("a DNG holds the denoised sensor mosaic: the develop pipeline writes developed "
                            "formats (--format tiff), or use --raw-pipeline mosaic for a DNG")
    if pipeline == "auto":
        return "mosaic" if fmt == "dng" else "develop"
    return pipeline


def _raw_output_format(dst: Path, fmt: str) -> str:
    """A camera RAW's output format: with 'same' the output's name decides (photo.nef → photo.dng, or
    `-o photo.tif` for a develop)."""
    if fmt == "same":
        return "dng" if dst.suffix.lower() == ".dng" else output_format_for(dst)
    return fmt


def _out_name(src: Path, fmt: str, suffix: str, raw_pipeline: str = "auto") -> str:
    if fmt == "same":
        ext = src.suffix if src.suffix.lower() not in (".jpeg",) else ".jpg"
        if src.suffix.lower() in RAW_EXTENSIONS:  # a camera RAW comes back as a DNG raw editors open,
            ext = ".tif" if raw_pipeline == "develop" else ".dng"  # or as its 16-bit develop
    else:
        ext = FORMAT_EXTENSIONS[fmt]
    return f"{src.stem}{suffix}{ext}"


def check_options(opts: BatchOptions) -> None:
    """Refuse options that would fail every file (unknown model or format, a depth the format cannot hold,
    a bad quality) before any work starts; raises ValueError or a DenoiserError with the reason."""
    _check_format(opts.format)
    check_suffix(opts.suffix)
    check_tile(opts.tile)
    blend_of(opts)
    same = opts.format in ("same", "dng")  # then each file's own format, checked before that file is denoised
    check_write_options(None if same else opts.format, None if same else opts.bit_depth, opts.quality)
    if opts.format == "dng" and opts.bit_depth not in (None, 16):
        raise ValueError("a DNG keeps the camera's raw values: leave the bit depth unset")
    raw_pipeline_for(opts.raw_pipeline, "dng" if opts.format == "dng" else "tiff")  # before any file is read
    read_info(resolve_model(opts.model, 3))


def blend_of(opts: BatchOptions, index: int = 0) -> Blend:
    """The finishing the options ask for, for the `index`-th image (raises ValueError for a share outside 0–1)."""
    return Blend(strength=opts.strength, luma=opts.luma_strength, chroma=opts.chroma_strength, detail=opts.detail,
                 grain=opts.grain, grain_size=opts.grain_size, seed=opts.grain_seed + index)


def check_suffix(suffix: str) -> None:
    """A suffix is part of a file name: path separators, `..` and NUL would write outside the output folder."""
    if any(ch in suffix for ch in ("/", "\\", "\0")) or ".." in suffix:
        raise ValueError(f"--suffix '{suffix}' must be part of a file name: no '/', '\\' or '..'")


def _check_format(fmt: str) -> None:
    if fmt != "same" and fmt not in FORMAT_EXTENSIONS:
        raise ValueError(f"unknown output format '{fmt}' (same, {', '.join(FORMAT_EXTENSIONS)})")


def _inside(path: Path, folder: Path) -> bool:
    return folder in path.parents


def plan_batch(inputs: Sequence[str | Path], opts: BatchOptions) -> list[tuple[Path, Path | None, str]]:
    """(input, output, problem) for every input image; `problem` is non-empty for inputs that fail early.

    An output folder inside an input folder is not scanned (a rerun would denoise its own outputs), and
    when two inputs would write the same file (photo.jpg and photo.tif to PNG) the later one fails."""
    _check_format(opts.format)
    check_suffix(opts.suffix)
    out = Path(opts.output)
    out_abs = out.resolve()
    plan: list[tuple[Path, Path | None, str]] = []
    single_file = (
        len(inputs) == 1 and Path(inputs[0]).is_file() and out.suffix.lower() in SUPPORTED_EXTENSIONS and not out.is_dir()
    )
    for item in inputs:
        p = Path(item)
        if not p.exists():
            plan.append((p, None, "no such file or folder"))
        elif p.is_dir():
            out_within = _inside(out_abs, p.resolve())  # an output folder strictly inside this input folder
            for f in find_images([p], opts.recursive):
                if out_within and _inside(f.resolve(), out_abs):
                    continue
                rel = f.relative_to(p).parent
                plan.append((f, out / rel / _out_name(f, opts.format, opts.suffix, opts.raw_pipeline), ""))
        elif single_file:
            plan.append((p, out, ""))
        else:
            plan.append((p, out / _out_name(p, opts.format, opts.suffix, opts.raw_pipeline), ""))
    return _mark_clashes(_without_earlier_outputs(plan, opts.suffix))


def _key(path: Path) -> str:
    return os.path.normcase(str(path.resolve()))


def _without_earlier_outputs(plan: list[tuple[Path, Path | None, str]], suffix: str) -> list[tuple[Path, Path | None, str]]:
    """Leave out the outputs of an earlier run: an input whose name carries the suffix and that is exactly
    where another input of this run is written (`denoise a -o a --suffix _dn` run twice must not make
    k1_dn_dn.png, nor fail k1.png because its output is "another input")."""
    if not suffix:
        return plan
    planned = {_key(dst) for _src, dst, problem in plan if dst is not None and not problem}
    return [(src, dst, problem) for src, dst, problem in plan
            if not (src.stem.endswith(suffix) and _key(src) in planned)]


def _mark_clashes(plan: list[tuple[Path, Path | None, str]]) -> list[tuple[Path, Path | None, str]]:
    """Give a problem instead to every input whose output would be another input of the run (x.jpg → x.png
    beside x.png) or the output of an earlier input."""
    inputs = {_key(src): src for src, _, _ in plan}
    first: dict[str, Path] = {}
    marked = []
    for src, dst, problem in plan:
        if dst is not None and not problem:
            k = _key(dst)
            if k in inputs and k != _key(src):
                problem = (f"its output {dst.name} would replace the input {inputs[k]}; "
                           "use a suffix, another format or another folder")
            elif k in first:
                problem = (f"its output {dst.name} is also the output of {first[k]}; "
                           "use a suffix or another format, or run them separately")
            else:
                first[k] = src
        marked.append((src, dst, problem))
    return marked


def run_batch(inputs: Sequence[str | Path], opts: BatchOptions) -> ProgressGen[BatchSummary]:
    """Denoise every input; yields progress (files done + fraction of the current file)."""
    plan = plan_batch(inputs, opts)
    summary = BatchSummary()
    models: dict[Path, LoadedModel] = {}
    total = len(plan)
    for i, (src, dst, problem) in enumerate(plan):
        gen = denoise_file(src, dst, problem, opts, i, models)
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                result = stop.value
                break
            yield Progress(i + ev.fraction, total, f"{src.name}: {ev.message}", {"index": i, "file": str(src)})
        summary.results.append(result)
        yield Progress(i + 1, total, f"{src.name}: {result.status}", {"index": i, "file": str(src), "result": result})
    return summary


def denoise_file(src: Path, dst: Path | None, problem: str, opts: BatchOptions, index: int,
                 models: dict[Path, LoadedModel]) -> ProgressGen[FileResult]:
    """One planned file (`index` in the plan, for its grain seed): denoise `src` into `dst` unless the plan
    found a `problem`; yields the file's progress and returns what happened. `models` caches loaded
    models by path, so a run (or a cluster worker) loads each once. Never raises for a bad file."""
    start = time.perf_counter()
    result = FileResult(src, dst, "failed", problem)
    if not problem and dst is not None:
        if dst.exists() and dst.resolve() == src.resolve():
            result.reason = "the output would overwrite the input (choose another folder or a suffix)"
        elif dst.exists() and not opts.overwrite:
            result.status, result.reason = "skipped", "output exists (use overwrite to replace it)"
        else:
            try:
                raw_in = src.suffix.lower() in RAW_EXTENSIONS
                if raw_in and raw_pipeline_for(opts.raw_pipeline, _raw_output_format(dst, opts.format)) == "mosaic":
                    result.sigma = yield from denoise_raw_file(src, dst, opts, index, models)
                    result.status, result.reason = "done", ""
                    result.seconds = time.perf_counter() - start
                    return result
                if opts.format == "dng" and not raw_in:
                    raise DenoiserError("DNG output is for camera RAW inputs (a DNG holds a sensor mosaic); "
                                        "choose another --format for this file")
                out_fmt = opts.format if opts.format != "same" else output_format_for(dst)
                check_write_options(out_fmt, opts.bit_depth, opts.quality)
                img = load_image(src)
                # 8/16-bit files are denoised from their integer pixels, so the float copy can go:
                # a 50-megapixel photo then needs a quarter of its memory while the tiles run.
                pixels, alpha = native_pixels(img), img.alpha
                img = replace(img, data=np.zeros((1, 1, img.channels), np.float32), alpha=None)
                mpath = resolve_model(opts.model, img.channels)
                if mpath not in models:
                    models[mpath] = load_model(mpath)
                res = yield from denoise_array(pixels, models[mpath], sigma=opts.sigma, tile=opts.tile,
                                               device=opts.device, precision=opts.precision, ensemble=opts.ensemble,
                                               keep_clipped=opts.keep_clipped, clip_to_input=opts.clip_to_input)
                data = apply_blend(unit_float(pixels), res.image, blend_of(opts, index))
                save_image(replace(img, data=data, alpha=alpha), dst, format=out_fmt, bit_depth=opts.bit_depth,
                           quality=opts.quality, overwrite=opts.overwrite)
                result.status, result.reason, result.sigma = "done", "", res.sigma
            except OutputExistsError:  # it appeared while this file was denoised: never replace it
                result.status, result.reason = "skipped", "output appeared during the run (use overwrite to replace it)"
            except (DenoiserError, OSError, ValueError, MemoryError) as exc:
                result.status, result.reason = "failed", str(exc)
    result.seconds = time.perf_counter() - start
    return result


def _loaded(name: str, models: dict[Path, LoadedModel], channels: int) -> LoadedModel:
    path = resolve_model(name, channels)
    if path not in models:
        models[path] = load_model(path)
    return models[path]


def denoise_raw_file(src: Path, dst: Path, opts: BatchOptions, index: int,
                     models: dict[Path, LoadedModel]) -> ProgressGen[float]:
    """A camera RAW denoised in the raw domain by the raw model (the 'mosaic' pipeline), written as a DNG
    (format same or dng) or developed to the chosen format (16 bits where it holds them), finished there as
    `opts` say; returns the noise σ at mid-grey that the mosaic's estimate read."""
    blend = blend_of(opts, index)
    fmt = _raw_output_format(dst, opts.format)
    if fmt == "dng" and dst.suffix.lower() != ".dng":
        raise DenoiserError(f"a DNG must be named .dng, not '{dst.name}'")
    if fmt == "dng" and (blend.luma != 1.0 or blend.chroma != 1.0 or blend.detail > 0 or blend.grain > 0):
        raise DenoiserError("luminance/colour strength, detail and grain act on a developed image, not on a "
                            "DNG's mosaic: use --format tiff for RAW files, or leave them at their defaults")
    loaded = _loaded(opts.raw_model, models, 4)
    if not is_raw_model(loaded.net):
        raise DenoiserError(f"'{opts.raw_model}' is not a raw model (it takes {loaded.net.in_channels}-channel "
                            "images; a raw model takes the 4 Bayer planes): choose one with --raw-model")
    mosaic = read_raw(src)
    strength = opts.strength if fmt == "dng" else 1.0  # a developed output blends after developing, as images do
    res = yield from denoise_mosaic(mosaic, loaded.net, sigma=opts.sigma, device=resolve_device(opts.device),
                                    strength=strength)
    if fmt == "dng":
        write_dng(res.mosaic, dst, overwrite=opts.overwrite)
        return res.sigma
    noisy = develop(dng_bytes(mosaic)).astype(np.float32) / 65535.0  # both through one develop, so they align
    clean = develop(dng_bytes(res.mosaic)).astype(np.float32) / 65535.0
    data = apply_blend(noisy, clean, blend)
    depth = opts.bit_depth or (16 if 16 in FORMAT_BIT_DEPTHS[fmt] else 8)
    image = Image(data=data, alpha=None, bit_depth=16, exif=None, icc_profile=None, format="raw", path=src)
    save_image(image, dst, format=fmt, bit_depth=depth, quality=opts.quality, overwrite=opts.overwrite)
    return res.sigma
