#!/usr/bin/env bash
# Set up .venv if needed, then start Denoiser Studio (extra arguments are passed on, e.g. an image path).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
bash scripts/check-qt-display.sh
exec .venv/bin/python main.py "$@"
