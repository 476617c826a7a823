#!/usr/bin/env bash
# Create .venv in the repo root (if missing) and install Denoiser Studio with its dev extras into it.
# Re-installs only when pyproject.toml changed since the last install. Safe to run repeatedly.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv with $($PY --version)" >&2
  "$PY" -m venv .venv
fi
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
# Qt needs a few system libraries even offscreen; install them where they are missing (Debian/Ubuntu).
if ! .venv/bin/python -c "from PySide6 import QtGui" >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && apt-get install -y -qq libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 \
      libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 >/dev/null
  else
    echo "warning: PySide6 cannot load its libraries; install your system's Qt 6 runtime dependencies" >&2
  fi
fi
