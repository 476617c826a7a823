"""Quality benchmark, following ../shared/BENCHMARK.md exactly.

Synthetic Gaussian noise (seeded per image index, unclipped; plus the clipped-and-rounded variant) on
Set12/BSD68 (gray) and CBSD68/Kodak24 (colour) at σ 15/25/50, for our models with the true σ given and
blind (σ estimated); real camera noise on test/real (noisy vs clean); an RNI6 side-by-side sheet.
Writes Markdown (included by the README) and JSON.

    python bench/quality.py --out docs/bench            # full run
    python bench/quality.py --out /tmp/q --limit 3      # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.checkpoint import load_model  # noqa: E402
from denoiser.evaluate import evaluate_set, to_8bit  # noqa: E402
from denoiser.inference import denoise  # noqa: E402
from denoiser.metrics import psnr, ssim  # noqa: E402
from denoiser.progress import drain  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SETS = {"Set12": True, "BSD68": True, "CBSD68": False, "Kodak24": False}  # name -> gray
SIGMAS = (15, 25, 50)

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


def synthetic(model_for: dict[bool, object], limit: int | None, variants: list[str]) -> dict:
    """{variant: {set: {σ: {psnr, ssim, noisy_psnr}}}} for variants 'given', 'blind', 'clipped'."""
    results: dict = {}
    for variant in variants:
        results[variant] = {}
        for name, gray in SETS.items():
            loaded = model_for[gray]

            def run(noisy: np.ndarray, sigma: float | None, loaded=loaded) -> np.ndarray:
                return denoise(noisy, loaded, sigma=sigma).image

            t = time.time()
            rows = drain(evaluate_set(DATA / "test" / name, run, SIGMAS, gray=gray, blind=variant == "blind",
                                      clip=variant == "clipped", limit=limit))
            results[variant][name] = {int(r.sigma): {"psnr": r.psnr, "ssim": r.ssim, "noisy_psnr": r.noisy_psnr}
                                      for r in rows}
            print(f"{variant:8s} {name:8s} " + " ".join(f"{r.psnr:.2f}" for r in rows) + f"  ({time.time() - t:.0f} s)",
                  file=sys.stderr)
    return results


def real_sets(models: dict[str, object], limit: int | None) -> dict:
    """PSNR/SSIM on test/real/*: the noisy input and each model (blind)."""
    out: dict = {}
    for folder in sorted((DATA / "test" / "real").glob("*")):
        if not (folder / "noisy").is_dir():
            continue
        files = sorted((folder / "noisy").glob("*.png"))[:limit]
        entry: dict = {"noisy": {"psnr": [], "ssim": []}}
        for f in files:
            clean = np.asarray(PILImage.open(folder / "clean" / f.name).convert("RGB"), dtype=np.float64)
            noisy = np.asarray(PILImage.open(f).convert("RGB"), dtype=np.float64)
            entry["noisy"]["psnr"].append(psnr(clean, noisy))
            entry["noisy"]["ssim"].append(ssim(clean, noisy))
            for mname, loaded in models.items():
                res = denoise((noisy / 255).astype(np.float32), loaded)
                den = to_8bit(res.image * 255)
                e = entry.setdefault(mname, {"psnr": [], "ssim": [], "sigma": []})
                e["psnr"].append(psnr(clean, den))
                e["ssim"].append(ssim(clean, den))
                e["sigma"].append(res.sigma)
        out[folder.name] = {k: {m: float(np.mean(v)) for m, v in d.items()} for k, d in entry.items()}
        out[folder.name]["images"] = len(files)
        print(f"real {folder.name}: " + ", ".join(f"{k} {v['psnr']:.2f}" for k, v in out[folder.name].items()
                                                  if isinstance(v, dict)), file=sys.stderr)
    return out


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


def markdown(res: dict, labels: dict[str, str]) -> str:
    lines = ["| method | Set12 σ15/25/50 | BSD68 σ15/25/50 | CBSD68 σ15/25/50 | Kodak24 σ15/25/50 |", "|---|---|---|---|---|"]
    for variant, label in labels.items():
        if variant not in res["synthetic"]:
            continue
        cells = [" / ".join(f"{res['synthetic'][variant][s][sig]['psnr']:.2f}" for sig in SIGMAS) for s in SETS]
        lines.append(f"| **{label}** | " + " | ".join(cells) + " |")
    for name, vals in ANCHORS.items():
        cells = [" / ".join(f"{v:.2f}" for v in vals[s]) if s in vals else "–" for s in SETS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "SSIM of our models (given σ):", "",
              "| model | Set12 | BSD68 | CBSD68 | Kodak24 |", "|---|---|---|---|---|"]
    v = res["synthetic"].get("given", {})
    if v:
        lines.append("| ours | " + " | ".join(" / ".join(f"{v[s][sig]['ssim']:.4f}" for sig in SIGMAS) for s in SETS) + " |")
    if res.get("real"):
        models = [k for k in next(iter(res["real"].values())) if k not in ("images", "noisy")]
        lines += ["", "Real camera noise (`test/real`, PSNR / SSIM, blind):", "",
                  "| set | images | noisy input | " + " | ".join(models) + " |", "|---|---|---|" + "---|" * len(models)]
        for name, d in res["real"].items():
            lines.append(f"| {name} | {d['images']} | {d['noisy']['psnr']:.2f} / {d['noisy']['ssim']:.4f} | "
                         + " | ".join(f"{d[m]['psnr']:.2f} / {d[m]['ssim']:.4f}" for m in models) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench")
    ap.add_argument("--color-model", default="gaussian-color")
    ap.add_argument("--gray-model", default="gaussian-gray")
    ap.add_argument("--photo-model", default="photo")
    ap.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    ap.add_argument("--variants", default="given,blind,clipped")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    color, gray = load_model(args.color_model), load_model(args.gray_model)
    start = time.time()
    res = {
        "models": {"color": str(color.info.path.name), "gray": str(gray.info.path.name)},
        "synthetic": synthetic({False: color, True: gray}, args.limit, args.variants.split(",")),
    }
    real_models = {"photo (ours)": load_model(args.photo_model), "gaussian-color (ours)": color}
    res["real"] = real_sets(real_models, args.limit)
    rni6_sheet({"photo": real_models["photo (ours)"], "gray": gray}, args.out / "rni6_sheet.png")
    res["seconds"] = round(time.time() - start, 1)
    labels = {"given": "ours, σ given", "blind": "ours, blind (σ estimated)", "clipped": "ours, clipped 8-bit input, σ given"}
    (args.out / "quality.json").write_text(json.dumps(res, indent=2))
    (args.out / "quality.md").write_text(markdown(res, labels))
    print(markdown(res, labels))


if __name__ == "__main__":
    main()
