"""The one way window code waits for something without blocking the UI thread (style point 3;
Anki's ``QueryOp``). Two helpers, one rule for which to use:

- ``run_coroutine(receiver, coro, on_result, on_error)``: a wait that is pure I/O and small (a
  subprocess that answers at once, a local socket or HTTP probe) is a coroutine on the qasync
  event loop, the Qt loop itself (``app.py`` runs it; ``tests/qt/conftest.py`` installs one per
  test). No thread is started: the task runs between the window's events. Today: About's
  ``uv --version``.
- ``run_background(receiver, fn, on_result, on_error)``: anything that blocks or computes (core
  functions: pygit2, file walks, JSON parsing, uv runs, ``requests``, the node database) runs
  ``fn(report, cancel)`` on a worker thread in the one worker shape (``core.workers``). The core
  stays synchronous and Qt-free; wrapping its blocking calls in coroutines would only move them
  onto the UI thread. So the import's analysis, model sizes and suggestions (``requests`` in
  core), the pack and update look-ups (pygit2, files), hardware detection and disk walks stay
  here. Neither helper: the launch's readiness probe belongs to the launch operation (a job),
  and the single-instance hand-over (``single_instance.py``) waits before the window and the
  loop exist, after which a second launch exits; the first instance's server is event-driven.

Both call back on ``receiver``'s thread and drop a late result once ``receiver`` is deleted: a
relay parented to ``receiver`` carries the callbacks (bound methods are held weakly, so the relay
does not keep its parent alive in a cycle), and a coroutine whose receiver goes away is
cancelled. A failure reaches ``on_error`` as an ``ErrorInfo`` either way (the same display as
before). Threads are kept alive by the one registry in ``core.workers`` until they end and tasks
by ``_tasks`` until they are done; ``wait_background`` waits for the threads and cancels the
tasks when the app quits.

Project work (create, launch, import...) is neither: it goes through ``JobManager`` so it is
serialised per project and shown in the activity pane. These are for look-ups a dialog needs (the
versions list, hardware detection, ``uv --version``, an import's analysis).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import Callable, Coroutine
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Slot

from comfymanager.core.errors import ErrorInfo
from comfymanager.core.workers import JobFn, Worker, start_worker, wait_workers

log = logging.getLogger(__name__)

# asyncio keeps only weak references to tasks: the running ones are held here until done
_tasks: set[asyncio.Task[Any]] = set()


def _weak(fn: Callable[..., None] | None) -> Callable[[], Callable[..., None] | None]:
    """A weak reference to a callback: a bound method of the receiver would make the relay (its
    child) keep the receiver alive in a cycle that the garbage collector may break on any
    thread."""
    if fn is None:
        return lambda: None
    if inspect.ismethod(fn):
        return weakref.WeakMethod(fn)
    return lambda: fn


def _bound_to_qobject(fn: object) -> bool:
    return inspect.ismethod(fn) and isinstance(fn.__self__, QObject)


class _Relay(QObject):
    """Lives with the receiver (its child): calls back there, and not after it is deleted."""

    def __init__(
        self,
        receiver: QObject,
        on_result: Callable[[Any], None],
        on_error: Callable[[ErrorInfo], None] | None,
    ) -> None:
        super().__init__(receiver)
        self.on_result = _weak(on_result)
        self.on_error = _weak(on_error)

    @Slot(object)
    def _on_worker_succeeded(self, result: object) -> None:
        if (fn := self.on_result()) is not None:
            fn(result)

    @Slot(object)
    def _on_worker_failed(self, error: ErrorInfo) -> None:
        if (fn := self.on_error()) is not None:
            fn(error)


def run_background(
    receiver: QObject,
    fn: JobFn,
    on_result: Callable[[Any], None],
    on_error: Callable[[ErrorInfo], None] | None = None,
    *,
    name: str = "",
) -> Worker:
    """Run ``fn(report, cancel)`` on a worker thread; see the module docstring. Returns the
    worker (``worker.cancel()`` asks it to stop)."""
    worker = Worker(fn, name=name)
    if _bound_to_qobject(on_result) and (on_error is None or _bound_to_qobject(on_error)):
        # a slot of a QObject: Qt queues the call to its thread and drops it once it is deleted
        worker.succeeded.connect(on_result)
        if on_error is not None:
            worker.failed.connect(on_error)
    else:
        relay = _Relay(receiver, on_result, on_error)
        worker.succeeded.connect(relay._on_worker_succeeded)
        worker.failed.connect(relay._on_worker_failed)
    start_worker(worker)
    return worker


def qt_event_loop() -> asyncio.AbstractEventLoop:
    """The qasync loop the window runs on (running, or set and about to run)."""
    import qasync

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    qt_loop: bool = isinstance(loop, qasync.QEventLoop)
    if not qt_loop:  # a plain asyncio loop would never run: nothing drives it
        raise RuntimeError("run_coroutine needs the qasync event loop (app.py sets it)")
    return loop


def run_coroutine(
    receiver: QObject,
    coro: Coroutine[Any, Any, Any],
    on_result: Callable[[Any], None],
    on_error: Callable[[ErrorInfo], None] | None = None,
    *,
    name: str = "",
) -> asyncio.Task[Any]:
    """Run ``coro`` as a task on the window's qasync loop; see the module docstring. The task is
    cancelled when ``receiver`` is deleted, and its result or failure is dropped then."""
    relay = _Relay(receiver, on_result, on_error)
    task = qt_event_loop().create_task(coro, name=name or None)
    _tasks.add(task)
    relay.destroyed.connect(lambda *_: task.cancel())

    def done(t: asyncio.Task[Any]) -> None:
        _tasks.discard(t)
        if t.cancelled():
            return
        exc = t.exception()
        if exc is None:
            result, error = t.result(), None
        else:
            result, error = None, ErrorInfo.from_exception(exc)
            log.info("%s failed: %s", name or "coroutine", error.message)
        if not shiboken6.isValid(relay):  # the receiver, and the relay with it, are gone
            return
        if error is None:
            relay._on_worker_succeeded(result)
        else:
            relay._on_worker_failed(error)
        relay.deleteLater()  # its ``destroyed`` then cancels a task already done: nothing

    task.add_done_callback(done)
    return task


def wait_background(timeout_ms: int = 10000) -> bool:
    """Wait for background threads still running and cancel pending coroutines (called when the
    app quits): nothing calls back into widgets after this."""
    for task in list(_tasks):
        task.cancel()
    return wait_workers(timeout_ms)
