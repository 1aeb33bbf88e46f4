"""The one way window code runs something in the background (style point 3; Anki's ``QueryOp``).

``run_background(receiver, fn, on_result, on_error)`` runs ``fn(report, cancel)`` in the one
worker shape (``core.workers``) and calls back on ``receiver``'s thread. Callbacks that are slots
of a QObject are connected to it directly (Qt queues them to its thread and drops them once it is
deleted); other callables go through a relay parented to ``receiver``, so a late result is
dropped instead of reaching a deleted widget either way. Threads are kept alive by the one
registry in ``core.workers`` until they end; ``wait_background`` waits for them when the app
quits.

Project work (create, launch, import...) is not this: it goes through ``JobManager`` so it is
serialised per project and shown in the activity pane. This is for look-ups a dialog needs (the
versions list, hardware detection, ``uv --version``, an import's analysis).
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Slot

from comfymanager.core.errors import ErrorInfo
from comfymanager.core.workers import JobFn, Worker, start_worker, wait_workers


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


def wait_background(timeout_ms: int = 10000) -> bool:
    """Wait for background work still running (called when the app quits)."""
    return wait_workers(timeout_ms)
