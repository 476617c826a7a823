#!/usr/bin/env bash
# Before the app starts on a display: make sure Qt's xcb platform plugin can load its system libraries
# (Qt 6.5+ needs libxcb-cursor0 and a few more that a fresh Debian/Ubuntu lacks; without them the user
# only sees Qt's "could not load the Qt platform plugin"). Installs them with apt-get where it can,
# otherwise says in one line which packages to install. Never fails the launch itself.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(uname -s)" = Linux ] || exit 0
case "${QT_QPA_PLATFORM:-}" in offscreen|minimal|wayland*|vnc*|eglfs*|linuxfb*) exit 0 ;; esac
qt=$(.venv/bin/python -c "import os, PySide6; print(os.path.join(os.path.dirname(PySide6.__file__), 'Qt'))" 2>/dev/null) || exit 0
missing_libs() {
  for lib in "$qt/plugins/platforms/libqxcb.so" "$qt"/lib/libQt6XcbQpa.so*; do
    [ -e "$lib" ] && ldd "$lib" 2>/dev/null | awk '/not found/ {print $1}'
  done | sort -u
}
package_for() {  # Debian/Ubuntu package of a shared library name
  case "$1" in
    libxcb-cursor.so.0) echo libxcb-cursor0 ;;      libxcb-icccm.so.4) echo libxcb-icccm4 ;;
    libxcb-keysyms.so.1) echo libxcb-keysyms1 ;;    libxcb-shape.so.0) echo libxcb-shape0 ;;
    libxcb-image.so.0) echo libxcb-image0 ;;        libxcb-render-util.so.0) echo libxcb-render-util0 ;;
    libxcb-randr.so.0) echo libxcb-randr0 ;;        libxcb-xkb.so.1) echo libxcb-xkb1 ;;
    libxcb-xinerama.so.0) echo libxcb-xinerama0 ;;  libxcb-xfixes.so.0) echo libxcb-xfixes0 ;;
    libxcb-sync.so.1) echo libxcb-sync1 ;;          libxcb-shm.so.0) echo libxcb-shm0 ;;
    libxcb-util.so.1) echo libxcb-util1 ;;          libxcb-render.so.0) echo libxcb-render0 ;;
    libxkbcommon-x11.so.0) echo libxkbcommon-x11-0 ;; libxkbcommon.so.0) echo libxkbcommon0 ;;
    libX11-xcb.so.1) echo libx11-xcb1 ;;            libxcb.so.1) echo libxcb1 ;;
    libEGL.so.1) echo libegl1 ;;                    libGL.so.1) echo libgl1 ;;
    libfontconfig.so.1) echo libfontconfig1 ;;      libdbus-1.so.3) echo libdbus-1-3 ;;
    *) echo "(the package providing $1)" ;;
  esac
}
libs=$(missing_libs)
[ -z "$libs" ] && exit 0
pkgs=$(for l in $libs; do package_for "$l"; done | sort -u | tr '\n' ' ')
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing the system libraries Qt's display plugin needs: $pkgs" >&2
  apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $pkgs >/dev/null 2>&1
  libs=$(missing_libs)
  [ -z "$libs" ] && exit 0
fi
echo "Denoiser Studio cannot open a window until these system packages are installed: $pkgs(Debian/Ubuntu: sudo apt-get install $pkgs)" >&2
exit 0
