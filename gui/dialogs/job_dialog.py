"""The part the batch and fine-tune dialogs share: one engine job at a time in a worker thread, with a
progress bar, an ETA, Start / Cancel / Close, the form locked while it runs, and closing that cancels."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from denoiser.progress import Progress
from gui.workers import Job, JobPool


def format_eta(seconds: float) -> str:
    """'1 h 02 min', '3 min 05 s' or '12 s'."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


class JobDialog(QDialog):
    """Base for dialogs that run one job; subclasses build the form and handle the job's signals."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pool = JobPool(self)
        self.job: Job | None = None

    def _run_controls(self, cancel_tip: str, extra: Sequence[QPushButton] = ()) -> QHBoxLayout:
        """Progress bar, ETA, Start, Cancel, any extra buttons and Close, in one row."""
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.eta_label = QLabel("")
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.setToolTip(cancel_tip)
        self.cancel_button.clicked.connect(self.cancel)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.eta_label)
        for button in (self.start_button, self.cancel_button, *extra, close):
            row.addWidget(button)
        return row

    # --- to be provided by the subclass -------------------------------------------------------------
    def start(self) -> None:
        raise NotImplementedError

    def form_groups(self) -> list[QWidget]:
        """The parts of the form locked while the job runs."""
        raise NotImplementedError

    def _on_progress(self, event: Progress) -> None:
        raise NotImplementedError

    def _on_done(self, result: object) -> None:
        raise NotImplementedError

    def _on_failed(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _on_cancelled(self) -> None:
        raise NotImplementedError

    # --- running ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether a job is in progress."""
        return self.job is not None

    def _launch(self, work: Callable[[], object], label: str) -> None:
        """Run `work` (a function returning the engine's progress generator) in a worker thread."""
        job = Job(work, label)
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(self._on_done)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        self.job = job
        self._set_running(True)
        self.pool.start(job)

    def cancel(self) -> None:
        """Ask the job to stop at its next step."""
        if self.job is not None:
            self.job.cancel()
            self.cancel_button.setEnabled(False)
            self.eta_label.setText("cancelling…")

    def _end_job(self) -> None:
        """Forget the finished job and unlock the form."""
        self.job = None
        self._set_running(False)
        self.eta_label.setText("")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for group in self.form_groups():
            group.setEnabled(not running)

    def _stop(self) -> None:
        if self.running:
            self.cancel()
            self.pool.shutdown()

    def closeEvent(self, event: QCloseEvent) -> None:
        self._stop()
        super().closeEvent(event)

    def reject(self) -> None:
        self._stop()
        super().reject()
