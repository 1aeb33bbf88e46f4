""" "Update available" for the selected project, in the corner of its tabs.

``UpdateChecker`` runs ``update.check_updates`` (``git ls-remote`` of the ComfyUI source and the
packs' remotes, the registry; bounded by its timeout) off the UI thread, at most once an hour per
project unless asked ("Check now"); a check that fails is shown quietly as "could not check" with
the cause in the tooltip. ``UpdateBar`` shows the answer with "Update..." (the update dialog,
``ui/dialogs/update_dialog.py``), and how the last update job ended.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from comfymanager.core.errors import ComfyManagerError, ErrorInfo
from comfymanager.core.jobs import Job
from comfymanager.core.lifecycle.update import UpdateCheck, check_updates
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background

if TYPE_CHECKING:
    from comfymanager.ui.actions import ProjectActions

log = logging.getLogger(__name__)

CHECK_EVERY = 3600.0  # seconds between automatic checks of one project


def check_text(check: UpdateCheck | None, *, checking: bool) -> tuple[str, str]:
    """(label, tooltip) for a check's answer."""
    if checking:
        return "Checking for updates...", ""
    if check is None:
        return "", ""
    if check.error:
        return "Could not check for updates", check.error
    if not check.available:
        return "Up to date", f"ComfyUI {check.comfyui_current[:10]}; packs at their newest"
    parts = []
    if check.comfyui_available:
        parts.append(f"ComfyUI {check.comfyui_latest}")
    if check.packs:
        parts.append(f"{len(check.packs)} pack(s)")
    tip = "\n".join(f"{p.folder}: {p.old} -> {p.new}" for p in check.packs)
    return "Update available: " + ", ".join(parts), tip


class UpdateChecker(QObject):
    """Checks per project, remembered for the session.

    ``checked(str, object)``: the project and its ``UpdateCheck`` (or None while checking)."""

    checked = Signal(str, object)

    def __init__(self, app: AppContext, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.results: dict[str, UpdateCheck] = {}
        self.when: dict[str, float] = {}
        self.running: set[str] = set()
        self.clock = time.monotonic  # tests move it

    def check(self, project: str, *, force: bool = False) -> bool:
        """Start a check unless one runs or the last is younger than an hour; True if started."""
        if not project or project in self.running:
            return False
        last = self.when.get(project)
        if not force and last is not None and self.clock() - last < CHECK_EVERY:
            return False
        self.running.add(project)
        self.when[project] = self.clock()
        ctx = self.app.core

        def job(report: Reporter, cancel: CancelToken) -> UpdateCheck:
            try:
                return check_updates(ctx, project)
            except ComfyManagerError as exc:  # the project itself cannot be read
                return UpdateCheck(project, "", "", False, error=exc.message)

        run_background(
            self, job, self._on_check_succeeded, self._on_check_failed, name=f"updates {project}"
        )
        self.checked.emit(project, None)
        return True

    def _on_check_succeeded(self, result: UpdateCheck) -> None:
        self.running.discard(result.project)
        self.results[result.project] = result
        self.checked.emit(result.project, result)

    def _on_check_failed(self, err: ErrorInfo) -> None:
        log.warning("update check failed unexpectedly: %s", err.message)


class UpdateBar(QWidget):
    """The corner widget: the check's answer, "Check now" and "Update...". No signals."""

    def __init__(self, app: AppContext, ops: ProjectActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.ops = ops
        self.project = ""
        self.checker = UpdateChecker(app, self)
        self.label = QLabel()
        self.label.setAccessibleName("Updates")
        self.check_button = QPushButton("Check now")
        self.check_button.setFlat(True)
        self.update_button = QPushButton("Update...")
        self.check_button.clicked.connect(self._on_check_button_clicked)
        self.update_button.clicked.connect(self._on_update_button_clicked)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.check_button)
        layout.addWidget(self.update_button)
        self.checker.checked.connect(self._on_checker_checked)
        app.jobs.job_finished.connect(self._on_jobs_job_finished)
        self._show()

    def set_project(self, project: str) -> None:
        if project != self.project:
            self.project = project
            self._show()
        if project:
            self.checker.check(project)

    def _show(self) -> None:
        pid = self.project
        text, tip = check_text(self.checker.results.get(pid), checking=pid in self.checker.running)
        self.label.setText(text)
        self.label.setToolTip(tip)
        available = bool(pid) and (r := self.checker.results.get(pid)) is not None and r.available
        self.label.setStyleSheet("font-weight: bold" if available else "color: palette(mid)")
        self.setVisible(bool(pid))
        self.check_button.setEnabled(bool(pid) and pid not in self.checker.running)
        self.update_button.setEnabled(bool(pid) and not self.app.jobs.busy(pid))

    def _on_checker_checked(self, project: str, _: object) -> None:
        if project == self.project:
            self._show()

    def _on_check_button_clicked(self) -> None:
        self.checker.check(self.project, force=True)

    def _on_update_button_clicked(self) -> None:
        from comfymanager.ui.dialogs.update_dialog import UpdateDialog

        dialog = UpdateDialog(self.app, self.project, self)
        if dialog.exec() == UpdateDialog.DialogCode.Accepted and dialog.choice is not None:
            ref, latest, packs = dialog.choice
            self.ops.update(self.project, ref=ref, latest=latest, packs=packs)
            self._show()

    def _on_jobs_job_finished(self, job: Job) -> None:
        if job.kind in (Kind.UPDATE, Kind.ROLLBACK) and job.outcome == "succeeded":
            self.checker.check(job.queue, force=True)
        if job.queue == self.project:
            self._show()
