"""Garbage collection on the UI thread only.

Python's cycle collector runs on whichever thread happens to allocate when a generation fills
up. When that is a worker thread and the garbage holds a Qt object (a widget, a QObject owned by
Python), the object is deleted off the thread it lives in, and Qt crashes. So the app turns the
automatic collector off and this object collects on the UI thread, on a timer, with the same
generation thresholds CPython would use. Reference counting still frees everything that is not a
cycle at once.

Signals: none. The timer's slot is ``_on_timer_timeout``.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

INTERVAL_MS = 500


class MainThreadGC(QObject):
    """Collects cyclic garbage on the thread that created it (the UI thread)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = INTERVAL_MS) -> None:
        super().__init__(parent)
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._on_timer_timeout)
        self._timer.start()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold; objects found."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        generation = -1
        for gen in range(3):
            if counts[gen] > thresholds[gen]:
                generation = gen
        return gc.collect(generation) if generation >= 0 else 0

    def stop(self) -> None:
        """Back to Python's own collector (at quit, once the UI thread is done)."""
        self._timer.stop()
        gc.enable()

    def _on_timer_timeout(self) -> None:
        self.collect_due()
