"""The one owner of "Update available" in the window: the project list, the tray and the update
bar all ask it.

``UpdateWatch`` keeps each project's last answer (``core/lifecycle/update_cache``: read at start,
so a restart shows the last answer at once with its age; written after each check). After
``start()`` it checks in the background, one project at a time through ``run_background``:
first a few seconds after start, then whenever a project's answer is older than
``Settings.update_check_hours`` (0: only when asked). A failed check is retried with a back-off
(``CachedCheck.due_at``), never at every poll. ``check_now`` puts a project first (the "Check
now" button, a project selected that was never checked, the end of an update or rollback).

Signals:

- ``changed(str)``: a project's answer changed, its check started, or (each minute) its age
  grew (the project id).
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, QTimer, Signal

from comfymanager.core.context import CoreContext
from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.lifecycle import update_cache
from comfymanager.core.lifecycle.update import UpdateCheck
from comfymanager.core.lifecycle.update_cache import CachedCheck
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.core.text import counted
from comfymanager.ui.background import run_background

log = logging.getLogger(__name__)

TICK_MS = 60_000  # how often due checks are looked for
START_DELAY_MS = 5_000  # the first pass, after the window is up


def marker_text(check: UpdateCheck | None) -> str:
    """The list's and the tray's line: "Update available: v0.3.66" ("" when none)."""
    if check is None or check.error or not check.available:
        return ""
    parts = [check.comfyui_latest] if check.comfyui_available else []
    if check.packs:
        parts.append(counted(len(check.packs), "pack"))
    return "Update available: " + ", ".join(parts)


def age_text(seconds: float) -> str:
    """How long ago, in words: "just now", "5 min ago", "3 h ago", "2 days ago"."""
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 2 * 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


class UpdateWatch(QObject):
    """See the module docstring."""

    changed = Signal(str)

    def __init__(self, core: CoreContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.core = core
        self.entries: dict[str, CachedCheck] = update_cache.load(core.paths)
        self.running = ""  # the project being checked now
        self.queue: list[str] = []
        self.clock = time.time  # tests move it
        self.checks = 0  # finished checks (tests wait on it)
        self.stopped = False  # after stop(): nothing new starts (the app is quitting)
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._on_timer_timeout)
        self.first = QTimer(self)  # the first pass, a few seconds after start
        self.first.setSingleShot(True)
        self.first.setInterval(START_DELAY_MS)
        self.first.timeout.connect(self._on_timer_timeout)

    # --- asking --------------------------------------------------------------------------------
    def result(self, project: str) -> UpdateCheck | None:
        entry = self.entries.get(project)
        return entry.check if entry is not None else None

    def age(self, project: str) -> float | None:
        entry = self.entries.get(project)
        return entry.age(self.clock()) if entry is not None else None

    def checking(self, project: str) -> bool:
        return bool(project) and project == self.running

    def marker(self, project: str) -> str:
        return marker_text(self.result(project))

    @property
    def every(self) -> float:
        """Seconds between automatic checks of one project (0: never by itself)."""
        hours = getattr(self.core.settings, "update_check_hours", 6)
        return max(0.0, float(hours)) * 3600.0

    # --- running -------------------------------------------------------------------------------
    def start(self) -> None:
        """Check by itself from now on (the first pass a few seconds later)."""
        self.stopped = False
        if self.every > 0 and not self.timer.isActive():
            self.timer.start()
            self.first.start()

    def stop(self) -> None:
        """No more checks start (one running ends on its own; ``shutdown`` waits for it)."""
        self.stopped = True
        self.timer.stop()
        self.first.stop()
        self.queue.clear()

    def check_due(self) -> list[str]:
        """Queue every project whose answer is missing or older than the interval (or whose
        back-off has passed after a failure); returns the ones queued."""
        if self.every <= 0:
            return []
        projects, _broken = ProjectStore(self.core.paths).list()
        for gone in set(self.entries) - {p.id for p in projects}:  # deleted since
            self.forget(gone)
        now = self.clock()
        due = []
        for project in projects:
            entry = self.entries.get(project.id)
            if entry is None or now >= entry.due_at(self.every):
                due.append(project.id)
        for pid in due:
            if pid not in self.queue and pid != self.running:
                self.queue.append(pid)
        self._next()
        return due

    def check_now(self, project: str) -> bool:
        """Check ``project`` next, whatever its age; False when it is being checked now."""
        if not project or project == self.running:
            return False
        if project in self.queue:
            self.queue.remove(project)
        self.queue.insert(0, project)
        self._next()
        return True

    def check_if_unknown(self, project: str) -> bool:
        """A project shown that was never checked is checked now (the update bar's selection)."""
        if project and project not in self.entries and project not in self.queue:
            return self.check_now(project)
        return False

    def forget(self, project: str) -> None:
        if self.entries.pop(project, None) is not None:
            self.changed.emit(project)

    def _next(self) -> None:
        if self.running or not self.queue or self.stopped:
            return
        pid = self.queue.pop(0)
        self.running = pid
        ctx, entries, now = self.core, dict(self.entries), self.clock

        def job(report: Reporter, cancel: CancelToken) -> tuple[str, CachedCheck | None]:
            try:
                check = update_cache.check_project(ctx, pid)
            except ComfyManagerError as exc:  # check_updates turns most causes into .error
                check = UpdateCheck(pid, "", "", False, error=exc.message)
            if check is None:
                entries.pop(pid, None)
                entry = None
            else:
                entry = update_cache.record(entries.get(pid), check, now())
                entries[pid] = entry
            try:  # written here, off the UI thread; one check runs at a time, so one writer
                update_cache.save(ctx.paths, entries)
            except (ComfyManagerError, OSError) as exc:
                log.warning("update checks not saved: %s", exc)
            return pid, entry

        run_background(
            self, job, self._on_check_succeeded, self._on_check_failed, name=f"updates {pid}"
        )
        self.changed.emit(pid)

    def _on_check_succeeded(self, answer: tuple[str, CachedCheck | None]) -> None:
        pid, entry = answer
        if entry is None:
            self.entries.pop(pid, None)
        else:
            self.entries[pid] = entry
            if entry.check.error:
                log.info("update check of %s: %s", pid, entry.check.error)
        self._finish(pid)

    def _on_check_failed(self, err: ErrorInfo) -> None:
        log.warning("update check failed unexpectedly: %s", err.message)
        self._finish(self.running)

    def _finish(self, pid: str) -> None:
        self.running = ""
        self.checks += 1
        self.changed.emit(pid)
        self._next()

    def _on_timer_timeout(self) -> None:
        for pid in list(self.entries):  # the ages shown grew by a minute
            self.changed.emit(pid)
        self.check_due()
