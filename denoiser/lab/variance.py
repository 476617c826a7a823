"""Experiment 3: the noise level as a hyperparameter: DAEs trained at one σ (or a range) tested across σ."""

from __future__ import annotations

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
from denoiser.lab.plots import new_figure, save
from denoiser.progress import ProgressGen

KEY = "variance"
TITLE = "Noise variance as a hyperparameter"
EXPECTATION = (
    "The variance of the training corruption is a hyperparameter: a DAE trained at σ learns the amount of "
    "smoothing that is right for σ. Tested at a lower σ it over-smooths (removes detail), at a higher σ it "
    "leaves noise, so each fixed-σ model should be the best fixed-σ model at its own σ, with a mismatch penalty "
    "that grows with the distance. A model trained on a range of σ is never far from the matched one but is "
    "not the best at each σ either: it must guess the noise level from the input. Giving the model the noise "
    "level as an input (the noise-level map of the bundled models) removes the guess, so one model can be "
    "matched at every σ."
)
TRAIN_SIGMAS = (10.0, 25.0, 50.0)
RANGE = (5.0, 55.0)
RANGE_WITHIN_DB = 1.0


def spec_for(sigma: float) -> ModelSpec:
    """The DAE trained at a fixed σ (σ=25 is experiment 1's DAE)."""
    if sigma == 25.0:
        return DAE_OVERCOMPLETE
    return ModelSpec(f"dae-overcomplete-g{sigma:g}", OVERCOMPLETE, "gaussian", (("sigma", sigma),),
                     description=f"overcomplete conv DAE trained at gaussian σ={sigma:g}")


RANGE_SPEC = ModelSpec(f"dae-overcomplete-g{RANGE[0]:g}-{RANGE[1]:g}", OVERCOMPLETE, "gaussian",
                       sigma_range=RANGE, description=f"overcomplete conv DAE trained on σ∈[{RANGE[0]:g}, {RANGE[1]:g}]")


def test_sigmas(scale: Scale) -> list[float]:
    """Test noise levels: a wide sweep in full runs, the training levels in quick ones."""
    return [5.0, 10.0, 15.0, 25.0, 35.0, 50.0, 65.0] if scale.wide else list(TRAIN_SIGMAS)


def plan(scale: Scale) -> list[ModelSpec]:
    """Three fixed-σ DAEs and one range DAE."""
    return [*(spec_for(s) for s in TRAIN_SIGMAS), RANGE_SPEC]


def run(ctx: LabContext) -> ProgressGen[ExperimentResult]:
    """PSNR of each model at each test σ, and the penalty against the σ-matched model."""
    res = ExperimentResult(KEY, TITLE, EXPECTATION)
    nets = yield from ctx.models(plan(ctx.scale), res)
    clean = ctx.test_images
    sigmas = test_sigmas(ctx.scale)
    noisy = {s: ctx.corrupt(clean, "gaussian", {"sigma": s}) for s in sigmas}
    table = {spec.name: {s: psnr_batch(ctx.run(nets[spec.name], noisy[s]), clean) for s in sigmas}
             for spec in plan(ctx.scale)}
    input_psnr = {s: psnr_batch(noisy[s], clean) for s in sigmas}
    yield ctx.advance(ctx.scale.steps / 4, f"{KEY}: scored")
    specs = plan(ctx.scale)
    fixed = [spec_for(s) for s in TRAIN_SIGMAS]
    best_fixed = {s: max(table[f.name][s] for f in fixed) for s in sigmas}
    cols = ["model \\ test σ", *[f"{s:g}" for s in sigmas]]
    res.tables.append(Table("psnr", "Output PSNR (dB) at each test σ; first row: the noisy input.", cols,
                            [["(noisy input)", *[input_psnr[s] for s in sigmas]]]
                            + [[spec.training_label(), *[table[spec.name][s] for s in sigmas]] for spec in specs]))
    res.tables.append(Table("penalty", "Mismatch penalty: PSNR minus the best fixed-σ model's PSNR at that σ "
                                       "(0 = the best; negative = dB lost).", cols,
                            [[spec.training_label(), *[table[spec.name][s] - best_fixed[s] for s in sigmas]]
                             for spec in specs]))
    fig = new_figure(9.5, 3.8)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for spec in specs:
        style = "--" if spec is RANGE_SPEC else "-"
        ax1.plot(sigmas, [table[spec.name][s] for s in sigmas], style, marker="o", label=spec.training_label())
        ax2.plot(sigmas, [table[spec.name][s] - best_fixed[s] for s in sigmas], style, marker="o",
                 label=spec.training_label())
    ax1.plot(sigmas, [input_psnr[s] for s in sigmas], ":", color="gray", label="noisy input")
    ax1.set_xlabel("test σ")
    ax1.set_ylabel("PSNR (dB)")
    ax1.legend(fontsize=7)
    ax2.axhline(0, color="gray", lw=0.8)
    ax2.set_xlabel("test σ")
    ax2.set_ylabel("dB vs best fixed-σ model")
    ax2.set_title("mismatch penalty")
    for ax in (ax1, ax2):
        for s in TRAIN_SIGMAS:
            ax.axvline(s, color="lightgray", lw=0.6, zorder=0)
    res.figures.append((save(fig, ctx.figure_path("variance_psnr.png")), "PSNR and mismatch penalty across test σ "
                                                                          "(vertical lines: training σ)."))

    own_best = [s for s in TRAIN_SIGMAS if s in sigmas and table[spec_for(s).name][s] >= best_fixed[s]]
    res.checks.append(check(len(own_best) == len(TRAIN_SIGMAS),
                            f"each fixed-σ model is the best fixed-σ model at its own σ for {len(own_best)} of "
                            f"{len(TRAIN_SIGMAS)} training σ ({', '.join(f'{s:g}' for s in own_best) or 'none'})",
                            "a model trained longer or at a nearby σ can beat an under-trained matched model."))
    lo, hi = spec_for(TRAIN_SIGMAS[0]).name, spec_for(TRAIN_SIGMAS[-1]).name
    pen_lo_at_hi = table[lo][TRAIN_SIGMAS[-1]] - table[hi][TRAIN_SIGMAS[-1]]
    pen_hi_at_lo = table[hi][TRAIN_SIGMAS[0]] - table[lo][TRAIN_SIGMAS[0]]
    res.checks.append(check(pen_lo_at_hi < 0 and pen_hi_at_lo < 0,
                            f"mismatch costs: the σ={TRAIN_SIGMAS[0]:g} model at σ={TRAIN_SIGMAS[-1]:g} is "
                            f"{pen_lo_at_hi:.2f} dB and the σ={TRAIN_SIGMAS[-1]:g} model at σ={TRAIN_SIGMAS[0]:g} is "
                            f"{pen_hi_at_lo:.2f} dB against the matched model",
                            "the models are too under-trained to have specialised to their σ."))
    range_gap = min(table[RANGE_SPEC.name][s] - best_fixed[s] for s in TRAIN_SIGMAS)
    worst_fixed = {f.name: min(table[f.name][s] - best_fixed[s] for s in TRAIN_SIGMAS) for f in fixed}
    most_robust_fixed = max(worst_fixed.values())
    res.checks.append(check(range_gap >= -RANGE_WITHIN_DB and range_gap > most_robust_fixed,
                            f"the range model stays within {-range_gap:.2f} dB of the best fixed-σ model at every "
                            f"training σ (threshold {RANGE_WITHIN_DB:g} dB), while the most robust fixed-σ model "
                            f"loses up to {-most_robust_fixed:.2f} dB; the gap the range model leaves is what a "
                            "noise-level input can close",
                            "a blind model must infer σ from the input, and a small model does so poorly."))
    res.values = {"psnr": table, "input_psnr": input_psnr, "best_fixed": best_fixed, "range_gap": range_gap,
                  "worst_fixed": worst_fixed}
    return res
