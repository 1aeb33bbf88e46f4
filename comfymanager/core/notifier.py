"""The one way the core tells the user something outside a job's own progress and errors.

Core never opens dialogs. It calls ``notify`` (any thread); the UI connects once and shows the
notices (tray balloon, status bar). Notices sent before the UI is connected are buffered and
delivered on ``connect_ui``, so nothing said during start-up is lost.

Signal: ``notice(Notice)``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Signal


@dataclass(frozen=True)
class Notice:
    # ready | crashed | install-done | install-failed | download-done | download-failed | info
    kind: str
    title: str
    text: str
    project: str = ""
    at: float = field(default_factory=time.time)


class Notifier(QObject):
    notice = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._buffer: list[Notice] = []
        self._connected = False

    def notify(self, notice: Notice) -> None:
        with self._lock:
            if not self._connected:
                self._buffer.append(notice)
                return
        self.notice.emit(notice)

    def connect_ui(self, slot: Callable[[Notice], None]) -> None:
        self.notice.connect(slot)
        with self._lock:
            self._connected = True
            pending, self._buffer = self._buffer, []
        for n in pending:
            self.notice.emit(n)
