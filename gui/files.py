"""File names and dialogs: open/save filters, the recent-files list, and the never-overwrite-the-original rule."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from denoiser.imageio import FORMAT_BIT_DEPTHS, SUPPORTED_EXTENSIONS, output_format_for
from gui import settings

RECENT_KEY = "recent/files"
MAX_RECENT = 10

SAVE_FILTERS: dict[str, str] = {
    "png": "PNG image (*.png)",
    "tiff": "TIFF image (*.tif *.tiff)",
    "jpeg": "JPEG image (*.jpg *.jpeg)",
    "webp": "WebP image (*.webp)",
    "bmp": "BMP image (*.bmp)",
}
DNG_FILTER = "DNG raw, for your raw editor (*.dng)"  # offered when a camera RAW was denoised in the raw domain
DEFAULT_EXTENSIONS = {"png": ".png", "tiff": ".tif", "jpeg": ".jpg", "webp": ".webp", "bmp": ".bmp", "dng": ".dng"}


def open_filter() -> str:
    """QFileDialog filter listing every extension the engine reads."""
    patterns = " ".join(f"*{ext}" for ext in sorted(SUPPORTED_EXTENSIONS))
    return f"Images ({patterns});;All files (*)"


def save_filters(raw: bool = False) -> dict[str, str]:
    """Save filters by format; `raw` adds DNG (a camera RAW denoised in the raw domain)."""
    return {"dng": DNG_FILTER, **SAVE_FILTERS} if raw else dict(SAVE_FILTERS)


def with_extension(path: str, chosen_filter: str) -> Path:
    """Add the chosen filter's extension when the name has none the engine can write."""
    p = Path(path)
    if chosen_filter == DNG_FILTER and p.suffix.lower() == ".dng":
        return p
    try:
        output_format_for(p)
        return p
    except ValueError:
        fmt = next((f for f, text in save_filters(raw=True).items() if text == chosen_filter), "png")
        return p.with_name(p.name + DEFAULT_EXTENSIONS[fmt])


def default_save_format(source: Path | None, bit_depth: int) -> str:
    """Format suggested for saving: the input's own when writable, else PNG (TIFF for float data)."""
    if source is not None:
        try:
            return output_format_for(source)
        except ValueError:
            pass
    return "tiff" if bit_depth > 16 else "png"


def depths_for(fmt: str) -> tuple[int, ...]:
    """Bit depths a format can hold."""
    return FORMAT_BIT_DEPTHS.get(fmt, (8,))


def same_file(a: Path, b: Path | None) -> bool:
    """Whether two paths name the same file (also through links or different spellings)."""
    if b is None:
        return False
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


class RecentFiles:
    """Most recently opened files, newest first, kept in the settings."""

    def paths(self) -> list[str]:
        """The list, newest first."""
        return settings.read_list(RECENT_KEY)

    def add(self, path: str | Path) -> None:
        """Move `path` to the front."""
        p = str(Path(path).resolve())
        items = [p] + [q for q in self.paths() if q != p]
        settings.write(RECENT_KEY, items[:MAX_RECENT])

    def remove(self, path: str | Path) -> None:
        """Drop `path` (e.g. when it no longer opens)."""
        settings.write(RECENT_KEY, [q for q in self.paths() if q != str(path)])

    def clear(self) -> None:
        """Forget them all."""
        settings.write(RECENT_KEY, [])


def ask_open_path(parent: QWidget | None, start: str) -> Path | None:
    """File › Open dialog; None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, "Open image", start, open_filter())
    return Path(path) if path else None


def ask_save_path(parent: QWidget | None, title: str, start: Path, fmt: str, raw: bool = False) -> Path | None:
    """Save dialog whose filter picks the format; it adds the extension and confirms overwriting. With `raw`
    DNG is offered too."""
    filters = save_filters(raw)
    dialog = QFileDialog(parent, title, str(start))
    dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
    dialog.setFileMode(QFileDialog.FileMode.AnyFile)
    dialog.setNameFilters(list(filters.values()))
    dialog.selectNameFilter(filters.get(fmt, SAVE_FILTERS["png"]))
    dialog.setDefaultSuffix(DEFAULT_EXTENSIONS.get(fmt, ".png").lstrip("."))

    def filter_chosen(text: str) -> None:
        chosen = next((f for f, t in filters.items() if t == text), "png")
        dialog.setDefaultSuffix(DEFAULT_EXTENSIONS[chosen].lstrip("."))

    dialog.filterSelected.connect(filter_chosen)
    if dialog.exec() != QFileDialog.DialogCode.Accepted or not dialog.selectedFiles():
        return None
    return with_extension(dialog.selectedFiles()[0], dialog.selectedNameFilter())
