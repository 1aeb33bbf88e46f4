"""The node verification in the window: its lines in the project details pane, and the job that
runs it in the background (``core.verify.verify_project`` on the project's queue).

Model downloads the check queues are handed to the UI-thread ``DownloadManager`` through a
queued signal, as the import does.
"""

from __future__ import annotations

import html
import logging
import time

from PySide6.QtCore import QObject, Qt, Signal

from comfymanager.core.errors import ComfyManagerError
from comfymanager.core.jobs import Job
from comfymanager.core.models.request import DownloadRequest
from comfymanager.core.notifier import Notice
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.verify import VerifyResult, last_result, verify_project
from comfymanager.ui.app_context import AppContext

log = logging.getLogger(__name__)

TITLE = "Verify nodes of '{}'"
MAX_LISTED = 6


def is_verify_job(job: Job | None, project: str) -> bool:
    return job is not None and job.title == TITLE.format(project)


def nodes_html(result: VerifyResult | None, *, running: bool) -> str:
    """ "all 23 present" or "2 missing: FixBroken (Pack failed to load: error)"."""
    if running:
        return "<i>checking in the project's own Python...</i>"
    if result is None:
        return "not checked yet"
    bad = result.missing
    if not bad:
        return f"all {len(result.nodes)} present"
    items = "".join(f"<li>{html.escape(n.sentence)}</li>" for n in bad[:MAX_LISTED])
    more = f"<li>and {len(bad) - MAX_LISTED} more</li>" if len(bad) > MAX_LISTED else ""
    return (
        f'<span style="color:#c0392b"><b>{len(bad)} missing</b></span> of {len(result.nodes)}:'
        f'<ul style="margin:0">{items}{more}</ul>'
    )


def models_html(result: VerifyResult | None, *, running: bool) -> str:
    if result is None or running:
        return ""
    text = html.escape(result.models_line())
    problems = [m for m in result.models if not m.ok]
    items = "".join(
        f"<li>{html.escape(m.key)}: {html.escape(m.status)}"
        f"{' (' + html.escape(m.detail) + ')' if m.detail else ''}</li>"
        for m in problems[:MAX_LISTED]
    )
    more = f"<li>and {len(problems) - MAX_LISTED} more</li>" if len(problems) > MAX_LISTED else ""
    return text + (f'<ul style="margin:0">{items}{more}</ul>' if items else "")


def checked_text(result: VerifyResult | None) -> str:
    if result is None or not result.checked_at:
        return ""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(result.checked_at))
    return f"checked {when} with ComfyUI {result.comfyui or '?'}"


class DownloadBridge(QObject):
    """Hands download requests from the job thread to the UI thread.

    Signals: ``requested(DownloadRequest, str requester)`` (queued to the UI thread)."""

    requested = Signal(object, str)

    def __init__(self, app: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.requested.connect(self._on_self_requested, Qt.ConnectionType.QueuedConnection)

    def enqueue(self, request: DownloadRequest, requester: str = "") -> object:
        self.requested.emit(request, requester)
        return None

    def _on_self_requested(self, request: object, requester: str) -> None:
        assert isinstance(request, DownloadRequest)
        try:
            self.app.downloads.add(request, requester)
        except ComfyManagerError as exc:
            self.app.notifier.notify(
                Notice("download-failed", f"Cannot download {request.name}", str(exc), requester)
            )


def submit_verify(app: AppContext, bridge: DownloadBridge, project: str) -> Job:
    """Run the verification as a job on the project's queue (the window stays responsive)."""
    ctx = app.core

    def job(report: Reporter, cancel: CancelToken) -> VerifyResult:
        return verify_project(ctx, project, report, cancel, enqueue_download=bridge.enqueue)

    return app.jobs.submit(project, TITLE.format(project), job)


def load_last(app: AppContext, project: str) -> VerifyResult | None:
    try:
        return last_result(app.core, project)
    except ComfyManagerError as exc:
        log.info("no verification shown for %s: %s", project, exc)
        return None
