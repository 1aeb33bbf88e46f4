"""Notices for the user: what happened while the window was hidden or busy elsewhere.

``NotificationRouter`` does two things:

1. It turns background events into ``Notice`` objects sent through ``app.notifier``:
   - a job titled "Create project 'X'", "Repair 'X'" or "Reinstall 'X'" finished: install done,
     or install failed with the error's sentence (cancelled jobs say nothing);
   - a job titled "Start 'X'" succeeded: ComfyUI is ready (with its address); failed: it did not
     start;
   - the run monitor saw a project go from starting/running to crashed;
   - downloads finished (gathered over a short moment into one notice) or failed.
2. It shows every notice (also those the core sent before the UI was up: the notifier buffers
   them) as a tray balloon when a tray is shown, else through the ``fallback`` callable (the
   main window's status bar), else in the log at INFO.

Signal: ``shown(object)``: a notice was delivered (``Notice``), whatever the route.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from comfymanager.core.errors import ErrorInfo, NotFound
from comfymanager.core.jobs import Job
from comfymanager.core.models import queue as q
from comfymanager.core.notifier import Notice
from comfymanager.core.run.runs import Status
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.tray import Tray

log = logging.getLogger(__name__)

JOB_TITLE = re.compile(r"^(?P<verb>Create project|Repair|Reinstall|Start) '(?P<project>.+)'$")
INSTALL_VERBS = ("Create project", "Repair", "Reinstall")
CRASH_AFTER_FAILED_START_S = 60.0  # a failed start already said it: no second "crashed"
DOWNLOAD_GATHER_MS = 1500


def job_kind(job: Job) -> tuple[str, str] | None:
    """("install" | "start", project) for the job titles the router knows, else None."""
    m = JOB_TITLE.match(job.title)
    if not m:
        return None
    return ("install" if m["verb"] in INSTALL_VERBS else "start"), m["project"]


def _sentence(error: ErrorInfo | None) -> str:
    if error is None:
        return "See the project's log for details."
    return f"{error.message} {error.fix}" if error.fix else error.message


def notice_for_job(job: Job, url: str | None = None) -> Notice | None:
    """The notice a finished job deserves (None for cancelled or unrelated jobs)."""
    kind = job_kind(job)
    if kind is None or job.outcome not in ("succeeded", "failed"):
        return None
    what, project = kind
    ok = job.outcome == "succeeded"
    if what == "install":
        verb = "installed" if job.title.startswith("Create") else "repaired"
        if ok:
            return Notice(
                "install-done",
                f"'{project}' is {verb}",
                "Start it from the tray menu or the main window.",
                project,
            )
        return Notice(
            "install-failed", f"Installing '{project}' failed", _sentence(job.error), project
        )
    if ok:
        where = f"ComfyUI is running at {url}." if url else "ComfyUI is running."
        return Notice("ready", f"'{project}' is ready", where, project)
    return Notice("crashed", f"'{project}' did not start", _sentence(job.error), project)


class NotificationRouter(QObject):
    """See the module docstring."""

    shown = Signal(object)

    def __init__(
        self,
        app: AppContext,
        tray: Tray | None = None,
        fallback: Callable[[Notice], None] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.app = app
        self.tray = tray
        self.fallback = fallback
        self._states: dict[str, str] = {p: s.state for p, s in app.monitor.snapshot().items()}
        self._failed_start: dict[str, float] = {}
        self._download_states = {i.id: i.state for i in app.downloads.items()}
        self._finished_downloads: list[str] = []
        self._gather = QTimer(self)
        self._gather.setSingleShot(True)
        self._gather.setInterval(DOWNLOAD_GATHER_MS)
        self._gather.timeout.connect(self._on_gather_timeout)
        app.jobs.job_finished.connect(self._on_jobs_job_finished)
        app.monitor.status_changed.connect(self._on_monitor_status_changed)
        app.downloads.item_changed.connect(self._on_downloads_item_changed)
        app.downloads.failed.connect(self._on_downloads_failed)
        app.notifier.connect_ui(self._on_notifier_notice)

    def deliver(self, notice: Notice) -> None:
        """Show ``notice`` now by the best route available."""
        if self.tray is not None and self.tray.visible():
            self.tray.show_message(notice)
        elif self.fallback is not None:
            self.fallback(notice)
        else:
            log.info("notice: %s - %s", notice.title, notice.text)
        self.shown.emit(notice)

    # ---- slots ------------------------------------------------------------------------------

    @Slot(object)
    def _on_notifier_notice(self, notice: Notice) -> None:
        self.deliver(notice)

    @Slot(object)
    def _on_jobs_job_finished(self, job: Job) -> None:
        kind = job_kind(job)
        url = None
        if kind and kind[0] == "start":
            if job.outcome == "failed":
                self._failed_start[kind[1]] = time.monotonic()
            result = job.result
            if isinstance(result, Status):
                url = result.url
            elif isinstance(result, str):
                url = result
            else:
                known = self.app.monitor.snapshot().get(kind[1])
                url = known.url if known else None
        notice = notice_for_job(job, url)
        if notice is not None:
            self.app.notifier.notify(notice)

    @Slot(object)
    def _on_monitor_status_changed(self, st: Status) -> None:
        before = self._states.get(st.project)
        self._states[st.project] = st.state
        if st.state != "crashed" or before not in ("starting", "running"):
            return
        failed_at = self._failed_start.get(st.project)
        if failed_at is not None and time.monotonic() - failed_at < CRASH_AFTER_FAILED_START_S:
            return
        current = self.app.jobs.current(st.project)
        if current is not None and current.title.startswith("Start "):
            return  # the start job reports its own failure
        text = st.message or "ComfyUI stopped unexpectedly."
        self.app.notifier.notify(
            Notice(
                "crashed", f"'{st.project}' crashed", f"{text} Its log has the details.", st.project
            )
        )

    @Slot(str)
    def _on_downloads_item_changed(self, item_id: str) -> None:
        try:
            item = self.app.downloads.item(item_id)
        except NotFound:  # removed meanwhile
            self._download_states.pop(item_id, None)
            return
        before = self._download_states.get(item_id)
        self._download_states[item_id] = item.state
        if item.state == q.DONE and before != q.DONE:
            self._finished_downloads.append(item.request.name)
            self._gather.start()

    @Slot(str, object)
    def _on_downloads_failed(self, item_id: str, info: ErrorInfo) -> None:
        try:
            item = self.app.downloads.item(item_id)
            name, state = item.request.name, item.state
        except NotFound:
            name, state = "a model", q.FAILED
        self._download_states[item_id] = state
        if state == q.PAUSED:  # the connection was lost: paused, resumable
            notice = Notice("download-paused", f"Download of {name} paused", _sentence(info))
        else:
            notice = Notice("download-failed", f"Download of {name} failed", _sentence(info))
        self.app.notifier.notify(notice)

    @Slot()
    def _on_gather_timeout(self) -> None:
        names, self._finished_downloads = self._finished_downloads, []
        if not names:
            return
        if len(names) == 1:
            title, text = "Download finished", f"{names[0]} is in the model store."
        else:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            title, text = f"{len(names)} downloads finished", f"{shown} are in the model store."
        self.app.notifier.notify(Notice("download-done", title, text))
