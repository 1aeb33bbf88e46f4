"""Disk use in the window: a project's (its own bytes, what it shares with uv's cache, its
snapshots) under its details, and uv's cache with "Clean unused" in Settings.

The walks (``core/disk.py``) run off the UI thread (``run_background``); a project's is read
again when a job that changes it ends. "Clean unused" is uv's own ``uv cache prune`` run as a job
on the app-wide "uv-cache" queue (``Kind.CACHE_PRUNE``): it never removes what a project uses.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from comfymanager.core.disk import CacheDisk, ProjectDisk, cache_disk, project_disk, prune_cache
from comfymanager.core.errors import ErrorInfo
from comfymanager.core.jobs import Job
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background

log = logging.getLogger(__name__)

CACHE_QUEUE = "uv-cache"
# jobs after which a project's disk use is read again
CHANGING = frozenset(
    {
        Kind.CREATE,
        Kind.INSTALL,
        Kind.REPAIR,
        Kind.REINSTALL,
        Kind.IMPORT,
        Kind.UPDATE,
        Kind.ROLLBACK,
        Kind.SNAPSHOT,
        Kind.ADOPT,
        Kind.PACK_ADD,
        Kind.PACK_REMOVE,
        Kind.PACK_UPDATE,
        Kind.CONFIG,
    }
)


def human(n: int) -> str:
    """1234567 -> "1.2 MB" (decimal units, as file managers show them)."""
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"  # not reached


def project_text(d: ProjectDisk) -> str:
    """ "Disk: 2.1 GB (300 MB its own, 1.8 GB shared through uv's cache); snapshots 45 KB"."""
    more = "+" if d.truncated else ""
    text = (
        f"Disk: {human(d.total_bytes)}{more} ({human(d.unique_bytes)} its own, "
        f"{human(d.shared_bytes)} shared through uv's cache); snapshots {human(d.snapshots_bytes)}"
    )
    if d.external_root:
        text += f". The install it runs ({d.external_root}) is not counted."
    return text


def cache_text(c: CacheDisk) -> str:
    more = "+" if c.truncated else ""
    return f"{human(c.bytes)}{more} in {c.files} files ({c.path})"


class ProjectDiskLabel(QLabel):
    """One line: the selected project's disk use. No signals."""

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.project = ""
        self.loads = 0  # finished reads (tests wait on it)
        self._asked = 0
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setAccessibleName("Disk use")
        self.setToolTip(
            "Its own: freed when the project is deleted. Shared: files uv hard-links from its "
            "cache (or another project), stored once on the disk."
        )
        app.jobs.job_finished.connect(self._on_jobs_job_finished)

    def set_project(self, project: str) -> None:
        if project != self.project:
            self.project = project
            self.reload()

    def reload(self) -> None:
        self._asked += 1
        asked, project, ctx = self._asked, self.project, self.app.core
        if not project:
            self.setText("")
            return
        self.setText("Disk: counting...")

        def job(report: Reporter, cancel: CancelToken) -> tuple[int, ProjectDisk]:
            return asked, project_disk(ctx, project, cancel)

        run_background(self, job, self._on_read_succeeded, self._on_read_failed, name="disk")

    def _on_read_succeeded(self, result: tuple[int, ProjectDisk]) -> None:
        asked, d = result
        if asked == self._asked:
            self.setText(project_text(d))
            self.loads += 1

    def _on_read_failed(self, err: ErrorInfo) -> None:
        self.setText(f"Disk: not counted ({err.message})")
        self.loads += 1

    def _on_jobs_job_finished(self, job: Job) -> None:
        if job.queue == self.project and job.kind in CHANGING:
            self.reload()


class CacheLine(QWidget):
    """uv's cache size with "Clean unused" (Settings). No signals."""

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.loads = 0
        self.note = ""  # how the last "Clean unused" ended
        self.label = QLabel("counting...")
        self.label.setWordWrap(True)
        self.label.setAccessibleName("uv cache size")
        self.clean = QPushButton("Clean unused")
        self.clean.setToolTip(
            "uv's own prune: removes cache entries nothing refers to any more. Projects keep "
            "every file they use; a rollback may download a package again."
        )
        self.clean.clicked.connect(self._on_clean_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.clean)
        app.jobs.job_finished.connect(self._on_jobs_job_finished)
        self.clean.setEnabled(not app.jobs.busy(CACHE_QUEUE))
        self.reload()

    def reload(self) -> None:
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> CacheDisk:
            return cache_disk(ctx, cancel)

        run_background(self, job, self._on_read_succeeded, self._on_read_failed, name="uv cache")

    def _on_read_succeeded(self, c: CacheDisk) -> None:
        self.label.setText(cache_text(c) + (f"; {self.note}" if self.note else ""))
        self.loads += 1

    def _on_read_failed(self, err: ErrorInfo) -> None:
        self.label.setText(f"not counted: {err.message}")
        self.loads += 1

    def _on_clean_clicked(self) -> None:
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> object:
            return prune_cache(ctx, report=report, cancel=cancel)

        self.app.jobs.submit(Kind.CACHE_PRUNE, CACHE_QUEUE, job)
        self.clean.setEnabled(False)
        self.label.setText("cleaning...")

    def _on_jobs_job_finished(self, job: Job) -> None:
        if job.queue != CACHE_QUEUE:
            return
        self.clean.setEnabled(True)
        if job.outcome == "succeeded":
            self.note = f"cleaning freed {human(getattr(job.result, 'freed', 0))}"
        elif job.outcome == "failed" and job.error is not None:
            self.note = f"cleaning failed: {job.error.message}"
        else:
            self.note = "cleaning cancelled"
        self.reload()
