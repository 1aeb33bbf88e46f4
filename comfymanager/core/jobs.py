"""Job queues: one queue per project (two jobs never change one project at once), any number of
projects in parallel. The manager, not the widgets, decides what may start.

Signals (all carry the ``Job``):

- ``job_added(Job)``, ``job_started(Job)``;
- ``job_progress(Job, Progress)``, ``job_log(Job, str)``;
- ``job_finished(Job)``: ``job.outcome`` is "succeeded" | "failed" | "cancelled", with
  ``job.result`` or ``job.error`` set.
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from comfymanager.core.errors import ErrorInfo
from comfymanager.core.workers import JobFn, Worker, start_worker

log = logging.getLogger(__name__)
_ids = itertools.count(1)


@dataclass(eq=False)
class Job:
    queue: str  # project id (or "" for app-wide jobs)
    title: str  # "Create project 'x'", "Start 'x'"
    fn: JobFn
    id: int = field(default_factory=lambda: next(_ids))
    outcome: str = ""  # "" while queued/running
    result: Any = None
    error: ErrorInfo | None = None
    worker: Worker | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None and not self.outcome


class JobManager(QObject):
    """Queues per key; see the module docstring for the signals."""

    job_added = Signal(object)
    job_started = Signal(object)
    job_progress = Signal(object, object)
    job_log = Signal(object, str)
    job_finished = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queues: dict[str, deque[Job]] = {}
        self._running: dict[str, Job] = {}
        self._threads: dict[int, QThread] = {}

    def submit(self, queue: str, title: str, fn: JobFn) -> Job:
        job = Job(queue=queue, title=title, fn=fn)
        self._queues.setdefault(queue, deque()).append(job)
        self.job_added.emit(job)
        self._pump(queue)
        return job

    def busy(self, queue: str) -> bool:
        return queue in self._running or bool(self._queues.get(queue))

    def running_jobs(self) -> list[Job]:
        return list(self._running.values())

    def current(self, queue: str) -> Job | None:
        return self._running.get(queue)

    def cancel(self, job: Job) -> None:
        if job.worker is not None:
            job.worker.cancel()
            return
        q = self._queues.get(job.queue)
        if q and job in q:
            q.remove(job)
            job.outcome = "cancelled"
            self.job_finished.emit(job)

    def cancel_all(self) -> None:
        for q in self._queues.values():
            for job in list(q):
                self.cancel(job)
        for job in list(self._running.values()):
            self.cancel(job)

    def wait_all(self, timeout_ms: int = 30000) -> bool:
        """Block until running workers' threads end (used when quitting)."""
        ok = True
        for thread in list(self._threads.values()):
            ok = thread.wait(timeout_ms) and ok
        return ok

    def _pump(self, queue: str) -> None:
        if queue in self._running or not self._queues.get(queue):
            return
        job = self._queues[queue].popleft()
        worker = Worker(job.fn, name=job.title)
        job.worker = worker
        self._running[queue] = job
        worker.progress.connect(lambda p, j=job: self.job_progress.emit(j, p))
        worker.log.connect(lambda line, j=job: self.job_log.emit(j, line))
        worker.succeeded.connect(lambda r, j=job: self._on_worker_done(j, "succeeded", r, None))
        worker.failed.connect(lambda e, j=job: self._on_worker_done(j, "failed", None, e))
        worker.cancelled.connect(lambda j=job: self._on_worker_done(j, "cancelled", None, None))
        thread = start_worker(worker, self)
        self._threads[job.id] = thread
        thread.finished.connect(lambda j=job: self._threads.pop(j.id, None))
        self.job_started.emit(job)

    def _on_worker_done(self, job: Job, outcome: str, result: Any, error: Any) -> None:
        job.outcome, job.result, job.error = outcome, result, error
        job.worker = None
        self._running.pop(job.queue, None)
        self.job_finished.emit(job)
        self._pump(job.queue)
