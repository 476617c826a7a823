#!/usr/bin/env bash
# Set up .venv if needed, then run ruff and the whole test suite on the CPU (Qt offscreen).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
export QT_QPA_PLATFORM=offscreen CUDA_VISIBLE_DEVICES=""
.venv/bin/ruff check .
# The fast tier (pytest's default: -m 'not slow'), then the slow tier: bench, lab, Ray and torchrun smoke runs.
# Exit status 5 is "no test selected" (all the chosen tests are in the other tier), not a failure.
for tier in "not slow" "slow"; do
  rc=0
  .venv/bin/python -m pytest -m "$tier" "$@" || rc=$?
  if [ "$rc" != 0 ] && [ "$rc" != 5 ]; then exit "$rc"; fi
done
