"""Noisy/clean pairs of LibRaw develops, made from clean sRGB photos: a second kind of demosaicing for `photo`.

The synthetic camera pipeline of training develops its mosaics with one bilinear demosaic; raw converters built
on LibRaw develop with AHD, whose noise is structured otherwise (mazes, colour blotches). Each photo is
unprocessed to an RGGB mosaic (`denoiser.raw.mosaic_from_image`, white-balance gains drawn per photo), shot + read
noise is added at a camera level drawn per photo, and both the noisy and the noise-free mosaic go through the same
LibRaw develop (as `bench/raw_table.py` does): AHD, or with `--demosaic` one of LibRaw's others drawn per pair.
The pairs are written as 16-bit PNGs to OUT/noisy and OUT/clean, the layout `denoiser train --real-data` reads,
and OUT/pairs.tsv records how each was made (demosaic, camera level, white-balance gains). A demosaic listed twice
in `--demosaic` is drawn twice as often.

    python bench/develop_pairs.py ../shared/data/train/color --out runs/develop-pairs --exclude-val 0.05,16 \
        --level-range 0.1,1 --count 200 --seed 3      # the pairs photo's stage 11 trained on
    python bench/develop_pairs.py ../shared/data/train/color --out runs/develop-val --only-val 0.05,10 --levels 0.5,0.75,1

`--exclude-val F,SEED` leaves out the validation images of `denoiser train --seed SEED` (val fraction F), so a
model trained on the pairs can still be judged on developed photos it never saw; `--only-val` makes exactly
those, at each of `--levels` (names `stem_L.png`), for that judgement."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from denoiser.atomic import atomic_write  # noqa: E402
from denoiser.data import find_images, split_train_val  # noqa: E402
from denoiser.errors import DenoiserError  # noqa: E402
from denoiser.imageio import Image, load_image, save_image  # noqa: E402
from denoiser.noise import camera_levels  # noqa: E402
from denoiser.raw import DEMOSAICS, develop, dng_bytes, mosaic_from_image  # noqa: E402

WB_RED = (1.6, 2.4)  # white-balance gains of daylight raw files (red, blue; green is 1)
WB_BLUE = (1.3, 2.0)


def developed_pair(rgb: np.ndarray, level: float, wb: tuple[float, float, float], seed: int,
                   demosaic: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, clean) LibRaw develops (H, W, 3) float32 in [0, 1] of one photo at camera noise `level`,
    both demosaiced by `demosaic` (None: LibRaw's AHD)."""
    shot, read = camera_levels(level)
    clean = develop(dng_bytes(mosaic_from_image(rgb, wb=wb, seed=seed)), demosaic)
    noisy = develop(dng_bytes(mosaic_from_image(rgb, shot=shot, read=read, wb=wb, seed=seed)), demosaic)
    return noisy.astype(np.float32) / 65535.0, clean.astype(np.float32) / 65535.0


def _split(spec: str) -> tuple[float, int]:
    fraction, seed = spec.split(",")
    return float(fraction), int(seed)


def _write(data: np.ndarray, path: Path) -> None:
    save_image(Image(data=data, alpha=None, bit_depth=16, exif=None, icc_profile=None, format="png"), path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="+", help="folders of clean colour photos")
    ap.add_argument("--out", required=True, type=Path)
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--exclude-val", metavar="F,SEED", help="leave out the training run's validation images")
    group.add_argument("--only-val", metavar="F,SEED", help="make only the training run's validation images")
    ap.add_argument("--level-range", default="0.25,1", help="camera levels drawn per photo (0 base ISO … 1 very high)")
    ap.add_argument("--levels", help="fixed camera levels, one pair per photo and level (for validation sets)")
    ap.add_argument("--demosaic", default="AHD",
                    help=f"LibRaw demosaic(s), one drawn per pair: a comma-separated list of {', '.join(DEMOSAICS)}, "
                         "or 'all' (default AHD, LibRaw's own default)")
    ap.add_argument("--count", type=int, help="make pairs of this many of the photos, drawn with --seed (default all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    files = find_images(args.data)
    if not files:
        print(f"no images in {', '.join(args.data)}", file=sys.stderr)
        return 1
    if args.exclude_val or args.only_val:
        train, val = split_train_val(files, *_split(args.exclude_val or args.only_val))
        files = train if args.exclude_val else val
    demosaics = list(DEMOSAICS) if args.demosaic == "all" else args.demosaic.split(",")
    unknown = [d for d in demosaics if d not in DEMOSAICS]
    if unknown:
        print(f"unknown demosaic {', '.join(unknown)}: one of {', '.join(DEMOSAICS)} or 'all'", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    if args.count is not None:
        if args.count < 1:
            print(f"--count must be at least 1, not {args.count}", file=sys.stderr)
            return 2
        files = sorted(files[i] for i in rng.permutation(len(files))[: args.count])
    for sub in ("noisy", "clean"):
        (args.out / sub).mkdir(parents=True, exist_ok=True)
    lo, hi = (float(v) for v in args.level_range.split(","))
    fixed = [float(v) for v in args.levels.split(",")] if args.levels else None
    rows = ["name\tdemosaic\tlevel\twb_red\twb_blue"]
    for i, f in enumerate(files):
        try:
            rgb = load_image(f).data
        except DenoiserError as e:
            print(f"skipped {f.name}: {e}", file=sys.stderr)
            continue
        if rgb.shape[2] != 3 or min(rgb.shape[:2]) < 16:
            print(f"skipped {f.name}: not a colour photo of at least 16 px", file=sys.stderr)
            continue
        for level in fixed or [float(rng.uniform(lo, hi))]:
            wb = (float(rng.uniform(*WB_RED)), 1.0, float(rng.uniform(*WB_BLUE)))
            demosaic = demosaics[int(rng.integers(len(demosaics)))] if len(demosaics) > 1 else demosaics[0]
            noisy, clean = developed_pair(rgb, level, wb, seed=args.seed * 100003 + i, demosaic=demosaic)
            name = f"{f.stem}_{level:g}.png" if fixed else f"{f.stem}.png"
            _write(noisy, args.out / "noisy" / name)
            _write(clean, args.out / "clean" / name)
            rows.append(f"{name}\t{demosaic}\t{level:.4f}\t{wb[0]:.4f}\t{wb[2]:.4f}")
    atomic_write(args.out / "pairs.tsv", lambda fp: fp.write(("\n".join(rows) + "\n").encode()))
    print(f"{len(rows) - 1} pairs in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
