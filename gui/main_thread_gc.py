"""Python's cyclic garbage collector, run only on the GUI thread.

Left automatic, the collector runs in whichever thread happens to allocate past its threshold: often
a `Job` thread loading a model. If the garbage it finds holds a Qt object (a widget or a connection
caught in a reference cycle), that object is destroyed off the GUI thread, and Qt crashes the process
(a segmentation fault "Garbage-collecting" inside the worker). `MainThreadCollector` switches the
automatic collector off and collects from a GUI-thread timer instead, with the same thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer

CHECK_INTERVAL_MS = 250


class MainThreadCollector(QObject):
    """Owns garbage collection while it lives: automatic collection off, a GUI-thread timer on."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        app = QCoreApplication.instance()
        if app is None or QThread.currentThread() != app.thread():
            raise RuntimeError("MainThreadCollector must be created on the GUI thread of a running QApplication")
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.collect_due)
        self._timer.start(interval_ms)

    def collect_due(self) -> int:
        """Collect the oldest generation whose allocation count passed its threshold; return what was freed."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        for generation in (2, 1, 0):
            if thresholds[generation] and counts[generation] > thresholds[generation]:
                return gc.collect(generation)
        return 0

    def stop(self) -> None:
        """Stop the timer, collect once more here, and give collection back to Python as it was."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()


def install(app: QCoreApplication) -> MainThreadCollector:
    """Make the application's GUI thread the only one that collects garbage, for the app's lifetime."""
    collector = MainThreadCollector(app)
    app.aboutToQuit.connect(collector.stop)
    return collector
