"""Training-side figures for `photo` candidates, the ones its adoption rules are written on (never the test sets).

For each checkpoint, run blind as the app runs it (fp32): the held-out PolyU40 scenes (PSNR / SSIM, the crops
`bench/quality.py` cuts), LibRaw develops of the seed-16 validation photos of train/color at camera levels 0.5
and 1 (PSNR against the clean develop; `--levels` picks others, e.g. 0.1,0.2 for the low-noise end, where a
recipe can help noisy photos and harm nearly clean ones), noise that is alike in every channel (the held-out
PolyU40 crops in black and white, and the seed-16 photos with Gaussian σ 15 the same in each channel, in colour
and in black and white: what a B&W photo or strong chroma noise reduction leaves), the same photos JPEG-compressed at q 20 / 30 / 40 without noise, and the
clean-photo fidelity of the seed-11 validation photos as they are and ×1.5 clipped (mean shift per channel in
8-bit levels, PSNR against the input). Central 512² crops throughout; candidates are compared in one process.

    python bench/develop_pairs.py ../shared/data/train/color --out runs/develop-val16 --only-val 0.05,16 --levels 0.5,1
    python bench/photo_candidates.py resources/models/photo.pt runs/photo-19.pt --develops runs/develop-val16
    python bench/develop_pairs.py ../shared/data/train/color --out runs/develop-val16-low --only-val 0.05,16 --levels 0.1,0.2
    python bench/photo_candidates.py resources/models/photo.pt runs/photo-19.pt --develops runs/develop-val16-low --levels 0.1,0.2
    python bench/develop_pairs.py ../shared/data/train/color --out runs/develop-val16-mix --only-val 0.05,16 --levels 0.5,1 \
        --demosaic AAHD,DCB,DHT,LINEAR,PPG,VNG --seed 5
    python bench/photo_candidates.py resources/models/photo.pt runs/photo-19.pt --develops runs/develop-val16 runs/develop-val16-mix

With several `--develops` folders each has its own columns ("develop-val16 0.5", "develop-val16-mix 0.5", …).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from quality import DATA, denoise, jpeg_round_trip, luma_noise, polyu_heldout, to_luma, write_atomic  # noqa: E402

from denoiser.checkpoint import load_model  # noqa: E402
from denoiser.data import find_images, split_train_val  # noqa: E402
from denoiser.errors import DenoiserError  # noqa: E402
from denoiser.evaluate import to_8bit  # noqa: E402
from denoiser.fidelity import measure_fidelity, overexpose  # noqa: E402
from denoiser.imageio import load_image  # noqa: E402
from denoiser.inference import centre_crop  # noqa: E402
from denoiser.metrics import psnr, ssim  # noqa: E402

CROP = 512
LEVELS = ("0.5", "1")
JPEG_QUALITIES = (20, 30, 40)


def val_files(photos: list[Path], seed: int) -> list[Path]:
    """The validation photos of `denoiser train --seed SEED` (its default val fraction, 0.05)."""
    return split_train_val(photos, 0.05, seed)[1]


def val_crops(files: list[Path], limit: int | None) -> list[np.ndarray]:
    """Central crops (8-bit, float64) of `files`."""
    return [centre_crop(np.asarray(PILImage.open(f).convert("RGB"), dtype=np.float64), CROP) for f in files[:limit]]


def develop_pairs(folder: Path, val: list[Path], limit: int | None,
                  levels: tuple[str, ...] = LEVELS) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(clean, noisy) develop crops in [0, 1] per level, for the validation photos `val` found in `folder`."""
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for level in levels:
        found = [f.stem for f in val if (folder / "noisy" / f"{f.stem}_{level}.png").is_file()][:limit]
        if not found:
            raise DenoiserError(f"no develops at level {level} in {folder}: make them with bench/develop_pairs.py "
                                f"--only-val 0.05,16 --levels {','.join(levels)}")
        pairs[level] = [tuple(centre_crop(load_image(folder / part / f"{stem}_{level}.png").data.astype(np.float32), CROP)
                              for part in ("clean", "noisy")) for stem in found]
    return pairs


def develop_sets(folders: list[Path], val: list[Path], limit: int | None,
                 levels: tuple[str, ...] = LEVELS) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """`develop_pairs` of each folder, keyed "develop LEVEL" for one folder and "FOLDERNAME LEVEL" for several, so
    that develops of one demosaic and of others are judged side by side."""
    if len(folders) > 1 and len({f.name for f in folders}) < len(folders):
        raise DenoiserError("--develops folders need distinct names: their columns are named after them")
    sets: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for folder in folders:
        prefix = "develop" if len(folders) == 1 else folder.name
        for level, pairs in develop_pairs(folder, val, limit, levels).items():
            sets[f"{prefix} {level}"] = pairs
    return sets


def figures(restore: Callable[[np.ndarray], np.ndarray], polyu: list, develops: dict, clean16: list[np.ndarray],
            clean11: list[np.ndarray]) -> dict[str, float | tuple[float, ...]]:
    """The candidate's figures (see the module docstring); `restore` maps float32 [0, 1] to the same."""
    out: dict[str, float | tuple[float, ...]] = {}
    if polyu:
        restored = [to_8bit(restore((noisy / 255.0).astype(np.float32)) * 255.0) for _name, _clean, noisy in polyu]
        out["PolyU40 PSNR"] = float(np.mean([psnr(c, r) for (_n, c, _x), r in zip(polyu, restored, strict=True)]))
        out["PolyU40 SSIM"] = float(np.mean([ssim(c, r) for (_n, c, _x), r in zip(polyu, restored, strict=True)]))
    for label, pairs in develops.items():
        out[label] = float(np.mean([psnr(c, restore(n), 1.0) for c, n in pairs]))
    if polyu:
        gray = [(to_luma(c), to_luma(x)) for _name, c, x in polyu]
        out["PolyU40 gray"] = float(np.mean([psnr(c, to_8bit(restore((x / 255.0).astype(np.float32)) * 255.0))
                                             for c, x in gray]))
    for label, pairs in (("luma noise σ15", [(c, luma_noise(c, i, 15.0)) for i, c in enumerate(clean16)]),
                         ("gray σ15", [(to_luma(c), luma_noise(to_luma(c), i, 15.0)) for i, c in enumerate(clean16)])):
        out[label] = float(np.mean([psnr(c, to_8bit(restore((x / 255.0).astype(np.float32)) * 255.0)) for c, x in pairs]))
    for q in JPEG_QUALITIES:
        out[f"JPEG q{q}"] = float(np.mean([psnr(c, to_8bit(restore((jpeg_round_trip(c, q) / 255.0).astype(np.float32)) * 255.0))
                                           for c in clean16]))
    for label, images in (("fidelity ×1", clean11), ("fidelity ×1.5", [overexpose(c) for c in clean11])):
        fid = measure_fidelity(images, restore)
        out[f"{label} shift"] = fid.mean_shift
        out[f"{label} PSNR"] = fid.psnr_vs_input
    return out


def markdown(rows: dict[str, dict]) -> str:
    """One row per checkpoint."""
    cols = list(next(iter(rows.values())))
    lines = ["| checkpoint | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, row in rows.items():
        cells = ["/".join(f"{v:+.2f}" for v in row[c]) if isinstance(row[c], tuple) else
                 f"{row[c]:.4f}" if "SSIM" in c else f"{row[c]:.3f}" for c in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoints", nargs="+", help="photo checkpoints (paths or bundled names)")
    ap.add_argument("--develops", type=Path, nargs="+",
                    help="develop_pairs.py --only-val 0.05,16 --levels 0.5,1 output; with several folders (e.g. "
                         "other demosaics) each gets its own columns, named by its folder")
    ap.add_argument("--photos", type=Path, default=DATA / "train" / "color", help="the training photos")
    ap.add_argument("--levels", default=",".join(LEVELS),
                    help="the camera levels of the develops to score, as develop_pairs.py --levels wrote them")
    ap.add_argument("--limit", type=int, help="at most this many images per set (a quick look)")
    ap.add_argument("--json", type=Path, metavar="PATH",
                    help="also write the unrounded figures here (a rule's line decided at the table's rounding)")
    args = ap.parse_args(argv)
    try:
        polyu = polyu_heldout(args.limit)
        photos = find_images([args.photos])
        val16 = val_files(photos, 16)
        levels = tuple(v.strip() for v in args.levels.split(",") if v.strip())
        develops = develop_sets(args.develops or [], val16, args.limit, levels)
        clean16 = val_crops(val16, args.limit)
        clean11 = val_crops(val_files(photos, 11), args.limit)
        rows = {}
        for ck in args.checkpoints:
            model = load_model(ck)
            rows[ck] = figures(lambda x, m=model: denoise(x, m).image, polyu, develops, clean16, clean11)
            print(f"{ck}: done", file=sys.stderr, flush=True)
    except (DenoiserError, OSError) as exc:
        print(f"photo_candidates: {exc}", file=sys.stderr)
        return 1
    print(markdown(rows))
    if args.json:
        try:
            write_atomic(args.json, json.dumps(rows, indent=1) + "\n")
        except OSError as exc:
            print(f"photo_candidates: cannot write {args.json}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
