#!/usr/bin/env bash
# Continue training the bundled models on one GPU, side by side, within a wall-time budget.
#
#   bash bench/gpu_train.sh DATA OUT MINUTES [PYTHON]
#
# DATA holds the training folders `color` (CBSD432) and, optionally, `gray` (Train400) and
# `real/PolyU40` (real noisy/clean pairs, whose fixed held-out fifth validates `photo`), as
# ../shared/data/train does. Each run starts from a base checkpoint, anneals its learning rate over
# MINUTES (`denoiser train --minutes`), makes batches in loader processes (Gaussian noise on the GPU),
# and keeps its best validation checkpoint; the checkpoints are written to OUT as float16 bundles
# (what bench/bundle.py writes) with their logs (and develop-pairs.tsv, how the develop pairs were made). The
# model card names the settings each stage used.
#
# Settings (environment): MODELS (default "gaussian-color gaussian-gray photo"); COLOR_BASE (default
# resources/models/gaussian-color.pt), GRAY_BASE (default COLOR_BASE), PHOTO_BASE (default
# resources/models/photo.pt); COLOR_LR and
# GRAY_LR (4e-4), PHOTO_LR (3e-4); WARMUP (300); WORKERS (loader processes per Gaussian run, 3) and
# PHOTO_WORKERS (7); SEED (4); EMA (0: the decay of the weights' moving average that validates and is
# kept, `denoiser train --ema`); DEVICE (cuda; cpu makes it a smoke test). The photo camera pipeline:
# PHOTO_WHITE (0.5: share of samples whose sensor noise is partly per-pixel, both parts added before the
# develop's one clip; after 500 CPU steps +1.3 dB on SIDD_val10, level elsewhere, clean photos kept within
# 0.1 levels), PHOTO_WB (0.3: share of samples with their own white balance; 500 CPU steps at 0.5: +0.3 dB on the PolyU40
# crops and +0.8 dB on SIDD_medium10, −0.7 dB on SIDD_val10, clean photos ~0.18 levels darker), PHOTO_DEVELOP (0: a softer
# develop for noisy samples lost 0.7 dB on SIDD_medium10 and 0.1 dB on PolyU40), PHOTO_SHARPEN and
# PHOTO_CHROMA_NR (0: sharpened and chroma-reduced noise did not pay) with PHOTO_CHROMA_NR_RANGE (0.2,0.8: the share of
# colour noise left), PHOTO_BLUR (0). PHOTO_GRAY (0): `--gray-prob`, the share of samples made black-and-white.
# PHOTO_CCM (0): `--ccm-prob`, the share of rendered samples developed through a random real camera's colour matrix.
# PHOTO_JPEG (0.5) and PHOTO_JPEG_RANGE (30,95): the share of JPEG-compressed samples and their qualities
# (stage 7 on the CPU: +0.6–0.8 dB on the JPEG table without noise, up to +2.2 dB with σ 15).
# PHOTO_REAL_SHARE (0.5): the share of each photo batch drawn from the real pairs; PHOTO_VAL_ON (real):
# what picks photo's best checkpoint, `denoiser train --val-on` (on the CPU the mixed validation barely moved
# while the held-out PolyU40 scenes fell by 1 dB, so photo is chosen on those scenes alone); PHOTO_MATCH (8):
# `--real-match-radius`, the PolyU40 clean targets take the noisy shots' low frequencies (a Gaussian of 8 px),
# so the pairs no longer teach a change of light (the first CPU stage with it raised the held-out scenes).
# PHOTO_DEVELOP_PAIRS (200): that many LibRaw develop pairs made from DATA/color by bench/develop_pairs.py
# (the run's validation photos left out; needs rawpy) join PolyU40 as a second real folder, not matched
# (they agree in light already): a second demosaic (AHD) beside the pipeline's bilinear one; CPU stage 11:
# photo on LibRaw develops +2.7 dB at camera level 0.5 and +5.4 dB at 1, PolyU40 +0.09 dB; 0 = none. With
# them each folder is half of PHOTO_REAL_SHARE (0.5). PHOTO_DEMOSAIC (AHD): the LibRaw demosaic(s) of those pairs,
# a comma-separated list drawn from per pair (`bench/develop_pairs.py --demosaic`; a name listed twice is drawn twice
# as often).
# PHOTO_SSIM (0.05): `--ssim-weight`, the weight of a 1 − SSIM term beside the L1 loss (CPU stage 12: SIDD_val10
# +0.30 dB, SIDD_medium10 +0.19 dB, held-out PolyU40 +0.03 dB, where more of the plain L1 recipe had not paid).
set -u
DATA=$1
OUT=$2
MINUTES=$3
PY=${4:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
export PYTHONPATH=${PYTHONPATH:-}:$(pwd)
MODELS=${MODELS:-gaussian-color gaussian-gray photo}
COLOR_BASE=${COLOR_BASE:-resources/models/gaussian-color.pt}
GRAY_DATA=("$DATA/color")
[ -d "$DATA/gray" ] && GRAY_DATA=("$DATA/gray" "$DATA/color")
ARCH='{"channels": [32, 64, 128, 256], "blocks": 2, "bottleneck_blocks": 2}'
COMMON=(--arch unet --arch-config "$ARCH" --patch 128 --batch 64 --device "${DEVICE:-cuda}" --minutes "$MINUTES"
        --steps 200000 --warmup "${WARMUP:-300}" --val-every 500 --checkpoint-every 1000 --seed "${SEED:-4}"
        --threads 2 --ema "${EMA:-0}")
GAUSS=(--noise gaussian --sigma-range 0,75 --clip-prob 0.5 --exposure-prob 0.25 --workers "${WORKERS:-3}")
REAL=()
if [ -d "$DATA/real/PolyU40" ]; then
    FOLDERS=("$DATA/real/PolyU40")
    RADII=${PHOTO_MATCH:-8}
    if [[ " $MODELS " == *" photo "* ]] && [ "${PHOTO_DEVELOP_PAIRS:-200}" -gt 0 ] && $PY -c "import rawpy" 2>/dev/null; then
        if $PY bench/develop_pairs.py "$DATA/color" --out "$WORK/develop-pairs" --exclude-val "0.05,${SEED:-4}" \
               --level-range 0.1,1 --count "${PHOTO_DEVELOP_PAIRS:-200}" --seed 3 --demosaic "${PHOTO_DEMOSAIC:-AHD}" \
               > "$OUT/develop-pairs.log" 2>&1; then
            FOLDERS+=("$WORK/develop-pairs")
            cp "$WORK/develop-pairs/pairs.tsv" "$OUT/develop-pairs.tsv"
            RADII="$RADII,0"
        else
            echo "develop pairs failed (see $OUT/develop-pairs.log); photo trains without them" >&2
        fi
    fi
    REAL=(--real-data "${FOLDERS[@]}" --real-share "${PHOTO_REAL_SHARE:-0.5}"
          --val-on "${PHOTO_VAL_ON:-real}" --real-match-radius "$RADII")
fi

for name in $MODELS; do
    case $name in
    gaussian-color)
        $PY -m denoiser train --data "$DATA/color" --out "$WORK/$name.pt" --channels 3 --base "$COLOR_BASE" \
            --lr "${COLOR_LR:-4e-4}" "${GAUSS[@]}" "${COMMON[@]}" > "$OUT/color.log" 2>&1 & ;;
    gaussian-gray)
        $PY -m denoiser train --data "${GRAY_DATA[@]}" --out "$WORK/$name.pt" --channels 1 \
            --base "${GRAY_BASE:-$COLOR_BASE}" --lr "${GRAY_LR:-4e-4}" "${GAUSS[@]}" "${COMMON[@]}" \
            > "$OUT/gray.log" 2>&1 & ;;
    photo)
        $PY -m denoiser train --data "$DATA/color" "${REAL[@]}" --out "$WORK/$name.pt" --channels 3 \
            --base "${PHOTO_BASE:-resources/models/photo.pt}" --noise camera --level-range 0,1 \
            --jpeg-prob "${PHOTO_JPEG:-0.5}" --jpeg-range "${PHOTO_JPEG_RANGE:-30,95}" \
            --clip-prob 0.5 --clean-prob 0.1 --exposure-prob 0.25 --blur-prob "${PHOTO_BLUR:-0}" \
            --white-prob "${PHOTO_WHITE:-0.5}" --sharpen-prob "${PHOTO_SHARPEN:-0}" --chroma-nr-prob "${PHOTO_CHROMA_NR:-0}" \
            --chroma-nr-range "${PHOTO_CHROMA_NR_RANGE:-0.2,0.8}" --gray-prob "${PHOTO_GRAY:-0}" --ccm-prob "${PHOTO_CCM:-0}" \
            --wb-prob "${PHOTO_WB:-0.3}" --develop-prob "${PHOTO_DEVELOP:-0}" \
            --sigma-map estimate --val-sigma 50 --ssim-weight "${PHOTO_SSIM:-0.05}" --lr "${PHOTO_LR:-3e-4}" --workers "${PHOTO_WORKERS:-7}" \
            "${COMMON[@]}" > "$OUT/photo.log" 2>&1 & ;;
    *) echo "unknown model $name" >&2 ;;
    esac
done
wait

$PY - "$WORK" "$OUT" $MODELS <<'EOF'
import sys
from pathlib import Path

from denoiser.checkpoint import load_checkpoint, save_checkpoint

work, out = Path(sys.argv[1]), Path(sys.argv[2])
for name in sys.argv[3:]:
    src = work / f"{name}.pt"
    if not src.exists():
        print(f"{name}: no checkpoint written")
        continue
    m = load_checkpoint(src)
    save_checkpoint(out / f"{name}.pt", m.net, noise=m.info.noise, training=m.info.training,
                    metrics=m.info.metrics, description=m.info.description, half=True)
    print(f"{name}: step {m.info.training.get('steps')}, val {m.info.metrics.get('val_psnr'):.3f} dB")
EOF
