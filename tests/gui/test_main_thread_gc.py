"""Garbage collection happens on the GUI thread only: a collection in a worker that frees a Qt object crashes Qt."""

from __future__ import annotations

import gc
import threading

import pytest

from denoiser.progress import Progress
from gui.main_thread_gc import MainThreadCollector
from gui.workers import Job


def _cyclic_garbage(count: int):
    """Work that leaves `count` reference cycles behind, far past the collector's thresholds."""
    for i in range(count):
        node: list = []
        node.append(node)
        if i % 20000 == 0:
            yield Progress(i, count, "allocating")
    return count


def test_cycles_made_in_a_worker_are_collected_on_the_gui_thread(qtbot, main_thread_gc) -> None:
    collections: list[tuple[str, int]] = []  # (thread name, objects freed) per finished collection

    def record(phase: str, info: dict) -> None:
        if phase == "stop":
            collections.append((threading.current_thread().name, info["collected"]))

    assert not gc.isenabled()
    gc.callbacks.append(record)
    try:
        job = Job(lambda: _cyclic_garbage(200_000))
        with qtbot.waitSignal(job.succeeded, timeout=30000):
            job.start()
        job.wait()
        qtbot.waitUntil(lambda: sum(freed for _, freed in collections) >= 100_000, timeout=10000)
    finally:
        gc.callbacks.remove(record)
    threads = {name for name, _ in collections}
    assert threads == {threading.main_thread().name}


def test_a_stopped_collector_gives_automatic_collection_back(qapp) -> None:
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        collector = MainThreadCollector(qapp)
        assert not gc.isenabled()
        collector.stop()
        assert gc.isenabled()
    finally:
        (gc.enable if was_enabled else gc.disable)()


def test_the_collector_refuses_a_thread_other_than_the_gui_thread(qapp) -> None:
    errors: list[BaseException] = []

    def make() -> None:
        try:
            MainThreadCollector()
        except RuntimeError as exc:
            errors.append(exc)

    enabled_before = gc.isenabled()
    worker = threading.Thread(target=make)
    worker.start()
    worker.join()
    assert len(errors) == 1 and "GUI thread" in str(errors[0])
    assert gc.isenabled() == enabled_before


@pytest.mark.parametrize("generation", [0, 1, 2])
def test_collect_due_collects_the_oldest_generation_past_its_threshold(qapp, generation: int, monkeypatch) -> None:
    counts = [10_000 if g <= generation else 0 for g in range(3)]  # this generation and every younger one are due
    collected: list[int] = []
    monkeypatch.setattr(gc, "get_count", lambda: tuple(counts))
    monkeypatch.setattr(gc, "get_threshold", lambda: (700, 10, 10))
    monkeypatch.setattr(gc, "collect", lambda g=2: collected.append(g) or 0)
    collector = MainThreadCollector(qapp, interval_ms=60_000)
    try:
        collector.collect_due()
    finally:
        monkeypatch.undo()
        collector.stop()
    assert collected == [generation]
