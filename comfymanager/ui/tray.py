"""The system tray icon: idle / busy / needs attention / running at a glance, and a menu built
from current state.

The menu is rebuilt each time it opens (``aboutToShow``) from the project store and the run
monitor's snapshot: one submenu per project with Start / Stop / Open in browser, enabled by the
project's state, then "Show window" and "Quit". Every action only emits an intent
(``app.intents``); the main window decides what happens.

Signals:

- ``state_changed(str)``: the icon state became "idle", "busy", "attention" or "running"
  (``compute_state``: busy > attention > running > idle);
- ``message_shown(object)``: a balloon was shown (the ``Notice``), for history panes and tests.
- ``notice_clicked(str)``: the last balloon was clicked (its project id, "" for none); the window
  is shown too (``intents.show_window``).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from functools import partial

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QSystemTrayIcon

from comfymanager.core import operations as ops
from comfymanager.core.health import Health
from comfymanager.core.notifier import Notice
from comfymanager.core.projects import Project, ProjectStore
from comfymanager.core.run import runs
from comfymanager.core.run.runs import Status
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.models.project_list import STATE_KINDS
from comfymanager.ui.resources import tray_icon

log = logging.getLogger(__name__)

STATES = ("idle", "busy", "running", "attention")
FAILURE_KINDS = ("crashed", "install-failed", "download-failed")


def activation_shows_window(reason: QSystemTrayIcon.ActivationReason, os_name: str) -> bool:
    """Whether a click on the icon shows the window. On macOS a click on a menu bar item opens
    its menu (Qt reports it as Trigger): showing the window too would do two things at once, so
    there only a double click does; elsewhere a left click or a double click does."""
    reasons = QSystemTrayIcon.ActivationReason
    if os_name == "darwin":
        return reason == reasons.DoubleClick
    return reason in (reasons.Trigger, reasons.DoubleClick)


class Tray(QObject):
    """See the module docstring for what it shows and the signals it sends."""

    state_changed = Signal(str)
    message_shown = Signal(object)
    notice_clicked = Signal(str)

    def __init__(
        self, app: AppContext, parent: QObject | None = None, *, os_name: str | None = None
    ) -> None:
        super().__init__(parent)
        self.app = app
        self.os_name = os_name or sys.platform
        self.state = ""
        self.menu = QMenu()
        self.menu.setAccessibleName("comfymanager tray menu")
        self.icon = QSystemTrayIcon(self)
        self.icon.setContextMenu(self.menu)
        self.menu.aboutToShow.connect(self._on_menu_about_to_show)
        self.icon.activated.connect(self._on_icon_activated)
        self.last_notice: Notice | None = None
        self.icon.messageClicked.connect(self._on_icon_message_clicked)
        app.monitor.health_changed.connect(self._on_monitor_status_changed)
        app.monitor.status_changed.connect(self._on_monitor_status_changed)
        app.jobs.job_started.connect(self._on_jobs_changed)
        app.jobs.job_finished.connect(self._on_jobs_changed)
        app.downloads.item_changed.connect(self._on_downloads_item_changed)
        app.downloads.all_done.connect(self.refresh_state)
        self.refresh_state()
        self.rebuild_menu()

    # ---- public API ------------------------------------------------------------------------

    @staticmethod
    def available() -> bool:
        """Whether the desktop has a tray (system tray / status notifier host)."""
        return QSystemTrayIcon.isSystemTrayAvailable()

    def show(self) -> None:
        self.icon.show()

    def hide(self) -> None:
        self.icon.hide()

    def dispose(self) -> None:
        """Hide the icon (and any balloon it shows) and drop the menu; call before deleting."""
        self.icon.hide()
        self.icon.setContextMenu(None)  # type: ignore[arg-type]
        self.menu.deleteLater()

    def visible(self) -> bool:
        return self.icon.isVisible()

    def set_state(self, state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown tray state {state!r}")
        if state == self.state:
            return
        self.state = state
        icon = tray_icon(state)
        # macOS menu bar icons are template images: drawn in the bar's own colour (dark mode,
        # highlighted); states then differ by shape (the badge), not by colour
        icon.setIsMask(self.os_name == "darwin")
        self.icon.setIcon(icon)
        self.state_changed.emit(state)

    def show_message(self, notice: Notice, timeout_ms: int = 8000) -> None:
        """Show ``notice`` as a tray balloon / desktop notification."""
        kind = (
            QSystemTrayIcon.MessageIcon.Warning
            if notice.kind in FAILURE_KINDS
            else QSystemTrayIcon.MessageIcon.Information
        )
        self.last_notice = notice
        if QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(notice.title, notice.text, kind, timeout_ms)
        self.message_shown.emit(notice)

    def compute_state(self) -> tuple[str, str]:
        """(icon state, tooltip) from the monitor, the job queues and the downloads.

        Priority: busy (work is under way: its end may change the rest) > attention (a
        project needs the user; it outranks running, which is what the user already knows
        they started) > running > idle."""
        snapshot = self.app.monitor.snapshot()
        running = sorted(p for p, s in snapshot.items() if ops.live(s.state))
        installing = [p for p, s in snapshot.items() if s.state == "installing"]
        jobs = self.app.jobs.running_jobs()
        downloads = self.app.downloads.running()
        attention = sorted(p for p, h in self.app.monitor.healths().items() if self._needs(h))
        parts = []
        if attention:
            parts.append(f"Needs attention ({len(attention)}): {', '.join(attention)}")
        if running:
            parts.append(f"running: {', '.join(running)}")
        if jobs:
            parts.append(f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} in progress")
        if downloads:
            parts.append(f"{downloads} download{'s' if downloads != 1 else ''}")
        tooltip = "comfymanager - " + ("; ".join(parts) if parts else "nothing running")
        if jobs or downloads or installing:
            return "busy", tooltip
        if attention:
            return "attention", tooltip
        return ("running" if running else "idle"), tooltip

    def _needs(self, health: Health) -> bool:
        """Open problems worth showing (not while running or installing)."""
        if health.busy or not any(p.kind not in STATE_KINDS for p in health.problems):
            return False
        st = self.app.monitor.snapshot().get(health.project)
        return not (st is not None and (ops.live(st.state) or st.state == "installing"))

    @Slot()
    def refresh_state(self) -> None:
        state, tooltip = self.compute_state()
        self.icon.setToolTip(tooltip)
        self.set_state(state)

    def rebuild_menu(self) -> None:
        """Fill the menu from the projects as they are now."""
        self.menu.clear()
        store = ProjectStore(self.app.core.paths)
        try:
            projects, broken = store.list()
        except OSError as exc:
            log.warning("tray: cannot list projects: %s", exc)
            projects, broken = [], []
        snapshot = self.app.monitor.snapshot()
        if not projects and not broken:
            empty = self.menu.addAction("No projects yet")
            empty.setEnabled(False)
            self._add(self.menu, "New project...", self.app.intents.new_project.emit)
        for project in sorted(projects, key=lambda p: p.id.lower()):
            self._add_project(project, snapshot.get(project.id))
        for bad in broken:
            action = self.menu.addAction(f"{bad.id} (cannot be read)")
            action.setEnabled(False)
        self.menu.addSeparator()
        show = self._add(self.menu, "Show window", self.app.intents.show_window.emit)
        font = show.font()
        font.setBold(True)
        show.setFont(font)
        self.menu.addSeparator()
        self._add(self.menu, "Quit", self.app.intents.quit.emit)

    # ---- building ---------------------------------------------------------------------------

    def _status(self, project: Project, known: Status | None) -> Status:
        if known is not None:
            return known
        try:  # the monitor has not polled this project yet: read its files (no HTTP probe)
            return runs.status(self.app.core, project, probe_http=False)
        except Exception as exc:  # the menu must open whatever a project's files say
            log.info("tray: status of %s unknown: %s", project.id, exc)
            return Status(project.id, "stopped")

    def _add_project(self, project: Project, known: Status | None) -> None:
        st = self._status(project, known)
        queued = self.app.jobs.busy(project.id)
        state = "installing" if self.app.jobs.installing(project.id) else st.state
        label = runs.LABELS.get(state, state)
        health = self.app.monitor.healths().get(project.id)
        if health is not None and not self.app.jobs.installing(project.id) and self._needs(health):
            n = sum(1 for p in health.problems if p.kind not in STATE_KINDS)
            label = f"{label}, needs attention ({n})"
        sub = self.menu.addMenu(f"{project.id} - {label}")
        sub.setAccessibleName(f"Project {project.id}, {label}")
        start = self._add(sub, "Start", partial(self.app.intents.start.emit, project.id))
        start.setEnabled(ops.can_start(state, queued))
        stop = self._add(sub, "Stop", partial(self.app.intents.stop.emit, project.id))
        stop.setEnabled(ops.can_stop(state))
        browse = self._add(
            sub, "Open in browser", partial(self.app.intents.open_browser.emit, project.id)
        )
        browse.setEnabled(ops.can_browse(state))
        marker = self.app.updates.marker(project.id) if self.app.updates is not None else ""
        if marker:  # "Update available: v0.3.66" (issue 14): the window's update dialog has it
            sub.addSeparator()
            sub.setTitle(f"{sub.title()} - update available")
            self._add(sub, marker + "...", partial(self.app.intents.show_window.emit))

    def _add(self, menu: QMenu, text: str, slot: Callable[[], object]) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(lambda _checked=False, s=slot: s())
        return action

    # ---- slots ------------------------------------------------------------------------------

    @Slot()
    def _on_menu_about_to_show(self) -> None:
        self.rebuild_menu()

    @Slot(QSystemTrayIcon.ActivationReason)
    def _on_icon_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if activation_shows_window(reason, self.os_name):
            self.app.intents.show_window.emit()

    @Slot()
    def _on_icon_message_clicked(self) -> None:
        self.app.intents.show_window.emit()
        last = self.last_notice
        self.notice_clicked.emit(last.project if last is not None else "")

    @Slot(object)
    def _on_monitor_status_changed(self, _status: object) -> None:
        self.refresh_state()

    @Slot(object)
    def _on_jobs_changed(self, _job: object) -> None:
        self.refresh_state()

    @Slot(str)
    def _on_downloads_item_changed(self, _item: str) -> None:
        self.refresh_state()
