"""Job queues: one queue per project (two jobs never change one project at once), any number of
projects in parallel. The manager, not the widgets, decides what may start.

``submit(kind, project, fn)`` queues ``fn(report, cancel)`` on ``project``'s queue; the job's
title comes from its ``Kind`` (``core/operations.py``), and whoever reacts to a job's end looks at
``job.kind``, never at the title.

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

from PySide6.QtCore import QObject, QThread, Signal, Slot

from comfymanager.core.errors import ErrorInfo
from comfymanager.core.operations import Kind
from comfymanager.core.workers import JobFn, Worker, start_worker

log = logging.getLogger(__name__)
_ids = itertools.count(1)


@dataclass(eq=False)
class Job:
    queue: str  # project id (or an app-wide queue: "store", "cleanup")
    kind: Kind
    title: str  # derived from the kind: "Create project 'x'", "Launch 'x'"
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

    def submit(self, kind: Kind, project: str, fn: JobFn, *, subject: str = "") -> Job:
        """Queue ``fn`` on ``project``'s queue as a job of ``kind`` (titled from the kind)."""
        job = Job(queue=project, kind=kind, title=kind.title(project, subject), fn=fn)
        self._queues.setdefault(project, deque()).append(job)
        self.job_added.emit(job)
        self._pump(project)
        return job

    def busy(self, queue: str) -> bool:
        return queue in self._running or bool(self._queues.get(queue))

    def running_jobs(self) -> list[Job]:
        return list(self._running.values())

    def current(self, queue: str) -> Job | None:
        return self._running.get(queue)

    def kinds(self, queue: str) -> list[Kind]:
        """The kinds of the running and queued jobs of ``queue`` (running first)."""
        running = [self._running[queue].kind] if queue in self._running else []
        return running + [j.kind for j in self._queues.get(queue, ())]

    def installing(self, queue: str) -> bool:
        """A job that (re)builds the project is running or queued on ``queue``."""
        return any(k.installs for k in self.kinds(queue))

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
        # the worker's signals go to the manager's own slots (queued to its thread, in order), so
        # the queues change on one thread only; the slot finds the job from the sender
        worker.progress.connect(self._on_worker_progress)
        worker.log.connect(self._on_worker_log)
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        worker.cancelled.connect(self._on_worker_cancelled)
        thread = start_worker(worker, self)
        self._threads[job.id] = thread
        thread.finished.connect(self._on_thread_finished)
        self.job_started.emit(job)

    def _job_of_sender(self) -> Job | None:
        sender = self.sender()
        for job in self._running.values():
            if job.worker is sender:
                return job
        return None

    @Slot(object)
    def _on_worker_progress(self, p: object) -> None:
        if (job := self._job_of_sender()) is not None:
            self.job_progress.emit(job, p)

    @Slot(str)
    def _on_worker_log(self, line: str) -> None:
        if (job := self._job_of_sender()) is not None:
            self.job_log.emit(job, line)

    @Slot(object)
    def _on_worker_succeeded(self, result: object) -> None:
        if (job := self._job_of_sender()) is not None:
            self._on_worker_done(job, "succeeded", result, None)

    @Slot(object)
    def _on_worker_failed(self, error: object) -> None:
        if (job := self._job_of_sender()) is not None:
            self._on_worker_done(job, "failed", None, error)

    @Slot()
    def _on_worker_cancelled(self) -> None:
        if (job := self._job_of_sender()) is not None:
            self._on_worker_done(job, "cancelled", None, None)

    @Slot()
    def _on_thread_finished(self) -> None:
        sender = self.sender()
        for job_id, thread in list(self._threads.items()):
            if thread is sender:
                del self._threads[job_id]

    def _on_worker_done(self, job: Job, outcome: str, result: Any, error: Any) -> None:
        job.outcome, job.result, job.error = outcome, result, error
        job.worker = None
        self._running.pop(job.queue, None)
        self.job_finished.emit(job)
        self._pump(job.queue)
