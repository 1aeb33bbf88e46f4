"""The one worker shape: a core function run on a QThread, reporting through fixed signals.

``Worker`` wraps ``fn(report, cancel) -> result``. Signals, in the order they can arrive:

- ``progress(Progress)``: throttled to ~10 a second by the caller's ``Throttle``;
- ``log(str)``: one line of tool output;
- ``succeeded(object)``: the function's return value;
- ``failed(ErrorInfo)``: any exception, turned into a readable ``ErrorInfo``;
- ``cancelled()``: the function raised ``Cancelled``;
- ``finished()``: always last, exactly once.

Nothing escapes ``run()``. ``start_worker`` runs a worker on a new thread and keeps both alive
until the thread has ended: ``_live`` is the one registry of live worker threads (jobs, downloads
and the window's background look-ups all start here); ``wait_workers`` waits for them.

The signals arrive on the thread that created the worker (the UI thread), whatever is connected
to them. The function runs in a ``_Runner`` that lives on the new thread and emits there; its
signals are connected to the worker's own, and the worker stays on the thread that created it, so
Qt queues each one there, in order. A slot of a QObject would be queued anyway, but PySide6
calls a plain callable (a lambda, a ``functools.partial``, pytest-qt's ``waitSignal`` blocker)
on the thread its sender lives on: when the worker itself lived on its thread, such a callable
ran there, and a Qt object it dropped (the blocker's timer) was deleted off its thread with its
timer still registered; the timer later fired into freed memory (the window tests' intermittent
SIGSEGV in ``QTimerInfoList::activateTimers``, see ``docs/RELIABILITY.md``).
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


class _Runner(QObject):
    """Runs the function on the new thread and emits there; its signals are connected to the
    ``Worker``'s, which re-emits them on the thread that created it. Holds the outcome."""

    progress = Signal(object)
    log = Signal(str)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, fn: JobFn, name: str, token: CancelToken) -> None:
        super().__init__()
        self.fn = fn
        self.name = name
        self.token = token
        self.result: Any = None
        self.error: ErrorInfo | None = None
        self.was_cancelled = False

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


class Worker(QObject):
    """Runs one job function on its thread. See the module docstring for the signals (they
    arrive on the thread that created the worker)."""

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
        self._runner = _Runner(fn, name, self.token)
        # signal to signal, the worker as receiver: queued to this thread when the runner emits
        # from its own, direct when run() is called here
        self._runner.progress.connect(self.progress)
        self._runner.log.connect(self.log)
        self._runner.succeeded.connect(self.succeeded)
        self._runner.failed.connect(self.failed)
        self._runner.cancelled.connect(self.cancelled)
        self._runner.finished.connect(self.finished)
        # queued after the re-emitted ``finished``: until it has run, the worker's last signals
        # may still wait in this thread's queue, and releasing the worker would drop them
        self.delivered = False
        self._runner.finished.connect(self._on_runner_finished)

    @property
    def result(self) -> Any:
        return self._runner.result

    @property
    def error(self) -> ErrorInfo | None:
        return self._runner.error

    @property
    def was_cancelled(self) -> bool:
        return self._runner.was_cancelled

    def cancel(self) -> None:
        self.token.cancel()

    def run(self) -> None:
        """Run the function on the calling thread (``start_worker`` runs it on a new one)."""
        self._runner.run()

    @Slot()
    def _on_runner_finished(self) -> None:
        self.delivered = True


# Every started worker and its thread stay referenced here until the thread has finished and the
# worker's last signal has been delivered: neither may be deleted while the thread runs (dropping
# the last Python reference from the UI thread, or a deleteLater racing the thread's end, crashed
# the interpreter), and the worker's queued signals go with it.
_live: dict[int, tuple[QThread, Worker]] = {}


def reap_finished() -> None:
    """Release workers whose threads have ended and whose signals have all been delivered
    (called on the UI thread)."""
    for key, (thread, worker) in list(_live.items()):
        if not shiboken6.isValid(thread):  # deleted with its parent (a manager going away)
            del _live[key]
        elif thread.isFinished() and worker.delivered:
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
    by a later ``reap_finished`` once the thread has ended. Call it on a thread with an event loop
    (the UI thread): the worker's signals are delivered there."""
    reap_finished()
    thread = QThread(parent)
    thread.setObjectName(f"worker:{worker.name}")
    runner = worker._runner
    runner.moveToThread(thread)  # the worker stays here: its signals arrive on this thread
    thread.started.connect(runner.run)
    # direct, from the runner: QThread.quit is thread-safe, and a queued call would need the UI
    # thread's event loop, which is blocked when quitting waits for the threads (a 30 s stall)
    runner.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    _live[id(thread)] = (thread, worker)
    thread.start()
    return thread


def progress_of(p: object) -> Progress:
    assert isinstance(p, Progress)
    return p
