"""Experiment 7: compression / feature extraction — code size against reconstruction PSNR of the bottleneck AE."""

from __future__ import annotations

import math

import torch.nn.functional as F

from denoiser.lab.common import (
    ExperimentResult,
    LabContext,
    ModelSpec,
    Scale,
    Table,
    bottleneck_spec,
    check,
    psnr_batch,
)
from denoiser.lab.plots import new_figure, save
from denoiser.progress import ProgressGen

KEY = "compression"
TITLE = "Compression / features"
EXPECTATION = (
    "A bottleneck autoencoder is a learned lossy compressor: the code (code channels at 1/4 resolution, i.e. "
    "channels/16 values per pixel) is all the decoder sees, so reconstruction PSNR should rise with the code "
    "size, with diminishing returns — a rate–distortion curve. Because the encoder adapts to the statistics of "
    "natural images, the learned code should beat plain subsampling (area-downsampling to the same number of "
    "values, bicubic upsampling) at the same size."
)
TOLERANCE_DB = 0.2


def code_sizes(scale: Scale) -> list[int]:
    """Code channels of the sweep."""
    return [1, 2, 4, 8, 16] if scale.wide else [1, 4]


def spec_for(channels: int) -> ModelSpec:
    """The bottleneck AE with `channels` code channels (4 is experiment 1's)."""
    return bottleneck_spec(channels)


def plan(scale: Scale) -> list[ModelSpec]:
    """One bottleneck AE per code size."""
    return [spec_for(c) for c in code_sizes(scale)]


def run(ctx: LabContext) -> ProgressGen[ExperimentResult]:
    """Reconstruction PSNR of each code size, against subsampling to the same number of values."""
    res = ExperimentResult(KEY, TITLE, EXPECTATION)
    sizes = code_sizes(ctx.scale)
    by_name = yield from ctx.models([spec_for(c) for c in sizes], res)
    nets = {c: by_name[spec_for(c).name] for c in sizes}
    clean = ctx.test_images
    side = clean.shape[-1]
    ae, base, per_pixel = {}, {}, {}
    for c in sizes:
        per_pixel[c] = nets[c].overcomplete_ratio
        ae[c] = psnr_batch(ctx.run(nets[c], clean), clean)
        small = max(1, round(side * math.sqrt(per_pixel[c])))
        if small < side:
            down = F.interpolate(clean, size=(small, small), mode="area")
            base[c] = psnr_batch(F.interpolate(down, size=(side, side), mode="bicubic", align_corners=False), clean)
        else:
            base[c] = None  # as many values as pixels: subsampling is lossless
    yield ctx.advance(ctx.scale.steps / 4, f"{KEY}: scored")
    res.tables.append(Table("curve", "Clean test crops. Values per pixel = code size / image size; subsampling keeps "
                                     "the same number of values (— where that is every pixel, i.e. lossless).",
                            ["code channels", "values / pixel", "compression ×", "AE PSNR", "subsampling PSNR"],
                            [[c, per_pixel[c], 1 / per_pixel[c], ae[c], base[c]] for c in sizes]))
    fig = new_figure(5.5, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([per_pixel[c] for c in sizes], [ae[c] for c in sizes], marker="o", label="bottleneck AE")
    with_base = [c for c in sizes if base[c] is not None]
    ax.plot([per_pixel[c] for c in with_base], [base[c] for c in with_base], marker="s", ls="--",
            label="area subsampling + bicubic")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("code values per pixel")
    ax.set_ylabel("reconstruction PSNR (dB)")
    ax.legend(fontsize=8)
    res.figures.append((save(fig, ctx.figure_path("compression_curve.png")),
                        "Rate–distortion curve of the bottleneck AE."))

    rises = all(ae[b] >= ae[a] - TOLERANCE_DB for a, b in zip(sizes, sizes[1:], strict=False))
    res.checks.append(check(rises and ae[sizes[-1]] > ae[sizes[0]],
                            f"PSNR rises with the code size: {ae[sizes[0]]:.2f} dB at {per_pixel[sizes[0]]:g} values/"
                            f"pixel to {ae[sizes[-1]]:.2f} dB at {per_pixel[sizes[-1]]:g} (no step down by more "
                            f"than {TOLERANCE_DB:g} dB)",
                            "larger codes need longer training to use their capacity."))
    wins = [c for c in with_base if ae[c] > base[c]]
    res.checks.append(check(len(wins) * 2 >= len(with_base) and with_base,
                            f"the learned code beats subsampling at {len(wins)} of {len(with_base)} sizes "
                            + ", ".join(f"({per_pixel[c]:g}/px: {ae[c] - base[c]:+.2f} dB)" for c in with_base),
                            "the small, briefly trained AE blurs more than bicubic interpolation of a subsampled "
                            "image: it has not yet learned to spend its code on edges."))
    res.values = {"ae_psnr": ae, "subsampling_psnr": base, "values_per_pixel": per_pixel}
    return res
