"""Noise-level estimator accuracy on BSD68 for σ 5–50 (the README's estimator table).

Seeded Gaussian noise per image index as in BENCHMARK.md, unclipped and clipped to 8 bits.

    python bench/estimator.py --out docs/bench
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from denoiser.estimate import ESTIMATORS  # noqa: E402
from denoiser.evaluate import load_clean, noisy_version  # noqa: E402

SIGMAS = (5, 10, 15, 25, 35, 50)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench")
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "test" / "BSD68")
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args()
    files = sorted(args.data.glob("*.png"))[: args.limit]
    clean = [load_clean(f, gray=True) for f in files]
    res: dict = {}
    for clip in (False, True):
        for name, fn in ESTIMATORS.items():
            t = time.perf_counter()
            rows = {}
            for s in SIGMAS:
                err = np.array([fn(noisy_version(x, s, i, clip) / 255.0) - s for i, x in enumerate(clean)])
                rows[s] = {"bias": float(err.mean()), "mae": float(np.abs(err).mean()), "max": float(np.abs(err).max())}
            res[f"{name}{' (clipped)' if clip else ''}"] = {
                "rows": rows, "ms_per_image": 1000 * (time.perf_counter() - t) / (len(clean) * len(SIGMAS))}
    lines = [f"Mean absolute error of σ̂ on BSD68 ({len(files)} images; bias in brackets), 0–255 scale:", "",
             "| estimator | " + " | ".join(f"σ={s}" for s in SIGMAS) + " | ms / image |",
             "|---|" + "---|" * (len(SIGMAS) + 1)]
    for name, d in res.items():
        cells = [f"{d['rows'][s]['mae']:.2f} ({d['rows'][s]['bias']:+.2f})" for s in SIGMAS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {d['ms_per_image']:.0f} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "estimator.json").write_text(json.dumps(res, indent=2))
    (args.out / "estimator.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
