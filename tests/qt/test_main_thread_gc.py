"""Cyclic garbage is collected on the UI thread only: a cycle that holds a Qt object and becomes
garbage while a worker thread allocates is freed by the UI thread's timer, not by the worker."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from comfymanager.ui.main_thread_gc import MainThreadGC


class _Cycle:
    def __init__(self, freed_on: list[str]) -> None:
        self.me = self
        self.qobject = QObject()
        self.qobject.destroyed.connect(lambda *_: None)
        self.freed_on = freed_on

    def __del__(self) -> None:
        self.freed_on.append(threading.current_thread().name)


def test_cycles_are_freed_on_the_ui_thread(qtbot: QtBot) -> None:
    was_enabled = gc.isenabled()
    thresholds = gc.get_threshold()
    gc.collect()
    collector = MainThreadGC(interval_ms=20)
    try:
        assert not gc.isenabled()  # no collection can start on another thread
        freed_on: list[str] = []
        _Cycle(freed_on)  # garbage now, held only by its own cycle
        gc.set_threshold(1, 1, 1)

        def churn() -> None:  # a worker allocating a lot: the moment automatic gc would run
            for _ in range(20000):
                [object() for _ in range(3)]

        worker = threading.Thread(target=churn, name="worker")
        worker.start()
        worker.join()
        assert freed_on == []  # the worker did not collect it
        qtbot.waitUntil(lambda: freed_on == [threading.main_thread().name], timeout=5000)
    finally:
        gc.set_threshold(*thresholds)
        collector.stop()
        if not was_enabled:
            gc.disable()
        collector.deleteLater()
