"""``DownloadManager``: the persistent queue run by workers, at most N transfers at once.

Lives on the Qt thread; every queue change happens there (worker signals arrive queued), so the
queue file needs no locking. ``add`` may be called from any thread (an import or a verification
job queues its own downloads): off the manager's thread it hands the request over and waits for
the item id, so a refused request raises in the caller and ends up in its result.
A download job is ``download_file`` wrapped in the one ``Worker``.
Pause cancels the worker and keeps the ``.part``; cancel deletes it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError, ErrorInfo, InvalidInput
from comfymanager.core.log import redact
from comfymanager.core.models import queue as q
from comfymanager.core.models.folders import safe_store_path
from comfymanager.core.models.hosts import Endpoints
from comfymanager.core.models.index import ModelIndex
from comfymanager.core.models.queue import DownloadQueue, QueueItem
from comfymanager.core.models.request import DownloadRequest
from comfymanager.core.progress import CancelToken, Progress, Reporter
from comfymanager.core.secrets import Secrets
from comfymanager.core.workers import Worker, start_worker

if TYPE_CHECKING:  # the engine (requests, huggingface_hub) loads when the first download runs
    from comfymanager.core.models.download import DownloadResult

log = logging.getLogger(__name__)


class _Job(QObject):
    """Binds one worker to its queue item; lives on the manager's thread."""

    def __init__(self, manager: DownloadManager, item_id: str, worker: Worker) -> None:
        super().__init__(manager)
        self.manager = manager
        self.item_id = item_id
        self.worker = worker
        self.qthread: QThread | None = None
        self.intent = ""  # "paused" or "cancelled" when the user stopped it
        worker.progress.connect(self._on_worker_progress)
        worker.succeeded.connect(self._on_worker_succeeded)
        worker.failed.connect(self._on_worker_failed)
        worker.cancelled.connect(self._on_worker_cancelled)
        worker.finished.connect(self._on_worker_finished)

    @Slot(object)
    def _on_worker_progress(self, p: object) -> None:
        if isinstance(p, Progress):
            self.manager._job_progress(self.item_id, p)

    @Slot(object)
    def _on_worker_succeeded(self, result: object) -> None:
        from comfymanager.core.models.download import DownloadResult

        assert isinstance(result, DownloadResult)
        self.manager._job_done(self.item_id, result)

    @Slot(object)
    def _on_worker_failed(self, info: object) -> None:
        assert isinstance(info, ErrorInfo)
        self.manager._job_failed(self.item_id, info)

    @Slot()
    def _on_worker_cancelled(self) -> None:
        self.manager._job_cancelled(self.item_id, self.intent)

    @Slot()
    def _on_worker_finished(self) -> None:
        self.manager._job_finished(self.item_id)


ADD_TIMEOUT_S = 30.0  # a UI thread that does not answer for this long is stuck or quitting


class _CrossThreadAdd:
    """One ``add`` asked from another thread: the request, then the answer or the error."""

    def __init__(self, request: DownloadRequest, requester: str) -> None:
        self.request, self.requester = request, requester
        self.item_id = ""
        self.error: BaseException | None = None
        self.abandoned = False
        self.lock = threading.Lock()
        self.done = threading.Event()


class DownloadManager(QObject):
    """Runs the download queue.

    Signals:
        item_changed(str id): an item's state, size or error changed (not on every byte).
        progress(Progress): byte progress of a running item; ``key`` is the item id.
        all_done(): nothing is running or queued any more.
        failed(str id, ErrorInfo): an item failed, or paused because the connection was lost
            (its state says which); its ``error`` holds the sentence too.
    """

    item_changed = Signal(str)
    progress = Signal(object)
    all_done = Signal()
    failed = Signal(str, object)
    _add_requested = Signal(object)  # a _CrossThreadAdd, queued to the manager's thread

    def __init__(
        self,
        *,
        store: Path,
        queue_file: Path,
        endpoints: Endpoints,
        secrets: Secrets | None = None,
        parallel: int = 3,
        index: ModelIndex | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.endpoints = endpoints
        self.secrets = secrets
        self.index = index if index is not None else ModelIndex.load(store)
        self.queue = DownloadQueue.load(queue_file)
        self._parallel = max(1, parallel)
        self._jobs: dict[str, _Job] = {}
        self._stopping = False
        self.queue.save()
        self._add_requested.connect(self._on_add_requested, Qt.ConnectionType.QueuedConnection)
        self._schedule()

    @classmethod
    def from_context(
        cls, ctx: CoreContext, secrets: Secrets | None, parent: QObject | None = None
    ) -> DownloadManager:
        return cls(
            store=ctx.store,
            queue_file=ctx.paths.downloads_file,
            endpoints=Endpoints.from_settings(ctx.settings),
            secrets=secrets,
            parallel=ctx.settings.parallel_downloads,
            parent=parent,
        )

    # ---- public API ----------------------------------------------------------------------

    def add(self, request: DownloadRequest, requester: str = "") -> str:
        """Queue ``request`` (or join the same file's item); returns the item id. Safe from any
        thread: from a worker it waits (at most ``ADD_TIMEOUT_S``) for the manager's thread."""
        if QThread.currentThread() == self.thread():
            return self._add(request, requester)
        call = _CrossThreadAdd(request, requester)
        self._add_requested.emit(call)
        if not call.done.wait(ADD_TIMEOUT_S):
            with call.lock:
                if not call.done.is_set():
                    call.abandoned = True
                    raise ComfyManagerError(
                        f"The download queue did not take {request.name} in time.",
                        "Queue it again from the Models window, or retry the operation.",
                    )
        if call.error is not None:
            raise call.error
        return call.item_id

    @Slot(object)
    def _on_add_requested(self, call: _CrossThreadAdd) -> None:
        with call.lock:
            if call.abandoned:
                return
            try:
                call.item_id = self._add(call.request, call.requester)
            except Exception as exc:  # handed to the calling thread, raised there
                call.error = exc
            finally:
                call.done.set()

    def _add(self, request: DownloadRequest, requester: str) -> str:
        item, start = self.queue.add(request, requester)
        if item.state == q.DONE and not Path(item.path).is_file():
            item, start = self.queue.update(item.id, state=q.QUEUED, done=0), True
        self._changed(item.id)
        if start:
            self._schedule()
        return item.id

    def pause(self, item_id: str) -> None:
        item = self.queue.get(item_id)
        job = self._jobs.get(item_id)
        if job is not None:
            job.intent = q.PAUSED
            job.worker.cancel()
        elif item.state == q.QUEUED:
            self.queue.update(item_id, state=q.PAUSED)
            self._changed(item_id)

    def resume(self, item_id: str) -> None:
        item = self.queue.get(item_id)
        if item.state in (q.PAUSED, q.FAILED, q.CANCELLED):
            self.queue.update(item_id, state=q.QUEUED, error="")
            self._changed(item_id)
            self._schedule()

    retry = resume

    def cancel(self, item_id: str) -> None:
        """Stop and delete the partial data (nothing is kept)."""
        item = self.queue.get(item_id)
        job = self._jobs.get(item_id)
        if job is not None:
            job.intent = q.CANCELLED
            job.worker.cancel()
            return
        if item.state != q.DONE:
            self._discard(item)
            self.queue.update(item_id, state=q.CANCELLED, done=0)
            self._changed(item_id)

    def remove(self, item_id: str) -> None:
        """Forget a finished, failed or cancelled item."""
        if item_id in self._jobs:
            raise InvalidInput("That download is running.", "Cancel it first.")
        self.queue.remove(item_id)
        self.queue.save()
        self.item_changed.emit(item_id)

    def set_parallel(self, n: int) -> None:
        self._parallel = max(1, min(16, n))
        self._schedule()

    def items(self) -> list[QueueItem]:
        return self.queue.items()

    def item(self, item_id: str) -> QueueItem:
        return self.queue.get(item_id)

    def totals(self) -> tuple[int, int]:
        """Bytes done and bytes expected over items not cancelled (unknown sizes count 0)."""
        done = total = 0
        for i in self.queue.items():
            if i.state == q.CANCELLED:
                continue
            done += i.done
            total += i.total or 0
        return done, total

    def running(self) -> int:
        return len(self._jobs)

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop running transfers, keeping their parts: they resume on the next start."""
        for job in list(self._jobs.values()):
            job.intent = q.QUEUED
            job.worker.cancel()
        self._stopping = True
        # QThread.quit is thread-safe and ends the thread's loop once run() returns; no event
        # processing here (PySide6 6.12 on CPython 3.11 mis-counts references in
        # processEvents, which aborts the interpreter after a few thousand calls)
        for job in list(self._jobs.values()):
            if job.qthread is not None:
                job.qthread.quit()
        for job in list(self._jobs.values()):
            if job.qthread is not None:
                job.qthread.wait(timeout_ms)
        for item_id in list(self._jobs):
            self.queue.update(item_id, state=q.QUEUED)
        self._jobs.clear()
        self.queue.save()

    # ---- internals -----------------------------------------------------------------------

    def _changed(self, item_id: str) -> None:
        self.queue.save_later()
        self.item_changed.emit(item_id)

    def _discard(self, item: QueueItem) -> None:
        try:
            target = safe_store_path(self.store, item.request.folder, item.request.name)
        except InvalidInput as exc:  # a link out of the store appeared: nothing to delete there
            log.warning("not deleting the partial file of %s: %s", item.request.name, exc.message)
            return
        from comfymanager.core.models.part import discard_part

        discard_part(target.with_name(target.name + ".part"))

    def _schedule(self) -> None:
        if self._stopping:
            return
        for item in self.queue.queued():
            if len(self._jobs) >= self._parallel:
                break
            if item.id in self._jobs:
                continue  # its previous transfer is still winding down; started when it ends
            self._start(item)
        if not self._jobs and not self.queue.queued():
            self.all_done.emit()

    def _start(self, item: QueueItem) -> None:
        request, item_id = item.request, item.id
        store, secrets, endpoints, index = self.store, self.secrets, self.endpoints, self.index

        from comfymanager.core.models.download import download_file

        def job(report: Reporter, cancel: CancelToken) -> DownloadResult:
            return download_file(
                request,
                store=store,
                secrets=secrets,
                endpoints=endpoints,
                report=report,
                cancel=cancel,
                index=index,
                key=item_id,
            )

        worker = Worker(job, name=item_id)
        bound = _Job(self, item_id, worker)
        self._jobs[item_id] = bound
        self.queue.update(item_id, state=q.DOWNLOADING, error="", total=request.size)
        self._changed(item_id)
        bound.qthread = start_worker(worker, parent=self)

    def _job_progress(self, item_id: str, p: Progress) -> None:
        if item_id not in self._jobs:
            return
        item = self.queue.get(item_id)
        state = q.VERIFYING if p.stage in ("verifying", "checking partial file") else item.state
        if p.unit == "bytes" and p.stage == "downloading":
            item = self.queue.update(item_id, done=p.done, total=p.total, state=q.DOWNLOADING)
        if state != item.state:
            self.queue.update(item_id, state=state)
            self._changed(item_id)
        self.progress.emit(p)

    def _job_done(self, item_id: str, result: DownloadResult) -> None:
        self.queue.update(
            item_id,
            state=q.DONE,
            done=result.size,
            total=result.size,
            path=str(result.path),
            error="",
        )
        self._mark_used(item_id, result)
        self._changed(item_id)

    def _mark_used(self, item_id: str, result: DownloadResult) -> None:
        """The projects that asked for the file are recorded as its users in the store index."""
        item = self.queue.get(item_id)
        if not item.requesters:
            return
        for f in self.index.files():
            if f.path == result.path:
                self.index.set_used_by(f.folder, f.name, [*f.used_by, *item.requesters])
                self.index.save()
                return

    def _job_failed(self, item_id: str, info: ErrorInfo) -> None:
        # what the queue file and the window keep: masked, even a bug's traceback holding a URL
        info = dataclasses.replace(
            info,
            message=redact(info.message),
            fix=redact(info.fix) if info.fix else info.fix,
            details=redact(info.details),
        )
        # a lost connection pauses the download (resume continues it); anything else fails it
        state = q.PAUSED if info.kind == "ConnectionLost" else q.FAILED
        self.queue.update(item_id, state=state, error=str(info))
        self._changed(item_id)
        self.failed.emit(item_id, info)

    def _job_cancelled(self, item_id: str, intent: str) -> None:
        item = self.queue.get(item_id)
        if intent == q.CANCELLED:
            self._discard(item)
            self.queue.update(item_id, state=q.CANCELLED, done=0)
        elif intent == q.QUEUED:
            self.queue.update(item_id, state=q.QUEUED)
        else:
            self.queue.update(item_id, state=q.PAUSED)
        self._changed(item_id)

    def _job_finished(self, item_id: str) -> None:
        job = self._jobs.pop(item_id, None)
        if job is not None:
            job.deleteLater()
        self._schedule()
