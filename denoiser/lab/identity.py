"""Experiment 1, the identity trap: an overcomplete AE trained on clean images copies its input, noise and all."""

from __future__ import annotations

from denoiser.lab.common import (
    AE_BOTTLENECK,
    AE_OVERCOMPLETE,
    DAE_OVERCOMPLETE,
    ExperimentResult,
    LabContext,
    ModelSpec,
    Scale,
    Table,
    check,
    psnr_batch,
)
from denoiser.lab.plots import image_grid, to_gray
from denoiser.progress import ProgressGen

KEY = "identity"
TITLE = "Identity trap"
EXPECTATION = (
    "An autoencoder whose code is larger than its input (here 8 linear code values per pixel, no bottleneck) and that is trained "
    "only to reconstruct clean images can learn (an approximation of) the identity: it reconstructs its "
    "input almost perfectly, noise included, so it removes no noise (PSNR gain on noisy inputs ≈ 0 dB, noise "
    "transfer ‖f(x̃) − f(x)‖²/‖x̃ − x‖² near 1). The same network trained as a denoising autoencoder (input "
    "x̃ = x + noise, target x) cannot copy and gains several dB. An undercomplete bottleneck AE cannot copy "
    "either: it reconstructs clean images less well and passes less noise, but it was not taught what noise is."
)
SIGMA = 25.0
RECON_GOOD_DB = 30.0  # 'reconstructs well'
IDENTITY_GAIN_DB = 1.0  # 'gain ≈ 0'
SEVERAL_DB = 3.0  # 'several dB'


def plan(scale: Scale) -> list[ModelSpec]:
    """The models this experiment trains."""
    return [AE_OVERCOMPLETE, DAE_OVERCOMPLETE, AE_BOTTLENECK]


def run(ctx: LabContext) -> ProgressGen[ExperimentResult]:
    """Train (or reuse) the three models, score them on clean and noisy test crops, draw example crops."""
    res = ExperimentResult(KEY, TITLE, EXPECTATION)
    nets = yield from ctx.models(plan(ctx.scale), res)
    clean = ctx.test_images
    noisy = ctx.corrupt(clean, "gaussian", {"sigma": SIGMA})
    noisy_psnr = psnr_batch(noisy, clean)
    rows, values = [], {}
    for spec in plan(ctx.scale):
        net = nets[spec.name]
        recon = psnr_batch(ctx.run(net, clean), clean)
        out = psnr_batch(ctx.run(net, noisy), clean)
        transfer = ctx.noise_transfer(net, clean, noisy)
        ratio = net.overcomplete_ratio
        values[spec.name] = {"recon_psnr": recon, "noisy_out_psnr": out, "gain": out - noisy_psnr,
                             "noise_transfer": transfer, "code_ratio": ratio}
        rows.append([spec.name, spec.training_label(), ratio, recon, out, out - noisy_psnr, transfer])
    values["noisy_psnr"] = noisy_psnr
    yield ctx.advance(ctx.scale.steps / 4, f"{KEY}: scored")
    res.tables.append(Table(
        "models", f"Test crops ({len(clean)} × {ctx.scale.test_size}² px of {ctx.cfg.test_data.name}); noisy input "
        f"gaussian σ={SIGMA:g} is {noisy_psnr:.2f} dB.",
        ["model", "trained on", "code values / pixel", "clean recon. PSNR", "noisy → output PSNR", "gain dB",
         "noise transfer"], rows))

    n = min(3, len(clean))
    grid_rows = []
    for i in range(n):
        row = [to_gray(clean[i]), to_gray(noisy[i])]
        for spec in plan(ctx.scale):
            row.append(to_gray(ctx.run(nets[spec.name], noisy[i : i + 1])[0]))
        row.append(to_gray(ctx.run(nets[AE_OVERCOMPLETE.name], clean[i : i + 1])[0]))
        grid_rows.append(row)
    cols = ["clean", f"noisy σ={SIGMA:g}", "overcomplete AE", "same net as DAE", "bottleneck AE",
            "overcompl. AE (clean in)"]
    fig = image_grid(ctx.figure_path("identity_crops.png"), grid_rows, [ctx.test_names[i] for i in range(n)], cols)
    res.figures.append((fig, "Test crops: clean, noisy, each model's output for the noisy crop, and the "
                             "overcomplete AE's output for the clean crop."))

    ae, dae, bn = (values[s.name] for s in plan(ctx.scale))
    steps = ctx.scale.steps
    res.checks += [
        check(ae["recon_psnr"] >= RECON_GOOD_DB,
              f"the overcomplete AE reconstructs clean test crops at {ae['recon_psnr']:.2f} dB "
              f"(threshold ≥ {RECON_GOOD_DB:g} dB)",
              f"after {steps} training steps the AE has not yet converged to a near-copy."),
        check(ae["gain"] <= IDENTITY_GAIN_DB and ae["noise_transfer"] >= 0.5,
              f"its PSNR gain on noisy inputs is {ae['gain']:.2f} dB (≈ 0 means ≤ {IDENTITY_GAIN_DB:g} dB) and it "
              f"passes {ae['noise_transfer']:.2f} of the noise energy (identity: 1, threshold ≥ 0.5)",
              "an under-trained AE is still a smoothing filter: it blurs, which removes some noise, instead of copying."),
        check(dae["gain"] >= SEVERAL_DB and dae["gain"] - ae["gain"] >= SEVERAL_DB,
              f"the same network trained as a DAE gains {dae['gain']:.2f} dB, {dae['gain'] - ae['gain']:.2f} dB "
              f"more than the plain AE (threshold ≥ {SEVERAL_DB:g} dB)",
              f"{steps} training steps are too few for the DAE to learn much denoising."),
        check(bn["recon_psnr"] < ae["recon_psnr"] and bn["noise_transfer"] < ae["noise_transfer"],
              f"the bottleneck AE reconstructs clean crops at {bn['recon_psnr']:.2f} dB (overcomplete "
              f"{ae['recon_psnr']:.2f} dB) and passes {bn['noise_transfer']:.2f} of the noise (overcomplete "
              f"{ae['noise_transfer']:.2f}): it cannot copy",
              "with so little training both AEs are still smoothing filters, so the bottleneck makes no visible "
              "difference yet."),
    ]
    res.values = values
    return res
