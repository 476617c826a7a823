"""Progress events that the engine's long-running generators yield.

The CLI drains a generator with a progress bar; the GUI runs the same generator in a worker thread
and cancels it by closing the generator at the next yield.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass
class Progress:
    """One step of long work: `done` of `total` units, a message, and optional extra data."""

    done: float
    total: float
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Completed fraction in [0, 1] (0 when the total is unknown)."""
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0


ProgressGen = Generator[Progress, None, T]


def drain(gen: ProgressGen[T], on_event: Callable[[Progress], None] | None = None) -> T:
    """Run a progress generator to completion, passing each event to `on_event`, and return its result.

    The generator is closed on any way out, so an interrupt lets it clean up (save its state) at once.
    """
    try:
        while True:
            try:
                event = next(gen)
            except StopIteration as stop:
                return stop.value
            if on_event is not None:
                on_event(event)
    finally:
        gen.close()
