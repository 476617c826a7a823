#!/usr/bin/env bash
# Set up .venv if needed, then run ruff and the whole test suite on the CPU (Qt offscreen).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
export QT_QPA_PLATFORM=offscreen CUDA_VISIBLE_DEVICES=""
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
