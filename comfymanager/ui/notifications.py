"""Notices for the user: what happened while the window was hidden or busy elsewhere.

``NotificationRouter`` does two things:

1. It turns background events that are no job's outcome into ``Notice`` objects sent through
   ``app.notifier`` (a job's notice comes from ``ui/outcomes.py``, once):
   - the run monitor saw a project go from starting/running to crashed (not while a launch job
     of it runs, nor right after a launch failed: those said it already);
   - downloads finished (gathered over a short moment into one notice) or failed.
2. It shows every notice (also those the core sent before the UI was up: the notifier buffers
   them) as a tray balloon when a tray is shown, else through the ``fallback`` callable (the
   main window's status bar), else in the log at INFO.

Clicking a tray notice shows the window with the notice's project selected (``select``: the
window's ``select``, taken from the parent when not given). A crash notice names its cause (the
last error line of ComfyUI's output).

Signal: ``shown(object)``: a notice was delivered (``Notice``), whatever the route.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal, Slot

from comfymanager.core.errors import ErrorInfo, NotFound
from comfymanager.core.models import queue as q
from comfymanager.core.notifier import Notice
from comfymanager.core.operations import Kind
from comfymanager.core.run.runs import Status
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.outcomes import Outcomes
from comfymanager.ui.tray import Tray

log = logging.getLogger(__name__)

CRASH_AFTER_FAILED_START_S = 60.0  # a failed start already said it: no second "crashed"
DOWNLOAD_GATHER_MS = 1500


def _sentence(error: ErrorInfo | None) -> str:
    if error is None:
        return "See the project's log for details."
    return f"{error.message} {error.fix}" if error.fix else error.message


class NotificationRouter(QObject):
    """See the module docstring."""

    shown = Signal(object)

    def __init__(
        self,
        app: AppContext,
        tray: Tray | None = None,
        fallback: Callable[[Notice], None] | None = None,
        parent: QObject | None = None,
        outcomes: Outcomes | None = None,
        select: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.app = app
        self.tray = tray
        self.select = select or getattr(parent, "select", None)
        if tray is not None:
            tray.notice_clicked.connect(self._on_tray_notice_clicked)
        self.fallback = fallback
        self.outcomes = outcomes
        self._states: dict[str, str] = {p: s.state for p, s in app.monitor.snapshot().items()}
        self._download_states = {i.id: i.state for i in app.downloads.items()}
        self._finished_downloads: list[str] = []
        self._gather = QTimer(self)
        self._gather.setSingleShot(True)
        self._gather.setInterval(DOWNLOAD_GATHER_MS)
        self._gather.timeout.connect(self._on_gather_timeout)
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
    def _on_monitor_status_changed(self, st: Status) -> None:
        before = self._states.get(st.project)
        self._states[st.project] = st.state
        if st.state != "crashed" or before not in ("starting", "running"):
            return
        outcomes = self.outcomes
        if outcomes and outcomes.launch_failed_since(st.project, CRASH_AFTER_FAILED_START_S):
            return
        current = self.app.jobs.current(st.project)
        if current is not None and current.kind is Kind.LAUNCH:
            return  # the launch job reports its own failure
        from comfymanager.ui.panes.projects import crash_cause

        text = st.message or "ComfyUI stopped unexpectedly."
        cause = crash_cause(st.last_lines)
        more = f" {cause}" if cause else " Its log has the details."
        self.app.notifier.notify(
            Notice("crashed", f"'{st.project}' crashed", f"{text}{more}", st.project)
        )

    @Slot(str)
    def _on_tray_notice_clicked(self, project: str) -> None:
        if project and self.select is not None:
            self.select(project)

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
