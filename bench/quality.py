"""Quality benchmark, following ../shared/BENCHMARK.md exactly.

Synthetic Gaussian noise (seeded per image index, unclipped; plus the clipped-and-rounded variant) on
Set12/BSD68 (gray) and CBSD68/Kodak24 (colour) at σ 15/25/50, for our models with the true σ given and
blind (σ estimated), and with the ×8 self-ensemble (`denoiser --ensemble 8`); real camera noise on test/real (noisy vs clean, with CBM3D at a tuned noise level
as the anchor); an RNI6 side-by-side sheet (bench/rni6_sheet.png).
Writes Markdown (included by the README) and JSON.

    python bench/quality.py --out docs/bench            # full run
    python bench/quality.py --out /tmp/q --limit 3      # smoke run
    python bench/quality.py --variants ensemble --sets Set12,BSD68 --no-real --merge   # update some cells
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "bench"))

from raw_table import raw_markdown, raw_table  # noqa: E402

from denoiser.atomic import atomic_write  # noqa: E402
from denoiser.checkpoint import LoadedModel, load_model  # noqa: E402
from denoiser.estimate import estimate_sigma  # noqa: E402
from denoiser.evaluate import evaluate_set, to_8bit  # noqa: E402
from denoiser.fidelity import measure_fidelity, overexpose  # noqa: E402
from denoiser.inference import DenoiseResult  # noqa: E402
from denoiser.inference import denoise as engine_denoise  # noqa: E402

PRECISION = "fp32"  # --precision: fp32 by default, so the tables do not depend on the CPU having native bf16


def denoise(image: np.ndarray, model: object, **kwargs: object) -> DenoiseResult:
    """The engine's denoise at the bench's precision."""
    return engine_denoise(image, model, precision=PRECISION, **kwargs)
from denoiser.metrics import psnr, ssim  # noqa: E402
from denoiser.progress import Progress, drain  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SETS = {"Set12": True, "BSD68": True, "CBSD68": False, "Kodak24": False}  # name -> gray
SIGMAS = (15, 25, 50)
ENSEMBLE = 8  # passes of the 'ensemble' variant
VARIANT_LABELS = {
    "given": "ours, σ given",
    "blind": "ours, blind (σ estimated)",
    "clipped": "ours, clipped 8-bit input, σ given",
    "blind_clipped": "ours, clipped 8-bit input, blind (σ estimated)",
    "ensemble": f"ours ×{ENSEMBLE} self-ensemble, σ given ({ENSEMBLE}× the time)",
}

# Reference rows from ../shared/BENCHMARK.md (published, and measured on this kind of machine).
ANCHORS = {
    "BM3D / CBM3D (published)": {"Set12": (32.37, 29.97, 26.72), "BSD68": (31.08, 28.57, 25.60),
                                 "CBSD68": (33.52, 30.71, 27.38), "Kodak24": (34.28, 31.68, 28.46)},
    "DnCNN-B / CDnCNN-B (published)": {"BSD68": (31.61, 29.16, 26.23), "CBSD68": (33.89, 31.23, 27.92),
                                       "Kodak24": (34.48, 32.03, 28.85)},
    "FFDNet (published)": {"Set12": (32.75, 30.43, 27.32), "BSD68": (31.63, 29.19, 26.29),
                           "CBSD68": (33.87, 31.21, 27.96), "Kodak24": (34.63, 32.13, 28.98)},
    "DRUNet (published, stretch)": {"Set12": (33.25, 30.94, 27.90), "BSD68": (31.91, 29.48, 26.59),
                                    "CBSD68": (34.30, 31.69, 28.51), "Kodak24": (35.31, 32.89, 29.86)},
}


def synthetic(model_for: dict[bool, object], limit: int | None, variants: list[str], sets: list[str]) -> dict:
    """{variant: {set: {σ: {psnr, ssim, noisy_psnr}}}} for `variants` of VARIANT_LABELS on `sets`."""
    results: dict = {}
    for variant in variants:
        results[variant] = {}
        passes = ENSEMBLE if variant == "ensemble" else 1
        for name in sets:
            gray = SETS[name]
            loaded = model_for[gray]

            def run(noisy: np.ndarray, sigma: float | None, loaded=loaded, passes=passes) -> np.ndarray:
                return denoise(noisy, loaded, sigma=sigma, ensemble=passes).image

            t = time.time()
            rows = drain(evaluate_set(DATA / "test" / name, run, SIGMAS, gray=gray, blind=variant in ("blind", "blind_clipped"),
                                      clip=variant in ("clipped", "blind_clipped"), limit=limit), stop_on_unreadable)
            results[variant][name] = {int(r.sigma): {"psnr": r.psnr, "ssim": r.ssim, "noisy_psnr": r.noisy_psnr}
                                      for r in rows}
            print(f"{variant:8s} {name:8s} " + " ".join(f"{r.psnr:.2f}" for r in rows) + f"  ({time.time() - t:.0f} s)",
                  file=sys.stderr)
    return results


def stop_on_unreadable(ev: Progress) -> None:
    """A benchmark set with an unreadable image would average fewer images than the published figures: stop."""
    if "skipped" in ev.data:
        sys.exit(f"{ev.message}; check ../shared/data against its MANIFEST.sha256")


Restorer = Callable[[np.ndarray], tuple[np.ndarray, float]]  # noisy (H, W, 3) in [0, 1] -> (restored, σ used)


def blind_model(loaded: LoadedModel, ensemble: int = 1) -> Restorer:
    """A bundled model run blind, as the app runs it on a photo (`ensemble` passes)."""

    def run(noisy: np.ndarray) -> tuple[np.ndarray, float]:
        res = denoise(noisy, loaded, ensemble=ensemble)
        return res.image, res.sigma

    return run


BM3D_FACTORS = (2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
NLM_FACTORS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
POLYU = DATA / "train" / "real" / "PolyU40"
POLYU_CROP, POLYU_CROPS = 512, 2  # crops per held-out scene, along its diagonal

RealCase = list[tuple[str, np.ndarray, np.ndarray]]  # (name, clean, noisy): 8-bit RGB arrays as float64


def polyu_heldout(limit: int | None) -> RealCase:
    """Crops of the held-out PolyU40 scenes (whole scenes are never trained on); empty without the folder."""
    from denoiser.data import diagonal_crops, find_pairs, split_pairs

    if not POLYU.is_dir():
        return []
    _train, val = split_pairs(find_pairs([POLYU]))
    crops: RealCase = []
    for noisy_path, clean_path in val:
        noisy = np.asarray(PILImage.open(noisy_path).convert("RGB"), dtype=np.float64)
        clean = np.asarray(PILImage.open(clean_path).convert("RGB"), dtype=np.float64)
        h, w = min(noisy.shape[0], clean.shape[0]), min(noisy.shape[1], clean.shape[1])
        for y, x in diagonal_crops(h, w, POLYU_CROP, POLYU_CROPS):
            crops.append((f"{noisy_path.stem}@{y},{x}", clean[y : y + POLYU_CROP, x : x + POLYU_CROP],
                          noisy[y : y + POLYU_CROP, x : x + POLYU_CROP]))
    return crops[:limit]


def real_cases(limit: int | None) -> dict[str, RealCase]:
    """The real-noise sets: the held-out PolyU40 scenes (crops) and test/real."""
    cases: dict[str, RealCase] = {}
    if POLYU.is_dir():
        cases["PolyU40_heldout"] = polyu_heldout(limit)
    for folder in sorted((DATA / "test" / "real").glob("*")):
        if not (folder / "noisy").is_dir():
            continue
        cases[folder.name] = [(f.name, np.asarray(PILImage.open(folder / "clean" / f.name).convert("RGB"), dtype=np.float64),
                               np.asarray(PILImage.open(f).convert("RGB"), dtype=np.float64))
                              for f in sorted((folder / "noisy").glob("*.png"))[:limit]]
    return cases


def tuned_anchor(label: str, restore_at: Callable[[np.ndarray, float], np.ndarray], factors: tuple[float, ...],
                 case: RealCase) -> Restorer:
    """A classical method given a well-chosen noise level: our blind estimate times the factor that scores
    best on the set's first image. Real noise is correlated, so the white-noise estimate alone is too low
    for these methods; tuning the factor per set is generous to the anchor."""

    def run_with(factor: float) -> Restorer:
        def run(noisy: np.ndarray) -> tuple[np.ndarray, float]:
            level = estimate_sigma(noisy) * factor
            return np.clip(restore_at(noisy, level), 0, 1), level

        return run

    _name, clean, noisy = case[0]
    scores = {f: psnr(clean, to_8bit(run_with(f)((noisy / 255).astype(np.float32))[0] * 255)) for f in factors}
    best = max(scores, key=scores.get)
    print(f"{label} factor: {best} ({', '.join(f'{f:g}: {v:.2f}' for f, v in scores.items())})", file=sys.stderr)
    return run_with(best)


def cbm3d_at(noisy: np.ndarray, level: float) -> np.ndarray:
    """CBM3D (`bm3d` package) at noise level `level` (0–255)."""
    import bm3d

    return bm3d.bm3d_rgb(noisy, level / 255)


def nlm_at(noisy: np.ndarray, level: float) -> np.ndarray:
    """OpenCV's colour non-local means with filter strength `level` (0–255) for luma and chroma."""
    import cv2

    u8 = to_8bit(noisy * 255).astype(np.uint8)
    return cv2.fastNlMeansDenoisingColored(u8, None, float(level), float(level), 7, 21).astype(np.float32) / 255


def real_sets(models: dict[str, Restorer], limit: int | None, bm3d: bool = True) -> dict:
    """PSNR/SSIM on the real-noise sets: the noisy input, each restorer (blind), OpenCV NLM and (with `bm3d`)
    CBM3D at a tuned level."""
    out: dict = {}
    for set_name, case in real_cases(limit).items():
        entry: dict = {"noisy": {"psnr": [], "ssim": []}}
        anchors = {"OpenCV NLM, h tuned": tuned_anchor(f"NLM on {set_name}", nlm_at, NLM_FACTORS, case)}
        if bm3d:
            anchors["CBM3D, σ tuned"] = tuned_anchor(f"CBM3D on {set_name}", cbm3d_at, BM3D_FACTORS, case)
        for _name, clean, noisy in case:
            entry["noisy"]["psnr"].append(psnr(clean, noisy))
            entry["noisy"]["ssim"].append(ssim(clean, noisy))
            for mname, restore in {**models, **anchors}.items():
                image, sigma = restore((noisy / 255).astype(np.float32))
                den = to_8bit(image * 255)
                e = entry.setdefault(mname, {"psnr": [], "ssim": [], "sigma": []})
                e["psnr"].append(psnr(clean, den))
                e["ssim"].append(ssim(clean, den))
                e["sigma"].append(sigma)
        out[set_name] = {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in entry.items()}
        out[set_name]["images"] = len(case)
        print(f"real {set_name}: " + ", ".join(f"{k} {v['psnr']:.2f}" for k, v in out[set_name].items()
                                               if isinstance(v, dict)), file=sys.stderr)
    return out


FIDELITY_SETS = {"Kodak24": 1.0, "Kodak24 ×1.5, clipped": 1.5}  # clean photos in, and the same over-exposed


def fidelity(models: dict[str, LoadedModel], limit: int | None) -> dict:
    """{model: {set: Fidelity as a dict}}: clean photos through each model with σ estimated, as the app
    runs it, and how far the output moved from its input (a denoiser must leave a clean photo alone)."""
    files = sorted((DATA / "test" / "Kodak24").glob("*.png"))[:limit]
    photos = [np.asarray(PILImage.open(f).convert("RGB"), dtype=np.float64) for f in files]
    out: dict = {}
    for name, loaded in models.items():
        out[name] = {}
        for set_name, gain in FIDELITY_SETS.items():
            images = [overexpose(x, gain) for x in photos]
            if loaded.net.in_channels == 1:
                images = [np.round(to_luma(x)) for x in images]
            f = measure_fidelity(images, lambda a, m=loaded: denoise(a, m).image)
            out[name][set_name] = asdict(f)
            print(f"fidelity {name} {set_name}: shift {', '.join(f'{v:+.2f}' for v in f.mean_shift)}, "
                  f"{f.psnr_vs_input:.2f} dB, saturated kept {f.saturated_kept:.1%}", file=sys.stderr)
    return out


def fidelity_markdown(fid: dict) -> list[str]:
    """The fidelity table: one row per model and set."""
    lines = ["", "Fidelity on clean photos (σ estimated; the output against its own input; want |shift| ≤ 0.25 "
             "levels, ≥ 40 dB, saturated values kept):", "",
             "| model | photos | mean shift R / G / B (levels) | PSNR vs input | saturated kept (all / 5×5 regions) "
             "| largest change |", "|---|---|---|---|---|---|"]
    for name, sets in fid.items():
        for set_name, f in sets.items():
            shift = " / ".join(f"{v:+.2f}" for v in f["mean_shift"])
            lines.append(f"| {name} | {set_name} ({f['images']}) | {shift} | {f['psnr_vs_input']:.2f} dB | "
                         f"{f['saturated_kept']:.1%} / {f['saturated_interior_kept']:.1%} | {f['max_abs_change']:.0f} |")
    return lines


FINISHES = {  # the finishing controls measured (denoiser.blend): label -> Blend arguments
    "as denoised": {},
    "detail 0.5": {"detail": 0.5},
    "detail 1": {"detail": 1.0},
    "grain 0.3": {"grain": 0.3},
    "luminance 0.7": {"luma": 0.7},
}
FINISH_SIGMA = 25  # the Gaussian σ of the Kodak24 case (clipped and rounded like a saved photo)


def finish_cases(limit: int | None) -> dict[str, RealCase]:
    """The finishing table's sets: the held-out PolyU40 crops (real noise) and Kodak24 with seeded Gaussian noise."""
    cases = {k: v for k, v in real_cases(limit).items() if k == "PolyU40_heldout"}
    kodak = []
    for i, f in enumerate(sorted((DATA / "test" / "Kodak24").glob("*.png"))[:limit]):
        clean = np.asarray(PILImage.open(f).convert("RGB"), dtype=np.float64)
        noisy = np.clip(np.round(clean + np.random.default_rng(i).normal(0, FINISH_SIGMA, clean.shape)), 0, 255)
        kodak.append((f.name, clean, noisy))
    cases[f"Kodak24 σ{FINISH_SIGMA}"] = kodak
    return cases


def finishing(models: dict[str, LoadedModel], limit: int | None, sheet: Path | None = None) -> dict:
    """{set: {finish: {psnr, ssim}}}: each set denoised once, blind, by its model (`photo` on the real crops,
    `gaussian-color` on Kodak24), then finished each way (detail, grain, luminance share); with `sheet`, a
    crop of the first real image as noisy | each finish | clean."""
    from denoiser.blend import Blend, apply_blend

    out: dict = {}
    strips: list[np.ndarray] = []
    for set_name, case in finish_cases(limit).items():
        model = models["photo"] if set_name == "PolyU40_heldout" else models["gaussian-color"]
        scores: dict = {label: {"psnr": [], "ssim": []} for label in FINISHES}
        for i, (_name, clean, noisy) in enumerate(case):
            x = (noisy / 255).astype(np.float32)
            den = denoise(x, model).image
            for label, kw in FINISHES.items():
                y = to_8bit(apply_blend(x, den, Blend(seed=i, **kw)) * 255)
                scores[label]["psnr"].append(psnr(clean, y))
                scores[label]["ssim"].append(ssim(clean, y))
                if sheet is not None and not strips and i == 0 and label == list(FINISHES)[-1]:
                    c = 96
                    h, w = clean.shape[0] // 2, clean.shape[1] // 2
                    crop = (slice(h - c, h + c), slice(w - c, w + c))
                    strips = [noisy[crop]] + [to_8bit(apply_blend(x, den, Blend(seed=i, **k)) * 255)[crop]
                                              for k in FINISHES.values()] + [clean[crop]]
        out[set_name] = {label: {k: float(np.mean(v)) for k, v in d.items()} for label, d in scores.items()}
        out[set_name]["images"] = len(case)
        print(f"finishing {set_name}: " + ", ".join(f"{k} {v['psnr']:.2f}" for k, v in out[set_name].items()
                                                    if isinstance(v, dict)), file=sys.stderr)
    if sheet is not None and strips:
        gap = np.full((strips[0].shape[0], 6, 3), 255.0)
        row = np.concatenate([c for s_ in strips for c in (s_, gap)][:-1], axis=1)
        PILImage.fromarray(row.astype(np.uint8)).resize((row.shape[1] * 2, row.shape[0] * 2),
                                                        PILImage.Resampling.NEAREST).save(sheet, optimize=True)
    return out


def finishing_markdown(fin: dict) -> list[str]:
    """The finishing table: one row per control setting, one column per set."""
    sets = list(fin)
    lines = ["", "Finishing controls (PSNR / SSIM against the clean image; `photo` on the held-out PolyU40 crops, "
             f"`gaussian-color` on Kodak24 σ {FINISH_SIGMA}, both blind; crops in "
             "[docs/bench/finish_sheet.png](docs/bench/finish_sheet.png): noisy, each row below, clean):", "",
             "| finish | " + " | ".join(f"{s} ({fin[s]['images']})" for s in sets) + " |", "|---|" + "---|" * len(sets)]
    for label in FINISHES:
        lines.append(f"| {label} | " + " | ".join(f"{fin[s][label]['psnr']:.2f} / {fin[s][label]['ssim']:.4f}"
                                                 if label in fin[s] else "–" for s in sets) + " |")
    return lines


JPEG_SETS = ("Kodak24", "CBSD68")
JPEG_QUALITIES = (10, 20, 30, 40)
JPEG_NOISE = 15  # σ of the Gaussian noise added before compression in the noisy rows


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """An 8-bit RGB image (float64) saved as JPEG by Pillow (4:2:0, as cameras do) and decoded again."""
    import io

    buf = io.BytesIO()
    PILImage.fromarray(image.astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(PILImage.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float64)


def jpeg_table(models: dict[str, LoadedModel], limit: int | None) -> dict:
    """{set: {"q{Q}" or "q{Q} + noise": {"decoded": psnr, model: psnr}}}: clean (and noisy, σ JPEG_NOISE)
    images compressed at each quality; the plain decode against the clean image, and each model blind."""
    out: dict = {}
    for set_name in JPEG_SETS:
        files = sorted((DATA / "test" / set_name).glob("*.png"))[:limit]
        photos = [np.asarray(PILImage.open(f).convert("RGB"), dtype=np.float64) for f in files]
        rows: dict = {}
        for noise in (0, JPEG_NOISE):
            for q in JPEG_QUALITIES:
                scores: dict = {"decoded": []}
                for i, clean in enumerate(photos):
                    src = clean if not noise else np.clip(np.round(
                        clean + np.random.default_rng(i).normal(0, noise, clean.shape)), 0, 255)
                    decoded = jpeg_round_trip(src, q)
                    scores["decoded"].append(psnr(clean, decoded))
                    for name, model in models.items():
                        y = to_8bit(denoise((decoded / 255).astype(np.float32), model).image * 255)
                        scores.setdefault(name, []).append(psnr(clean, y))
                rows[f"q{q}" + (f" + σ{noise}" if noise else "")] = {k: float(np.mean(v)) for k, v in scores.items()}
        out[set_name] = {"images": len(photos), "rows": rows}
        print(f"jpeg {set_name}: " + "; ".join(f"{r} " + ", ".join(f"{k} {v:.2f}" for k, v in d.items())
                                               for r, d in rows.items()), file=sys.stderr)
    return out


def jpeg_markdown(table: dict) -> list[str]:
    """The JPEG table: one row per set and compression, PSNR of the plain decode and of each model."""
    models = [k for k in next(iter(table.values()))["rows"][f"q{JPEG_QUALITIES[0]}"] if k != "decoded"]
    lines = ["", f"JPEG artifacts (PSNR dB against the clean image; Pillow JPEG 4:2:0 at each quality, without and "
             f"with Gaussian noise σ {JPEG_NOISE} added before compression, on the first images of each set; the "
             "default model runs blind; `photo` was trained with JPEG at q 30–95 on half its noisy samples; no published anchor on "
             "these sets):", "",
             "| set | JPEG | Pillow decode | " + " | ".join(models) + " |", "|---|---|---|" + "---|" * len(models)]
    for set_name, entry in table.items():
        for row, d in entry["rows"].items():
            lines.append(f"| {set_name} ({entry['images']}) | {row} | {d['decoded']:.2f} | "
                         + " | ".join(f"{d[m]:.2f}" for m in models) + " |")
    return lines


LUMA_SIGMAS = (15, 25)  # σ of the noise alike in every channel
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])  # BT.601 in float64 (denoiser.blend's are float32, for the app)


def to_luma(a: np.ndarray) -> np.ndarray:
    """The (H, W, 1) black-and-white version (BT.601 luma) of an (H, W, 3) image, unrounded."""
    return (a @ LUMA_WEIGHTS)[..., None]


def luma_noise(a: np.ndarray, seed: int, sigma: float) -> np.ndarray:
    """`a` (0–255) with seeded Gaussian noise of `sigma` that is the same in every channel (the noise of a B&W
    photo, or of a colour one after strong chroma noise reduction), clipped and rounded to 8 bits."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, a.shape[:2])[..., None]
    return np.clip(np.round(a + noise), 0, 255)


def luma_cases(limit: int | None, polyu_limit: int | None = None) -> dict[str, RealCase]:
    """Noise alike in every channel (a B&W photo's, or a colour one's after strong chroma noise reduction):
    Kodak24 with seeded Gaussian σ the same in R, G and B, in colour and in B&W (its luma, one channel), and the
    held-out PolyU40 crops in B&W (real camera noise through a B&W conversion); the first `limit` Kodak24 photos
    and `polyu_limit` crops. Clipped and rounded to 8 bits."""
    files = sorted((DATA / "test" / "Kodak24").glob("*.png"))[:limit]
    colour = [(f.stem, np.asarray(PILImage.open(f).convert("RGB"), dtype=np.float64)) for f in files]
    bw = [(name, np.round(to_luma(photo))) for name, photo in colour]
    cases: dict[str, RealCase] = {}
    for sigma in LUMA_SIGMAS:
        for label, cleans in (("colour", colour), ("B&W", bw)):
            cases[f"Kodak24 {label}, σ{sigma} alike in every channel"] = [
                (name, clean, luma_noise(clean, i, sigma)) for i, (name, clean) in enumerate(cleans)]
    polyu = polyu_heldout(polyu_limit)
    if polyu:
        cases["PolyU40_heldout in B&W"] = [(n, np.round(to_luma(c)), np.round(to_luma(x))) for n, c, x in polyu]
    return cases


def luma_table(models: dict[str, LoadedModel], gray: LoadedModel, limit: int | None,
               polyu_limit: int | None = None) -> dict:
    """{case: {"images": n, "noisy": psnr, model: psnr}}: each model blind on `luma_cases`; the grey model on the
    B&W cases only (one channel in, as the app gives it a B&W photo)."""
    out: dict = {}
    for label, case in luma_cases(limit, polyu_limit).items():
        bw = case[0][1].shape[2] == 1
        runs = {**models, **({"gaussian-gray (ours)": gray} if bw else {})}
        scores: dict = {"noisy": [psnr(c, x) for _n, c, x in case]}
        for name, model in runs.items():
            scores[name] = [psnr(c, to_8bit(denoise((x / 255).astype(np.float32), model).image * 255))
                            for _n, c, x in case]
        out[label] = {"images": len(case), **{k: float(np.mean(v)) for k, v in scores.items()}}
        print(f"luma {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in out[label].items() if k != "images"),
              file=sys.stderr)
    return out


def luma_markdown(table: dict) -> list[str]:
    """The table of noise alike in every channel: PSNR of the noisy input and of each model."""
    models = list(dict.fromkeys(k for d in table.values() for k in d if k not in ("images", "noisy")))
    lines = ["", "Noise alike in every channel (PSNR dB, blind; a B&W photo's noise, or a colour photo's after strong "
             "chroma noise reduction; Kodak24 with seeded Gaussian noise the same in R, G and B, in colour and as "
             "its Rec. 601 luma, and the held-out PolyU40 crops converted to B&W):", "",
             "| case | images | noisy input | " + " | ".join(models) + " |", "|---|---|---|" + "---|" * len(models)]
    for label, d in table.items():
        lines.append(f"| {label} | {d['images']} | {d['noisy']:.2f} | "
                     + " | ".join(f"{d[m]:.2f}" if m in d else "–" for m in models) + " |")
    return lines


def rni6_sheet(models: dict[str, object], path: Path) -> None:
    """Noisy | each model's blind result for the RNI6 photos (no reference: judged by eye)."""
    rows = []
    for f in sorted((DATA / "test" / "RNI6").glob("*.png")):
        a = np.asarray(PILImage.open(f).convert("L"), dtype=np.float32) / 255
        cols = [a] + [denoise(a[..., None], m).image[..., 0] for m in models.values()]
        gap = np.ones((a.shape[0], 8), np.float32)
        pair = np.concatenate([c for col in cols for c in (col, gap)][:-1], axis=1)
        scale = 300 / pair.shape[0]
        rows.append(PILImage.fromarray(to_8bit(pair * 255).astype(np.uint8)).resize(
            (int(pair.shape[1] * scale), 300), PILImage.Resampling.LANCZOS))
    width = max(t.width for t in rows)
    sheet = PILImage.new("L", (width, sum(t.height + 8 for t in rows)), 255)
    y = 0
    for t in rows:
        sheet.paste(t, (0, y))
        y += t.height + 8
    sheet.save(path, optimize=True)


def merge(old: dict, new: dict) -> dict:
    """`old` results with `new`'s entries in their place: set by set for the synthetic variants, method by
    method within each real set (so a run with --no-bm3d keeps the stored CBM3D anchor); the model names
    and timing of `new`."""
    out = {**old, **{k: v for k, v in new.items() if k not in ("synthetic", "real")}}
    out["synthetic"] = {v: dict(sets) for v, sets in old.get("synthetic", {}).items()}
    for variant, sets in new.get("synthetic", {}).items():
        out["synthetic"].setdefault(variant, {}).update(sets)
    if "fidelity" in new:
        out["fidelity"] = {**old.get("fidelity", {}), **new["fidelity"]}
    out["real"] = {name: dict(methods) for name, methods in old.get("real", {}).items()}
    for name, methods in new.get("real", {}).items():
        out["real"].setdefault(name, {}).update(methods)
    return out


def real_column_order(method: str) -> tuple[bool, bool, str]:
    """Our methods before the anchors; `photo` and its ensemble first among ours, whatever order a merge left."""
    return "(ours)" not in method, not method.startswith("photo "), method


def markdown(res: dict, labels: dict[str, str] = VARIANT_LABELS) -> str:
    """The README's tables from results whose σ keys are strings (as JSON stores them)."""
    lines = ["| method | Set12 σ15/25/50 | BSD68 σ15/25/50 | CBSD68 σ15/25/50 | Kodak24 σ15/25/50 |", "|---|---|---|---|---|"]
    for variant, label in labels.items():
        if variant not in res["synthetic"]:
            continue
        found = res["synthetic"][variant]
        cells = [" / ".join(f"{found[s][str(sig)]['psnr']:.2f}" for sig in SIGMAS) if s in found else "–" for s in SETS]
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    for name, vals in ANCHORS.items():
        cells = [" / ".join(f"{v:.2f}" for v in vals[s]) if s in vals else "–" for s in SETS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "SSIM of our models (given σ):", "",
              "| model | Set12 | BSD68 | CBSD68 | Kodak24 |", "|---|---|---|---|---|"]
    v = res["synthetic"].get("given", {})
    if v:
        lines.append("| ours | " + " | ".join(" / ".join(f"{v[s][str(sig)]['ssim']:.4f}" for sig in SIGMAS)
                                              if s in v else "–" for s in SETS) + " |")
    if res.get("real"):
        methods = {k: None for d in res["real"].values() for k in d if k not in ("images", "noisy")}
        models = sorted(methods, key=real_column_order)
        lines += ["", f"Real camera noise (PSNR / SSIM, blind; PolyU40_heldout: {POLYU_CROPS} crops of {POLYU_CROP}² "
                  "from each held-out PolyU40 scene, never trained on; SIDD sets from `test/real`):", "",
                  "| set | images | noisy input | " + " | ".join(models) + " |", "|---|---|---|" + "---|" * len(models)]
        for name, d in res["real"].items():
            lines.append(f"| {name} | {d['images']} | {d['noisy']['psnr']:.2f} / {d['noisy']['ssim']:.4f} | "
                         + " | ".join(f"{d[m]['psnr']:.2f} / {d[m]['ssim']:.4f}" if m in d else "–" for m in models) + " |")
    if res.get("fidelity"):
        lines += fidelity_markdown(res["fidelity"])
    if res.get("finishing"):
        lines += finishing_markdown(res["finishing"])
    if res.get("jpeg"):
        lines += jpeg_markdown(res["jpeg"])
    if res.get("luma"):
        lines += luma_markdown(res["luma"])
    if res.get("raw"):
        lines += raw_markdown(res["raw"])
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench")
    ap.add_argument("--color-model", default="gaussian-color")
    ap.add_argument("--gray-model", default="gaussian-gray")
    ap.add_argument("--photo-model", default="photo")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    ap.add_argument("--variants", default=",".join(VARIANT_LABELS), help=f"from {', '.join(VARIANT_LABELS)}")
    ap.add_argument("--sets", default=",".join(SETS), help=f"synthetic sets, from {', '.join(SETS)}")
    ap.add_argument("--no-real", action="store_true", help="leave out the real-noise sets and the RNI6 sheet")
    ap.add_argument("--no-fidelity", action="store_true", help="leave out the fidelity table (clean photos in)")
    ap.add_argument("--no-finishing", action="store_true", help="leave out the finishing-controls table and sheet")
    ap.add_argument("--no-jpeg", action="store_true", help="leave out the JPEG-artifacts table")
    ap.add_argument("--no-raw", action="store_true", help="leave out the camera-RAW table (needs rawpy)")
    ap.add_argument("--no-luma", action="store_true",
                    help="leave out the table of noise alike in every channel (B&W photos, chroma-denoised ones)")
    ap.add_argument("--luma-limit", type=int, default=8, help="Kodak24 images of that table (default 8)")
    ap.add_argument("--raw-model", default="raw", help="the raw model of the camera-RAW table")
    ap.add_argument("--raw-limit", type=int, default=8, help="images of the camera-RAW table (default 8)")
    ap.add_argument("--jpeg-limit", type=int, default=8, help="images per set of the JPEG table (default 8)")
    ap.add_argument("--finish-sheet", type=Path, default=None,
                    help="where the finishing crop sheet goes (default: finish_sheet.png in --out)")
    ap.add_argument("--merge", action="store_true",
                    help="update the cells run here in --out's quality.json and keep the others")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"],
                    help="inference precision of our models (default fp32: the same figures on every CPU)")
    ap.add_argument("--sheet", type=Path, default=REPO / "bench" / "rni6_sheet.png", help="where the RNI6 sheet goes")
    ap.add_argument("--no-bm3d", action="store_true", help="leave out the CBM3D anchor on the real sets (about 6 min)")
    args = ap.parse_args()
    variants, sets = [v for v in args.variants.split(",") if v], [s for s in args.sets.split(",") if s]
    unknown = [v for v in variants if v not in VARIANT_LABELS] + [s for s in sets if s not in SETS]
    if unknown:
        ap.error(f"unknown variant or set: {', '.join(unknown)}")
    target = args.out / "quality.json"
    stored = json.loads(target.read_text()) if args.merge and target.exists() else None
    if stored is not None and stored.get("limit") != args.limit:
        ap.error(f"{target} holds results on {stored.get('limit') or 'all'} images per set and this run "
                 f"uses {args.limit or 'all'}: merging would mix them")
    if args.threads:
        torch.set_num_threads(args.threads)
    global PRECISION
    PRECISION = args.precision
    args.out.mkdir(parents=True, exist_ok=True)
    color, gray = load_model(args.color_model), load_model(args.gray_model)
    start = time.time()
    res = {
        "models": {"color": str(color.info.path.name), "gray": str(gray.info.path.name)},
        "limit": args.limit,
        "synthetic": synthetic({False: color, True: gray}, args.limit, variants, sets),
    }
    if not args.no_real:
        photo = load_model(args.photo_model)
        real: dict[str, Restorer] = {"photo (ours)": blind_model(photo),
                                     f"photo ×{ENSEMBLE} (ours)": blind_model(photo, ENSEMBLE),
                                     "gaussian-color (ours)": blind_model(color)}
        res["real"] = real_sets(real, args.limit, bm3d=not args.no_bm3d)
        rni6_sheet({"photo": photo, "gray": gray}, args.sheet)
    if not args.no_fidelity:
        res["fidelity"] = fidelity({"photo": load_model(args.photo_model), "gaussian-color": color, "gaussian-gray": gray},
                                   args.limit)
    if not args.no_finishing:
        res["finishing"] = finishing({"photo": load_model(args.photo_model), "gaussian-color": color}, args.limit,
                                     args.finish_sheet or args.out / "finish_sheet.png")
    if not args.no_jpeg:
        res["jpeg"] = jpeg_table({"photo (ours)": load_model(args.photo_model)},
                                 min(args.limit or args.jpeg_limit, args.jpeg_limit))
    if not args.no_luma:
        res["luma"] = luma_table({"photo (ours)": load_model(args.photo_model), "gaussian-color (ours)": color}, gray,
                                 min(args.limit or args.luma_limit, args.luma_limit), args.limit)
    if not args.no_raw:
        res["raw"] = raw_table(DATA, load_model(args.raw_model), load_model(args.photo_model),
                               min(args.limit or args.raw_limit, args.raw_limit), precision=args.precision)
    res["seconds"] = round(time.time() - start, 1)
    res = json.loads(json.dumps(res))  # σ keys as strings, as in a stored file
    if stored is not None:
        res = merge(stored, res)
    write_atomic(target, json.dumps(res, indent=2))
    write_atomic(args.out / "quality.md", markdown(res))
    print(markdown(res))


def write_atomic(path: Path, text: str) -> None:
    """Write `text` as UTF-8 through the engine's atomic write, so a failed run leaves the old file whole."""
    data = text.encode("utf-8")
    atomic_write(path, lambda fp: fp.write(data))


if __name__ == "__main__":
    main()
