""" "Update available" for the selected project, in the corner of its tabs.

The answer comes from the window's one ``UpdateWatch`` (``ui/update_watch.py``: checks in the
background every few hours, answers kept across restarts); the bar shows it with its age, "Check
now" and "Update..." (the update dialog, ``ui/dialogs/update_dialog.py``). A check that failed
says so with its cause ("Could not check: ..."), never as a notice.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from comfymanager.core.jobs import Job
from comfymanager.core.lifecycle.update import UpdateCheck
from comfymanager.core.operations import Kind
from comfymanager.core.text import counted
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.update_watch import UpdateWatch, age_text

if TYPE_CHECKING:
    from comfymanager.ui.actions import ProjectActions

log = logging.getLogger(__name__)

RECHECK_AFTER = (Kind.UPDATE, Kind.ROLLBACK, Kind.PACK_UPDATE)  # versions changed: ask again
MAX_CAUSE = 60  # characters of a failed check's cause shown in the bar (all of it in the tooltip)


def short_cause(error: str) -> str:
    """The telling end of a failed check's error: git's own words ("Could not resolve host:
    github.com") rather than the command that failed."""
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    text = lines[0] if lines else "no answer"
    for marker in ("fatal: ", "error: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    if "': " in text:  # "unable to access 'URL/': Could not resolve host: ..."
        text = text.rsplit("': ", 1)[1]
    return text.strip() or "no answer"


def check_text(
    check: UpdateCheck | None, *, checking: bool, age: float | None = None
) -> tuple[str, str]:
    """(label, tooltip) for a check's answer; ``age``: seconds since it was asked."""
    if checking:
        return "Checking for updates...", ""
    if check is None:
        return "", ""
    ago = age_text(age) if age is not None else ""
    when = f" (checked {ago})" if ago else ""
    if check.error:
        cause = short_cause(check.error)
        half = (MAX_CAUSE - 1) // 2  # the middle goes (a long path), both ends say what
        short = cause if len(cause) <= MAX_CAUSE else f"{cause[:half]}\u2026{cause[-half:]}"
        return f"Could not check: {short}", f"Could not check for updates{when}: {check.error}"
    if not check.available:
        return (
            "Up to date" + when,
            f"ComfyUI {check.comfyui_current[:10]}; packs at their newest",
        )
    parts = []
    if check.comfyui_available:
        parts.append(f"ComfyUI {check.comfyui_latest}")
    if check.packs:
        parts.append(counted(len(check.packs), "pack"))
    tip = "\n".join(f"{p.folder}: {p.old} -> {p.new}" for p in check.packs)
    return "Update available: " + ", ".join(parts) + when, "\n".join(
        [*([tip] if tip else []), *([f"Checked {ago}"] if ago else [])]
    )


class UpdateBar(QWidget):
    """The corner widget: the check's answer, "Check now" and "Update...". No signals."""

    def __init__(self, app: AppContext, ops: ProjectActions, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.ops = ops
        self.project = ""
        assert app.updates is not None, "build_app_context makes the update watch"
        self.watch: UpdateWatch = app.updates
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
        self.watch.changed.connect(self._on_watch_changed)
        app.jobs.job_finished.connect(self._on_jobs_job_finished)
        self._show()

    def set_project(self, project: str) -> None:
        if project != self.project:
            self.project = project
            self._show()
        if project:
            self.watch.check_if_unknown(project)

    def _show(self) -> None:
        pid, watch = self.project, self.watch
        check = watch.result(pid) if pid else None
        text, tip = check_text(check, checking=watch.checking(pid), age=watch.age(pid))
        self.label.setText(text)
        self.label.setToolTip(tip)
        available = check is not None and check.available
        self.label.setStyleSheet("font-weight: bold" if available else "color: palette(mid)")
        self.setVisible(bool(pid))
        self.check_button.setEnabled(bool(pid) and not watch.checking(pid))
        self.update_button.setEnabled(bool(pid) and not self.app.jobs.busy(pid))

    def _on_watch_changed(self, project: str) -> None:
        if project == self.project:
            self._show()

    def _on_check_button_clicked(self) -> None:
        self.watch.check_now(self.project)

    def _on_update_button_clicked(self) -> None:
        from comfymanager.ui.dialogs.update_dialog import UpdateDialog

        dialog = UpdateDialog(self.app, self.project, self)
        if dialog.exec() == UpdateDialog.DialogCode.Accepted and dialog.choice is not None:
            ref, latest, packs = dialog.choice
            self.ops.update(self.project, ref=ref, latest=latest, packs=packs)
            self._show()

    def _on_jobs_job_finished(self, job: Job) -> None:
        if job.kind in RECHECK_AFTER and job.outcome == "succeeded":
            self.watch.check_now(job.queue)
        if job.queue == self.project:
            self._show()
