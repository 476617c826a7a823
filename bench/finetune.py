"""Fine-tuning benchmark (issue 5): what `denoiser finetune` gains, measured and repeatable.

- **clean mode**: the bundled `gaussian-color` fine-tuned on half of Kodak24 (names sorted, even
  indices) for ≤ `--minutes` on this machine; PSNR of base and fine-tuned on the other half at σ 25
  and 50 with the ../shared/BENCHMARK.md protocol (noise from numpy default_rng(i).standard_normal, i
  the image's index in the sorted full set, not clipped; outputs rounded to 8 bits; σ given).
- **noisy mode**: `photo` (a strong base, trained for camera noise) and `gaussian-color` (a base that
  knows only white Gaussian noise) fine-tuned self-supervised on the noisy images only of the even half
  of each ../shared/data/test/real set; PSNR against the clean references of the odd half (σ estimated,
  as the app does). The clean references of the training half are never read. A base whose output
  already holds less than `NOTHING_TO_LEARN` of the photos' noise is kept unchanged (`photo` here).
- **no-harm**: `gaussian-color` fine-tuned in clean mode with its own noise config on a sample of its
  own training set (train/color); on CBSD68 at σ 25 and 50 it must not lose more than 0.1 dB.

Writes finetune.md (tables) and finetune.json to --out. Fine-tuned checkpoints go to --work (a
temporary folder by default), never to the user models folder.

    python bench/finetune.py                          # full run: 6 fine-tunes of ≤ 10 min each
    python bench/finetune.py --cases noisy            # one case; the others are kept from finetune.json
    python bench/finetune.py --quick --out /tmp/ftb   # smoke run: a few steps on a few images
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image as PILImage

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.checkpoint import LoadedModel, load_checkpoint, load_model  # noqa: E402
from denoiser.evaluate import load_clean, noisy_version, to_8bit  # noqa: E402
from denoiser.inference import denoise  # noqa: E402
from denoiser.metrics import psnr  # noqa: E402
from denoiser.progress import drain  # noqa: E402
from denoiser.training import MODE_DEFAULTS, NOTHING_TO_LEARN, FinetuneConfig, FinetuneResult, finetune  # noqa: E402
from denoiser.training.events import FinetuneProgress  # noqa: E402

DATA = REPO.parent / "shared" / "data"
SIGMAS = (25, 50)
NO_HARM_TOLERANCE_DB = 0.1
CONFIG_DEFAULTS = {f.name: f.default for f in fields(FinetuneConfig)}


def run_finetune(cfg: FinetuneConfig, label: str) -> FinetuneResult:
    """Drain a fine-tuning run, printing its validations."""
    t = time.time()

    def show(ev: FinetuneProgress) -> None:
        if ev.val_score is not None or ev.done == 0:
            print(f"  {label}: {ev.message} ({time.time() - t:.0f} s)", file=sys.stderr, flush=True)

    result = drain(finetune(cfg), show)
    print(f"  {label}: {result.verdict()}", file=sys.stderr, flush=True)
    return result


def synthetic_psnr(model: LoadedModel, files: list[tuple[int, Path]], sigma: float, device: str) -> tuple[float, float]:
    """(noisy, denoised) mean PSNR on (index, file) pairs with BENCHMARK.md's seeded Gaussian noise, σ given."""
    noisy_scores, scores = [], []
    for index, f in files:
        clean = load_clean(f, gray=False)
        noisy = noisy_version(clean, sigma, index)
        out = denoise((noisy / 255.0).astype(np.float32), model, sigma=sigma, device=device).image * 255.0
        noisy_scores.append(psnr(clean, to_8bit(noisy)))
        scores.append(psnr(clean, to_8bit(out)))
    return float(np.mean(noisy_scores)), float(np.mean(scores))


def real_psnr(model: LoadedModel, files: list[Path], clean_dir: Path, device: str) -> tuple[float, float]:
    """(noisy, denoised) mean PSNR of real noisy photos against their clean references (σ estimated)."""
    noisy_scores, scores = [], []
    for f in files:
        clean = np.asarray(PILImage.open(clean_dir / f.name).convert("RGB"), dtype=np.float64)
        noisy = np.asarray(PILImage.open(f).convert("RGB"), dtype=np.float64)
        out = denoise((noisy / 255.0).astype(np.float32), model, device=device).image * 255.0
        noisy_scores.append(psnr(clean, noisy))
        scores.append(psnr(clean, to_8bit(out)))
    return float(np.mean(noisy_scores)), float(np.mean(scores))


def run_info(result: FinetuneResult, seconds: float) -> dict[str, Any]:
    """What the run itself reported (its validation verdict), for the JSON."""
    return {"steps": result.steps, "seconds": round(seconds, 1), "validation_score": result.score_name,
            "validation_before": result.before, "validation_after": result.after, "validation_better": result.better,
            "validation_verified": result.verified, "kept_base": bool(result.extra.get("kept_base")),
            "noise_left": result.extra.get("noise_left")}


def synthetic_case(args: argparse.Namespace, train: list[Path], test: list[tuple[int, Path]], out: Path,
                   label: str) -> tuple[dict[int, dict[str, float]], dict[str, Any]]:
    """Fine-tune the colour model in clean mode on `train`; base vs fine-tuned PSNR on `test` per σ, and the run."""
    cfg = FinetuneConfig([str(f) for f in train], base=args.color_model, out=str(out),
                         mode="clean", overwrite=True, device=args.device, **args.run)
    t = time.time()
    result = run_finetune(cfg, label)
    seconds = time.time() - t
    base, tuned = load_model(args.color_model), load_checkpoint(result.path)
    rows = {}
    for sigma in SIGMAS:
        noisy, before = synthetic_psnr(base, test, sigma, args.device)
        _noisy, after = synthetic_psnr(tuned, test, sigma, args.device)
        rows[sigma] = {"noisy": noisy, "base": before, "finetuned": after, "gain": after - before}
        print(f"{label} σ{sigma}: base {before:.2f} → fine-tuned {after:.2f} dB", file=sys.stderr, flush=True)
    return rows, run_info(result, seconds)


def clean_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """gaussian-color fine-tuned on Kodak24's even half, tested on its odd half."""
    files = sorted((DATA / "test" / "Kodak24").glob("*.png"), key=lambda p: p.name)
    train = [f for i, f in enumerate(files) if i % 2 == 0][: args.limit]
    test = [(i, f) for i, f in enumerate(files) if i % 2 == 1][: args.limit]
    rows, run = synthetic_case(args, train, test, work / "kodak-clean.pt", "clean")
    return {"train_images": len(train), "test_images": len(test), "run": run, "sigma": rows}


def noisy_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Each noisy base fine-tuned on the noisy even half of each test/real set, tested on the odd half.

    Two bases: `photo`, already trained for camera noise (a strong base: fine-tuning must not harm it),
    and `gaussian-color`, which knows only white Gaussian noise (a base mismatched to the camera, the
    case self-supervised fine-tuning is for).
    """
    out: dict[str, Any] = {}
    for base_name in args.noisy_bases:
        for folder in sorted((DATA / "test" / "real").glob("*")):
            if not (folder / "noisy").is_dir():
                continue
            files = sorted((folder / "noisy").glob("*.png"), key=lambda p: p.name)
            train = [f for i, f in enumerate(files) if i % 2 == 0][: args.limit]
            test = [f for i, f in enumerate(files) if i % 2 == 1][: args.limit]
            cfg = FinetuneConfig([str(f) for f in train], base=base_name,
                                 out=str(work / f"{folder.name}-{Path(base_name).stem}-noisy.pt"), mode="noisy",
                                 overwrite=True, device=args.device, **args.run)
            t = time.time()
            result = run_finetune(cfg, f"noisy {base_name} {folder.name}")
            seconds = time.time() - t
            noisy, before = real_psnr(load_model(base_name), test, folder / "clean", args.device)
            _noisy, after = real_psnr(load_checkpoint(result.path), test, folder / "clean", args.device)
            out[f"{base_name} / {folder.name}"] = {
                "base_model": base_name, "set": folder.name, "train_images": len(train), "test_images": len(test),
                "run": run_info(result, seconds), "noisy": noisy, "base": before, "finetuned": after,
                "gain": after - before}
            print(f"noisy {base_name} {folder.name}: input {noisy:.2f}, base {before:.2f} → fine-tuned {after:.2f} dB",
                  file=sys.stderr, flush=True)
    return out


def no_harm_case(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """gaussian-color fine-tuned on (a sample of) its own training set; CBSD68 must not drop > 0.1 dB."""
    pool = sorted((DATA / "train" / "color").glob("*.jpg"), key=lambda p: p.name)
    train = pool[:: max(1, len(pool) // 48)][: args.limit or 48]
    test = list(enumerate(sorted((DATA / "test" / "CBSD68").glob("*.png"), key=lambda p: p.name)))[: args.limit]
    rows, run = synthetic_case(args, train, test, work / "no-harm.pt", "no-harm")
    for row in rows.values():
        row["change"] = row.pop("gain")
        row["ok"] = row["change"] >= -NO_HARM_TOLERANCE_DB
    return {"train_images": len(train), "test_images": len(test), "run": run, "sigma": rows,
            "passed": all(r["ok"] for r in rows.values())}


def _clean_lines(res: dict[str, Any]) -> list[str]:
    c = res["clean"]
    lines = [f"**Clean mode** — `{res['models']['color']}` fine-tuned on Kodak24's even half ({c['train_images']} "
             f"images, {c['run']['steps']} steps kept), tested on the odd half ({c['test_images']} images), σ given, "
             "unclipped (BENCHMARK.md protocol):", "",
             "| σ | noisy input | base | fine-tuned | gain |", "|---|---|---|---|---|"]
    for sigma, r in c["sigma"].items():
        lines.append(f"| {sigma} | {r['noisy']:.2f} | {r['base']:.2f} | {r['finetuned']:.2f} | {r['gain']:+.2f} |")
    return lines


def _noisy_lines(res: dict[str, Any]) -> list[str]:
    lines = ["**Noisy mode** — fine-tuned self-supervised (Neighbor2Neighbor + PD stride 2 + full-resolution "
             f"distillation + anchor, {res['settings'].get('noisy_defaults', 'the defaults')}) on the noisy images "
             "only of each set's even half, tested against the clean references of the odd half (σ estimated). "
             "`photo` is trained for camera noise; `gaussian-color` knows only white Gaussian noise (a base mismatched "
             "to the camera). \"Noise left\" is the share of the photos' estimated noise σ that the base's output "
             "still holds on the run's validation crops; below "
             f"{res['settings'].get('nothing_to_learn', NOTHING_TO_LEARN):.0%} the run keeps the base unchanged "
             "(\"kept\"). The last column is the run's own no-reference score (N2N), which it reports as "
             "unverified:", "",
             "| base model | set | train / test images | noisy input | base | fine-tuned | gain | noise left | "
             "N2N score change |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in res["noisy"].values():
        run = r["run"]
        proxy = (f"{run['validation_after'] - run['validation_before']:+.2f}"
                 if run["validation_before"] is not None and run["validation_after"] is not None else "—")
        left = f"{run['noise_left']:.0%}" if run.get("noise_left") is not None else "—"
        tuned = "kept" if run.get("kept_base") else f"{r['finetuned']:.2f}"
        lines.append(f"| `{r['base_model']}` | {r['set']} | {r['train_images']} / {r['test_images']} | {r['noisy']:.2f} | "
                     f"{r['base']:.2f} | {tuned} | {r['gain']:+.2f} | {left} | {proxy} |")
    return lines


def _no_harm_lines(res: dict[str, Any]) -> list[str]:
    h = res["no_harm"]
    lines = [f"**No-harm check** — `{res['models']['color']}` fine-tuned on {h['train_images']} images of its own "
             f"training set (nothing new to learn), tested on CBSD68 ({h['test_images']} images): "
             f"{'passed' if h['passed'] else 'FAILED'} (tolerance −{NO_HARM_TOLERANCE_DB} dB).", "",
             "| σ | base | fine-tuned | change |", "|---|---|---|---|"]
    for sigma, r in h["sigma"].items():
        lines.append(f"| {sigma} | {r['base']:.2f} | {r['finetuned']:.2f} | {r['change']:+.2f} |")
    return lines


CASE_TABLES = (("clean", _clean_lines), ("noisy", _noisy_lines), ("no_harm", _no_harm_lines))


def markdown(res: dict[str, Any]) -> str:
    """The tables for the README: one per case the results hold."""
    st = res["settings"]
    budget = "3 steps each (quick smoke run)" if st["mode"] == "quick" else f"≤ {st['minutes']:g} min each"
    lines = [f"Fine-tuning runs of {budget}, device {st['device']}, {st['threads']} threads; PSNR in dB, "
             "base model → fine-tuned."]
    for case, table in CASE_TABLES:
        if case in res:
            lines += ["", *table(res)]
    if res.get("kept_from_previous_run"):
        lines += ["", f"(This run measured only some cases; {', '.join(res['kept_from_previous_run'])} kept from the "
                  "previous full run.)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench")
    ap.add_argument("--work", type=Path, default=None, help="folder for the fine-tuned checkpoints (default: temporary)")
    ap.add_argument("--minutes", type=float, default=10.0, help="time budget of each fine-tuning run")
    ap.add_argument("--color-model", default="gaussian-color")
    ap.add_argument("--photo-model", default="photo")
    ap.add_argument("--noisy-bases", default=None,
                    help="comma-separated base models of the noisy-mode case (default: the photo and colour models)")
    ap.add_argument("--cases", default="clean,noisy,no-harm", help="comma-separated cases to run")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 steps on 2 images per case")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.limit = 2 if args.quick else None
    bases = args.noisy_bases or f"{args.photo_model},{args.color_model}"
    args.noisy_bases = [b for b in bases.split(",") if b]
    args.cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    args.run = {"steps": 3, "patch": 64, "batch": 2} if args.quick else {"minutes": args.minutes}
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        res: dict[str, Any] = {
            "settings": {"minutes": args.minutes, "mode": "quick" if args.quick else "full",
                         "device": args.device, "threads": torch.get_num_threads()},
            "models": {"color": args.color_model, "photo": args.photo_model},
        }
        res["settings"]["noisy_defaults"] = (f"lr {MODE_DEFAULTS['noisy']['lr']:g}, "
                                             f"anchor {CONFIG_DEFAULTS['anchor']:g}")
        res["settings"]["nothing_to_learn"] = NOTHING_TO_LEARN
        previous = json.loads((args.out / "finetune.json").read_text()) if (args.out / "finetune.json").exists() else {}
        for case, run in (("clean", clean_case), ("noisy", noisy_case), ("no_harm", no_harm_case)):
            if case.replace("_", "-") in args.cases:
                res[case] = run(args, work)
                if case == "noisy" and case in previous:  # rows of bases not rerun are kept
                    kept = {k: v for k, v in previous["noisy"].items() if v["base_model"] not in args.noisy_bases}
                    res[case] = {**kept, **res[case]}
            elif case in previous:
                res[case] = previous[case]  # a partial run keeps the other cases of the last full one
                res.setdefault("kept_from_previous_run", []).append(case)
    res["seconds"] = round(time.time() - start, 1)
    (args.out / "finetune.json").write_text(json.dumps(res, indent=2))
    (args.out / "finetune.md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
