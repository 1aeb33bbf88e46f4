"""The one worker shape: a core function run on a QThread, reporting through fixed signals.

``Worker`` wraps ``fn(report, cancel) -> result``. Signals, in the order they can arrive:

- ``progress(Progress)``: throttled to ~10 a second by the caller's ``Throttle``;
- ``log(str)``: one line of tool output;
- ``succeeded(object)``: the function's return value;
- ``failed(ErrorInfo)``: any exception, turned into a readable ``ErrorInfo``;
- ``cancelled()``: the function raised ``Cancelled``;
- ``finished()``: always last, exactly once.

Nothing escapes ``run()``. ``start_worker`` moves a worker to a new thread and keeps both alive
until the thread has ended: ``_live`` is the one registry of live worker threads (jobs, downloads
and the window's background look-ups all start here); ``wait_workers`` waits for them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from comfymanager.core.errors import Cancelled, ErrorInfo
from comfymanager.core.progress import CancelToken, Progress, Reporter, Throttle

log = logging.getLogger(__name__)

JobFn = Callable[[Reporter, CancelToken], Any]


class Worker(QObject):
    """Runs one job function on its thread. See the module docstring for the signals."""

    progress = Signal(object)
    log = Signal(str)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: JobFn, name: str = "") -> None:
        super().__init__()
        self.fn = fn
        self.name = name
        self.token = CancelToken()
        self.result: Any = None
        self.error: ErrorInfo | None = None
        self.was_cancelled = False

    def cancel(self) -> None:
        self.token.cancel()

    @Slot()
    def run(self) -> None:
        throttle = Throttle(self.progress.emit)
        reporter = Reporter(progress=throttle, log=self.log.emit)
        try:
            self.result = self.fn(reporter, self.token)
        except Cancelled:
            self.was_cancelled = True
            self.cancelled.emit()
        except BaseException as exc:  # nothing escapes run()
            self.error = ErrorInfo.from_exception(exc)
            if self.error.kind in ("Exception",) or not self.error.details:
                log.info("job %s failed: %s", self.name, self.error.message)
            else:
                log.warning(
                    "job %s failed: %s\n%s", self.name, self.error.message, self.error.details
                )
            self.failed.emit(self.error)
        else:
            self.succeeded.emit(self.result)
        finally:
            self.finished.emit()


# Every started worker and its thread stay referenced here until the thread has finished:
# neither may be deleted while the thread runs (dropping the last Python reference from the UI
# thread, or a deleteLater racing the thread's end, crashed the interpreter).
_live: dict[int, tuple[QThread, Worker]] = {}


def reap_finished() -> None:
    """Release workers whose threads have ended (called on the UI thread)."""
    for key, (thread, _worker) in list(_live.items()):
        if not shiboken6.isValid(thread):  # deleted with its parent (a manager going away)
            del _live[key]
        elif thread.isFinished():
            thread.setParent(None)
            del _live[key]


def wait_workers(timeout_ms: int = 10000) -> bool:
    """Wait until every started worker's thread has ended (the app quitting); False when one is
    still running after ``timeout_ms`` (each thread gets the full time)."""
    ok = True
    for thread, _worker in list(_live.values()):
        if shiboken6.isValid(thread) and not thread.wait(timeout_ms):
            ok = False
    reap_finished()
    return ok


def start_worker(worker: Worker, parent: QObject | None = None) -> QThread:
    """Run ``worker`` on a new QThread; the thread quits after ``finished`` and both are released
    by a later ``reap_finished`` once the thread has ended."""
    reap_finished()
    thread = QThread(parent)
    thread.setObjectName(f"worker:{worker.name}")
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    # direct: QThread.quit is thread-safe, and a queued call would need the UI thread's event
    # loop, which is blocked when quitting waits for the threads (a 30 s stall before this)
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    _live[id(thread)] = (thread, worker)
    thread.start()
    return thread


def progress_of(p: object) -> Progress:
    assert isinstance(p, Progress)
    return p
