"""Experiment 4: the modified denoising objective, a sweep of λ in (1/λ)·D_enc(G(x̃), G(x))."""

from __future__ import annotations

import math

import numpy as np
import torch

from denoiser.lab.common import (
    DAE_OVERCOMPLETE,
    ExperimentResult,
    LabContext,
    ModelSpec,
    Scale,
    Table,
    check,
    psnr_batch,
    ratio,
)
from denoiser.lab.plots import new_figure, save
from denoiser.losses import code_distortion
from denoiser.progress import ProgressGen

KEY = "robustness"
TITLE = "Modified denoising objective (encoder robustness)"
EXPECTATION = (
    "Adding (1/λ)·E[D_enc(G(x̃), G(x))] to the denoising loss pulls the code of the corrupted input towards the "
    "code of the clean one, so the code itself becomes robust to the corruption: the code distortion measured "
    "on test data should fall as the term's weight 1/λ grows. A moderate weight costs little or no denoising "
    "PSNR (the decoder gets a cleaner code); once the term dominates, the encoder discards information along "
    "with the noise and PSNR falls — a trade-off between code invariance and reconstruction."
)
SIGMA = 25.0
MODERATE_COST_DB = 0.5
ROBUST_FACTOR = 0.5


def lambdas(scale: Scale) -> list[float]:
    """λ values, strongest term last; inf = no term."""
    return [math.inf, 100.0, 10.0, 1.0, 0.1] if scale.wide else [math.inf, 10.0, 0.1]


def spec_for(lam: float) -> ModelSpec:
    """The σ=25 DAE with the robustness term at λ (λ=inf is experiment 1's DAE)."""
    if math.isinf(lam):
        return DAE_OVERCOMPLETE
    return ModelSpec(f"dae-overcomplete-g25-lambda{lam:g}", DAE_OVERCOMPLETE.arch, "gaussian",
                     DAE_OVERCOMPLETE.noise_params, robustness_lambda=lam,
                     description=f"overcomplete conv DAE (σ=25) with the encoder-robustness term, λ={lam:g}")


def plan(scale: Scale) -> list[ModelSpec]:
    """One DAE per λ."""
    return [spec_for(lam) for lam in lambdas(scale)]


def centred_distortion(code_noisy: torch.Tensor, code_clean: torch.Tensor) -> float:
    """Code distance normalised by each code channel's variance on clean data (immune to code offsets)."""
    var = code_clean.float().var(dim=(0, 2, 3), keepdim=True).clamp(min=1e-12)
    return float((((code_noisy.float() - code_clean.float()) ** 2) / var).mean())


def run(ctx: LabContext) -> ProgressGen[ExperimentResult]:
    """Train the sweep, then measure D_enc on test crops and the denoising PSNR."""
    res = ExperimentResult(KEY, TITLE, EXPECTATION)
    lams = lambdas(ctx.scale)
    by_name = yield from ctx.models([spec_for(lam) for lam in lams], res)
    nets = {lam: by_name[spec_for(lam).name] for lam in lams}
    clean = ctx.test_images
    noisy = ctx.corrupt(clean, "gaussian", {"sigma": SIGMA})
    rows, d_enc, d_centred, psnr = [], {}, {}, {}
    for lam in lams:
        net = nets[lam]
        code_n, code_c = ctx.codes(net, noisy), ctx.codes(net, clean)
        d_enc[lam] = float(code_distortion(code_n, code_c))
        d_centred[lam] = centred_distortion(code_n, code_c)
        psnr[lam] = psnr_batch(ctx.run(net, noisy), clean)
        rows.append(["none" if math.isinf(lam) else lam, 0.0 if math.isinf(lam) else 1 / lam, d_enc[lam],
                     d_centred[lam], psnr[lam]])
    yield ctx.advance(ctx.scale.steps / 4, f"{KEY}: scored")
    res.tables.append(Table("sweep", f"Test crops with gaussian σ={SIGMA:g}. D_enc is the engine's code distortion "
                                     "(normalised by the clean code's energy); the centred one divides by each code "
                                     "channel's variance instead.",
                            ["λ", "weight 1/λ", "D_enc", "D_enc centred", "PSNR dB"], rows))
    weights = [0.0 if math.isinf(lam) else 1 / lam for lam in lams]
    fig = new_figure(9.5, 3.6)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    x = [w if w > 0 else min(w for w in weights if w > 0) / 10 for w in weights]
    ax1.plot(x, [d_enc[lam] for lam in lams], marker="o", label="D_enc")
    ax1.plot(x, [d_centred[lam] for lam in lams], marker="s", label="D_enc centred")
    ax1.set_yscale("log")
    ax2.plot(x, [psnr[lam] for lam in lams], marker="o", color="tab:green")
    for ax, ylabel in ((ax1, "code distortion on test data"), (ax2, f"denoising PSNR (dB), σ={SIGMA:g}")):
        ax.set_xscale("log")
        ax.set_xlabel("term weight 1/λ (leftmost point: no term)")
        ax.set_ylabel(ylabel)
    ax1.legend(fontsize=8)
    res.figures.append((save(fig, ctx.figure_path("robustness_lambda.png")),
                        "Code distortion and denoising PSNR against the robustness term's weight 1/λ."))

    none, strongest = lams[0], lams[-1]
    ordered = [d_centred[lam] for lam in lams]
    falls = falls_steadily(ordered)
    res.checks.append(check(falls and d_centred[strongest] <= ROBUST_FACTOR * d_centred[none],
                            f"the centred code distortion falls as 1/λ grows, from {d_centred[none]:.4f} without the "
                            f"term to {d_centred[strongest]:.4f} at λ={strongest:g} "
                            f"({ratio(d_centred[strongest], d_centred[none]):.2f}×; threshold ≤ {ROBUST_FACTOR:g}× and no "
                            "step rising by more than 10 %)",
                            explain_centred_distortion(lams, d_enc, d_centred)))
    with_term = [lam for lam in lams if not math.isinf(lam)]
    best_lam = max(with_term, key=lambda lam: psnr[lam])
    cost = psnr[none] - psnr[best_lam]
    res.checks.append(check(cost <= MODERATE_COST_DB,
                            f"a moderate term costs little: the best λ ({best_lam:g}) gives {psnr[best_lam]:.2f} dB "
                            f"against {psnr[none]:.2f} dB without the term ({-cost:+.2f} dB; threshold ≥ "
                            f"−{MODERATE_COST_DB:g} dB) while its D_enc is {ratio(d_centred[best_lam], d_centred[none]):.2f}× "
                            "the no-term value",
                            "every λ in the sweep is strong enough to take information from the decoder."))
    drop = psnr[none] - psnr[strongest]
    res.checks.append(check(drop > 0 and psnr[strongest] < psnr[best_lam],
                            f"the trade-off: at the strongest weight (λ={strongest:g}) PSNR is {drop:.2f} dB below "
                            "the no-term model",
                            "the strongest λ of the sweep is not yet strong enough to dominate the loss."))
    res.values = {"lambda": [None if math.isinf(lam) else lam for lam in lams],
                  "d_enc": [d_enc[lam] for lam in lams], "d_enc_centred": [d_centred[lam] for lam in lams],
                  "psnr": [psnr[lam] for lam in lams], "spearman_weight_vs_d": _spearman(weights, ordered)}
    return res


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman rank correlation (no tie correction)."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 1 else 0.0


def falls_steadily(values: list[float]) -> bool:
    """True when no step rises by more than 10 % over the one before."""
    return all(b <= a * 1.1 for a, b in zip(values, values[1:], strict=False))


def explain_centred_distortion(lams: list[float], d_enc: dict[float, float], d_centred: dict[float, float]) -> str:
    """Why the centred distortion did not fall at every step, read from the two distortions measured."""
    raw = [d_enc[lam] for lam in lams]
    centred = [d_centred[lam] for lam in lams]
    raw_falls = falls_steadily(raw)
    turn = next((i for i in range(1, len(lams)) if centred[i] > centred[i - 1] * 1.1), None)
    if raw_falls and turn is not None:
        return (f"past λ={lams[turn - 1]:g} the encoder meets the term by shrinking its code's variation along with "
                f"the noise: D_enc, normalised by the clean code's energy, keeps falling (to {raw[-1]:.2g}), but the "
                "distortion measured against the variation left in each code channel rises again. The code collapses "
                "rather than becoming robust; that is also where PSNR drops.")
    return "the term did not make the code robust within the sweep's training budget: D_enc itself does not fall."
