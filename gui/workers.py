"""Running the engine's progress generators off the GUI thread, with progress and cancel.

A `Job` is a QThread that drains one generator: every yielded `Progress` is emitted as `progressed`,
the generator's return value as `succeeded`, an exception as `failed`. `cancel()` takes effect at the
next yield: the generator is closed in the worker thread (so its `finally`/`with` blocks run there)
and `cancelled` is emitted. Signals reach GUI-thread receivers through queued connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from denoiser.progress import Progress, ProgressGen

Work = Callable[[], ProgressGen[Any]]


def function_work(fn: Callable[..., Any], *args: Any, message: str = "", **kwargs: Any) -> Work:
    """Wrap a plain function as work: one indeterminate progress event, then the call."""

    def gen() -> Generator[Progress, None, Any]:
        yield Progress(0, 0, message)
        return fn(*args, **kwargs)

    return gen


class Job(QThread):
    """One generator drained in its own thread."""

    progressed = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()

    def __init__(self, work: Work, label: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label = label
        self._work = work
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop at the generator's next yield."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        """Whether `cancel()` was called."""
        return self._cancel.is_set()

    def run(self) -> None:
        """Thread body: create the generator here, so even its set-up runs off the GUI thread."""
        try:
            gen = self._work()
            while True:
                if self._cancel.is_set():
                    gen.close()
                    self.cancelled.emit()
                    return
                try:
                    event = next(gen)
                except StopIteration as stop:
                    result = stop.value
                    break
                self.progressed.emit(event)
        except BaseException as exc:  # every failure is reported to the GUI, never raised in the thread
            self.failed.emit(exc)
            return
        if self._cancel.is_set():
            self.cancelled.emit()
        else:
            self.succeeded.emit(result)


class JobPool(QObject):
    """Keeps running jobs alive until their threads end, and stops them all on shutdown."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: set[Job] = set()
        self._closed = False

    def start(self, job: Job) -> Job:
        """Start a job and hold a reference until it finishes (after `shutdown`, jobs are not started)."""
        if self._closed:
            return job
        self._jobs.add(job)
        job.finished.connect(lambda j=job: self._done(j))
        job.start()
        return job

    def _done(self, job: Job) -> None:
        self._jobs.discard(job)
        job.deleteLater()

    @property
    def running(self) -> int:
        """How many jobs are still running."""
        return sum(j.isRunning() for j in self._jobs)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Cancel every job, wait for their threads, and start no more."""
        self._closed = True
        for job in list(self._jobs):
            job.cancel()
        for job in list(self._jobs):
            job.wait(timeout_ms)


class TaskController(QObject):
    """The window's one foreground task (load, noise, denoise, preview, save) with progress and cancel.

    Starting a task while another runs cancels the older one; only the current task's callbacks run.
    """

    busy_changed = Signal(bool)
    progressed = Signal(str, object)  # task label, Progress
    finished = Signal(str, str)  # task label, outcome: "done" | "failed" | "cancelled"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = JobPool(self)
        self.current: Job | None = None

    @property
    def busy(self) -> bool:
        """Whether a foreground task is running."""
        return self.current is not None

    def start(
        self,
        label: str,
        work: Work,
        on_success: Callable[[Any], None],
        on_failure: Callable[[BaseException], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> Job:
        """Run `work` as the current task; callbacks run on the GUI thread."""
        if self.current is not None:
            self.current.cancel()
        job = Job(work, label)
        self.current = job
        job.progressed.connect(lambda ev, j=job: self._progress(j, ev))
        job.succeeded.connect(lambda value, j=job: self._end(j, "done", on_success, value))
        job.failed.connect(lambda exc, j=job: self._end(j, "failed", on_failure, exc))
        job.cancelled.connect(lambda j=job: self._end(j, "cancelled", on_cancel))
        self.pool.start(job)
        self.busy_changed.emit(True)
        return job

    def cancel(self) -> None:
        """Ask the current task to stop."""
        if self.current is not None:
            self.current.cancel()

    def _progress(self, job: Job, event: Progress) -> None:
        if job is self.current and not job.cancel_requested:
            self.progressed.emit(job.label, event)

    def _end(self, job: Job, outcome: str, callback: Callable[..., None] | None, *args: Any) -> None:
        if job is not self.current:
            return
        self.current = None
        self.busy_changed.emit(False)
        try:
            if callback is not None:
                callback(*args)
        finally:
            self.finished.emit(job.label, outcome)


class LatestOnly(QObject):
    """Background calculations where only the newest request matters (metrics, σ estimates).

    One runs at a time; a request made meanwhile replaces any waiting one, and a finished result is
    delivered only when no newer request is waiting.
    """

    def __init__(self, pool: JobPool, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._running: Job | None = None
        self._pending: tuple[Callable[[], Any], Callable[[Any], None]] | None = None

    @property
    def idle(self) -> bool:
        """Nothing running and nothing waiting."""
        return self._running is None and self._pending is None

    def submit(self, fn: Callable[[], Any], callback: Callable[[Any], None]) -> None:
        """Compute `fn()` off the GUI thread and hand the value to `callback` unless superseded."""
        self._pending = (fn, callback)
        if self._running is None:
            self._next()

    def _next(self) -> None:
        if self._pending is None:
            return
        fn, callback = self._pending
        self._pending = None
        job = Job(function_work(fn))
        self._running = job
        job.succeeded.connect(lambda value, cb=callback: self._deliver(cb, value))
        job.finished.connect(self._finished)
        self._pool.start(job)

    def _deliver(self, callback: Callable[[Any], None], value: Any) -> None:
        if self._pending is None:
            callback(value)

    def _finished(self) -> None:
        self._running = None
        self._next()
