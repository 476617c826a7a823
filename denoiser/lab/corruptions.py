"""Experiment 2: DAEs trained with different corruptions, each evaluated on every corruption."""

from __future__ import annotations

import numpy as np

from denoiser.lab.common import (
    DAE_OVERCOMPLETE,
    OVERCOMPLETE,
    ExperimentResult,
    LabContext,
    ModelSpec,
    Scale,
    Table,
    check,
    psnr_batch,
)
from denoiser.lab.plots import image_grid, new_figure, save, to_gray
from denoiser.progress import ProgressGen

KEY = "corruptions"
TITLE = "Corruptions"
EXPECTATION = (
    "What a DAE learns depends on the corruption it is trained to undo. Additive Gaussian noise teaches smoothing "
    "of small dense perturbations; salt-and-pepper teaches detecting and replacing outlier pixels; masking "
    "(dropout) teaches filling in missing pixels from their neighbours; speckle teaches signal-dependent "
    "smoothing that is strongest in bright areas. So each DAE should be best on its own corruption (the "
    "diagonal of the cross table), and a DAE trained on dense Gaussian noise should do poorly on impulse "
    "corruptions (salt-and-pepper, masking) it never saw."
)
CORRUPTIONS: dict[str, dict[str, float]] = {
    "gaussian": {"sigma": 25.0},
    "salt-pepper": {"amount": 0.1},
    "masking": {"amount": 0.25},
    "speckle": {"sigma": 50.0},
}
IMPULSE_MARGIN_DB = 3.0


def spec_for(name: str) -> ModelSpec:
    """The DAE trained with corruption `name` (the gaussian one is experiment 1's DAE)."""
    if name == "gaussian":
        return DAE_OVERCOMPLETE
    params = tuple(CORRUPTIONS[name].items())
    return ModelSpec(f"dae-overcomplete-{name}", OVERCOMPLETE, name, params,
                     description=f"overcomplete conv DAE trained with {name} corruption")


def label(name: str) -> str:
    """'salt-pepper amount=0.1'."""
    return spec_for(name).training_label()


def plan(scale: Scale) -> list[ModelSpec]:
    """One DAE per corruption."""
    return [spec_for(name) for name in CORRUPTIONS]


def run(ctx: LabContext) -> ProgressGen[ExperimentResult]:
    """Train the four DAEs and fill the cross table of output PSNR (rows: training, columns: test)."""
    res = ExperimentResult(KEY, TITLE, EXPECTATION)
    by_name = yield from ctx.models([spec_for(name) for name in CORRUPTIONS], res)
    nets = {name: by_name[spec_for(name).name] for name in CORRUPTIONS}
    clean = ctx.test_images
    noisy = {t: ctx.corrupt(clean, t, p) for t, p in CORRUPTIONS.items()}
    input_psnr = {t: psnr_batch(noisy[t], clean) for t in CORRUPTIONS}
    cross = {tr: {te: psnr_batch(ctx.run(nets[tr], noisy[te]), clean) for te in CORRUPTIONS} for tr in CORRUPTIONS}
    yield ctx.advance(ctx.scale.steps / 4, f"{KEY}: scored")
    names = list(CORRUPTIONS)
    cols = ["trained on \\ tested on", *[label(t) for t in names]]
    res.tables.append(Table("psnr", "Output PSNR (dB) of each DAE on each corruption; first row: the corrupted input.",
                            cols, [["(noisy input)", *[input_psnr[t] for t in names]]]
                            + [[label(tr), *[cross[tr][te] for te in names]] for tr in names]))
    res.tables.append(Table("gain", "PSNR gain (dB) over the corrupted input.", cols,
                            [[label(tr), *[cross[tr][te] - input_psnr[te] for te in names]] for tr in names]))

    gains = np.array([[cross[tr][te] - input_psnr[te] for te in names] for tr in names])
    fig = new_figure(6.2, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    lim = float(np.abs(gains).max()) or 1.0
    im = ax.imshow(gains, cmap="RdBu", vmin=-lim, vmax=lim)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{gains[i, j]:+.1f}", ha="center", va="center", fontsize=9)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title("PSNR gain over the corrupted input (dB)")
    fig.colorbar(im, ax=ax)
    res.figures.append((save(fig, ctx.figure_path("corruptions_gain.png")), "Gain of each DAE (rows) on each "
                                                                             "corruption (columns)."))
    rows = []
    for te in names:
        rows.append([to_gray(clean[0]), to_gray(noisy[te][0])]
                    + [to_gray(ctx.run(nets[tr], noisy[te][:1])[0]) for tr in names])
    fig_name = image_grid(ctx.figure_path("corruptions_crops.png"), rows, [f"test: {t}" for t in names],
                          ["clean", "corrupted", *[f"DAE {tr}" for tr in names]])
    res.figures.append((fig_name, "One test crop under each corruption (rows) and each DAE's output (columns)."))

    best = {te: max(names, key=lambda tr, te=te: cross[tr][te]) for te in names}
    matched = [te for te in names if best[te] == te]
    missed = ", ".join(f"{te} (best: {best[te]} DAE, {cross[best[te]][te] - cross[te][te]:.2f} dB above "
                       f"the matched one)" for te in names if best[te] != te)
    res.checks.append(check(len(matched) >= len(names) - 1,
                            f"the DAE trained on a corruption is the best on it for {len(matched)} of {len(names)} "
                            f"corruptions ({', '.join(matched) or 'none'}; threshold ≥ {len(names) - 1})"
                            + (f"; not for {missed}" if missed else ""),
                            "corruptions that share structure transfer: a DAE for one dense noise also handles "
                            "another, and short training leaves the matched model short of its optimum."))
    for imp in ("salt-pepper", "masking"):
        margin = cross[imp][imp] - cross["gaussian"][imp]
        res.checks.append(check(margin >= IMPULSE_MARGIN_DB,
                                f"on {imp} the {imp} DAE beats the Gaussian DAE by {margin:.2f} dB "
                                f"(threshold ≥ {IMPULSE_MARGIN_DB:g} dB)",
                                "the Gaussian DAE's smoothing already removes part of the impulses, or the "
                                f"{imp} DAE is under-trained."))
    res.values = {"input_psnr": input_psnr, "cross": cross, "best": best}
    return res
