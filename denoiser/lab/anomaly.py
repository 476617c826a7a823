"""Experiment 6: anomaly detection by reconstruction error, with planted defects and an image-level AUROC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from denoiser.lab.common import (
    AE_BOTTLENECK,
    AE_OVERCOMPLETE,
    ExperimentResult,
    LabContext,
    ModelSpec,
    Scale,
    Table,
    bottleneck_spec,
    check,
    stable_seed,
)
from denoiser.lab.plots import new_figure, save, to_gray
from denoiser.progress import ProgressGen

KEY = "anomaly"
TITLE = "Anomaly detection"
EXPECTATION = (
    "An autoencoder trained on one kind of image (natural gray photographs) reconstructs what it has learned and "
    "fails on what it has not, so the per-pixel reconstruction error is large where a defect was planted and the "
    "image's anomaly score (the largest locally averaged error) separates defective from normal images (AUROC well "
    "above 0.5). This needs an AE that cannot copy: the narrower the bottleneck, the less the AE reproduces what it "
    "has not learned, while the overcomplete AE that learned the identity reconstructs defects as well as "
    "everything else, so its AUROC should be the lowest. Defects unlike natural image content "
    "(sharp scratches, foreign textures) should be easier to detect than smooth blotches, which a smooth "
    "reconstruction reproduces."
)
DEFECTS = ("scratch", "blotch", "foreign")
AUROC_ACCEPTABLE = 0.7  # 0.7–0.8 'acceptable', 0.8–0.9 'excellent' discrimination (Hosmer & Lemeshow)
FOREIGN_GOOD = 0.9
SCORE_WINDOW = 5


def auroc(labels: Sequence[int] | np.ndarray, scores: Sequence[float] | np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counted half.

    Computed from the ranks (Mann–Whitney U). Raises ValueError without both classes.
    """
    y = np.asarray(labels).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError("labels and scores differ in length")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs positive and negative examples")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1  # average rank of a tie group
        i = j + 1
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def plant_defect(image: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A copy of an (H, W) image in [0, 1] with one defect, and the defect's mask (H, W) in [0, 1].

    - scratch: a thin straight line (about 1.5 px wide) across a good part of the image, white where the image
      under it is dark and black where it is bright;
    - blotch: a smooth elliptical stain that darkens or brightens by 0.35–0.5 at its centre;
    - foreign: a square of a texture no photograph has (random 2-px black/white blocks), 22–30 % of the edge.
    """
    img = np.asarray(image, dtype=np.float32)
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "scratch":
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(0.5, 0.8) * min(h, w)
        cy, cx = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w
        dy, dx = np.sin(angle), np.cos(angle)
        along = (yy - cy) * dy + (xx - cx) * dx
        across = np.abs(-(yy - cy) * dx + (xx - cx) * dy)
        mask = np.clip(1.5 - across, 0, 1) * (np.abs(along) <= length / 2)
        value = 1.0 if float((img * mask).sum() / max(mask.sum(), 1e-6)) < 0.5 else 0.0  # contrasts with its path
    elif kind == "blotch":
        ry, rx = rng.uniform(0.08, 0.16, size=2) * np.array([h, w])
        cy, cx = rng.uniform(0.25, 0.75) * h, rng.uniform(0.25, 0.75) * w
        mask = np.exp(-(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2))
        mask = np.where(mask > 0.02, mask, 0.0)
        strength = rng.uniform(0.35, 0.5)
        value = np.clip(img + (strength if img.mean() < 0.5 else -strength), 0, 1)
    elif kind == "foreign":
        side = max(4, int(rng.uniform(0.22, 0.3) * min(h, w)))
        y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        blocks = rng.random(((side + 1) // 2, (side + 1) // 2)) < 0.5
        texture = np.kron(blocks, np.ones((2, 2)))[:side, :side].astype(np.float32)
        mask = np.zeros((h, w), np.float32)
        mask[y0 : y0 + side, x0 : x0 + side] = 1.0
        value = np.zeros((h, w), np.float32)
        value[y0 : y0 + side, x0 : x0 + side] = texture
    else:
        raise ValueError(f"unknown defect '{kind}' (known: {', '.join(DEFECTS)})")
    mask = mask.astype(np.float32)
    return (img * (1 - mask) + value * mask).astype(np.float32), mask


def error_map(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """Per-pixel squared reconstruction error averaged over channels: (N, H, W)."""
    return ((x - recon) ** 2).mean(dim=1)


def anomaly_scores(err: torch.Tensor, window: int = SCORE_WINDOW) -> torch.Tensor:
    """Image score: the largest error averaged over a window × window neighbourhood (one per image)."""
    local = F.avg_pool2d(err[:, None], window, stride=1, padding=window // 2, count_include_pad=False)
    return local.flatten(1).max(dim=1).values


DETECTOR = bottleneck_spec(1)  # the narrowest bottleneck of experiment 7


def plan(scale: Scale) -> list[ModelSpec]:
    """Bottleneck AEs of decreasing capacity, and the identity-like overcomplete AE (the contrast)."""
    return [DETECTOR, AE_BOTTLENECK, AE_OVERCOMPLETE]


def defect_set(ctx: LabContext) -> tuple[torch.Tensor, torch.Tensor, list[str], np.ndarray]:
    """Normal test crops followed by the same crops with one planted defect each (kinds in turn)."""
    clean = ctx.test_images
    rng = np.random.default_rng(stable_seed(ctx.cfg.seed, "defects"))
    bad, masks, kinds = [], [], []
    for i in range(len(clean)):
        kind = DEFECTS[i % len(DEFECTS)]
        img, mask = plant_defect(clean[i].mean(dim=0).numpy(), kind, rng)
        bad.append(np.repeat(img[None], clean.shape[1], axis=0))
        masks.append(mask)
        kinds.append(kind)
    images = torch.cat([clean, torch.from_numpy(np.stack(bad))])
    labels = torch.cat([torch.zeros(len(clean)), torch.ones(len(clean))])
    return images, labels, kinds, np.stack(masks)


def run(ctx: LabContext) -> ProgressGen[ExperimentResult]:
    """Score normal and defective crops with each AE, report AUROC overall and per defect kind."""
    res = ExperimentResult(KEY, TITLE, EXPECTATION)
    nets = yield from ctx.models(plan(ctx.scale), res)
    images, labels, kinds, masks = defect_set(ctx)
    n = len(kinds)
    y = labels.numpy()
    rows, aucs, maps = [], {}, {}
    for spec in plan(ctx.scale):
        recon = ctx.run(nets[spec.name], images)
        err = error_map(images, recon)
        maps[spec.name] = (recon, err)
        scores = anomaly_scores(err).numpy()
        per: dict[str, float | None] = {}
        for kind in DEFECTS:
            keep = np.concatenate([np.ones(n, bool), np.array([k == kind for k in kinds])])
            per[kind] = auroc(y[keep], scores[keep]) if kind in kinds else None
        aucs[spec.name] = {"all": auroc(y, scores), **per}
        rows.append([spec.name, nets[spec.name].overcomplete_ratio, aucs[spec.name]["all"], *[per[k] for k in DEFECTS]])
    yield ctx.advance(ctx.scale.steps / 4, f"{KEY}: scored")
    res.tables.append(Table("auroc", f"Image-level AUROC: {n} normal test crops against the same crops with one "
                                     f"planted defect each ({', '.join(DEFECTS)} in turn); score = largest "
                                     f"{SCORE_WINDOW}×{SCORE_WINDOW}-averaged squared reconstruction error.",
                            ["model", "code values / pixel", "AUROC all", *[f"AUROC {k}" for k in DEFECTS]], rows))

    recon, err = maps[DETECTOR.name]
    shown = [n + i for i in range(min(len(DEFECTS), n))]
    fig = new_figure(10.0, 2.3 * len(shown))
    vmax = float(err[shown].max()) or 1.0
    titles = ["with defect", "defect mask", f"{DETECTOR.name} recon.", f"error ({DETECTOR.name})",
              f"error ({AE_OVERCOMPLETE.name})"]
    for r, idx in enumerate(shown):
        panels = [to_gray(images[idx]), masks[idx - n], to_gray(recon[idx]), err[idx].numpy(),
                  maps[AE_OVERCOMPLETE.name][1][idx].numpy()]
        for c, panel in enumerate(panels):
            ax = fig.add_subplot(len(shown), len(panels), r * len(panels) + c + 1)
            is_err = c >= 3
            ax.imshow(panel, cmap="inferno" if is_err else "gray", vmin=0, vmax=vmax if is_err else 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(titles[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(kinds[idx - n], fontsize=8)
    res.figures.append((save(fig, ctx.figure_path("anomaly_maps.png")),
                        "Planted defects, the detector's reconstruction and two AEs' squared-error maps (same scale)."))

    det, mid, ident = (aucs[s.name] for s in plan(ctx.scale))
    res.checks.append(check(det["all"] >= AUROC_ACCEPTABLE,
                            f"the narrowest bottleneck AE ({DETECTOR.name}) separates defective from normal crops "
                            f"with AUROC {det['all']:.3f} (threshold ≥ {AUROC_ACCEPTABLE:g}, 'acceptable "
                            "discrimination')",
                            "natural test images contain fine texture and sharp edges that the small AE reconstructs "
                            "as badly as the defects, so normal crops score high too."))
    res.checks.append(check(det["all"] >= mid["all"] > ident["all"],
                            f"less capacity to copy, better detection: AUROC {det['all']:.3f} "
                            f"({DETECTOR.name}) ≥ {mid['all']:.3f} ({AE_BOTTLENECK.name}) > {ident['all']:.3f} "
                            f"({AE_OVERCOMPLETE.name}, the identity-like AE)",
                            "with little training the AEs' errors are dominated by what none of them has learned yet, "
                            "not by their capacity."))
    known = {k: v for k, v in det.items() if k in DEFECTS and v is not None}
    if "blotch" in known and "foreign" in known:
        res.checks.append(check(known["foreign"] >= FOREIGN_GOOD and known["blotch"] == min(known.values()),
                                "what the AE cannot represent stands out, what it can does not: AUROC "
                                + ", ".join(f"{k} {v:.3f}" for k, v in known.items())
                                + f" (foreign texture ≥ {FOREIGN_GOOD:g}; smooth blotches the hardest)",
                                "the planted blotches on these crops are strong enough to stand out, or the "
                                "foreign texture resembles fine natural texture at this size."))
    res.values = {"auroc": aucs, "normal": n, "defective": n}
    return res
