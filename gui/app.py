"""Application entry point: `denoiser-studio [IMAGE]`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from denoiser.resources import icon_path
from gui import main_thread_gc
from gui.settings import APPLICATION, ORGANISATION


def main(argv: Sequence[str] | None = None) -> int:
    """Start the GUI; an optional first argument is an image to open."""
    args = list(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication([sys.argv[0], *args])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setWindowIcon(QIcon(str(icon_path("app.png"))))
    main_thread_gc.install(app)
    from gui.main_window import MainWindow  # after QApplication: widgets need it

    window = MainWindow()
    window.show()
    paths = [a for a in args if not a.startswith("-")]
    if paths:
        window.open_path(paths[0])
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
