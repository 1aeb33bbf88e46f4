"""The update dialog: which ComfyUI to go to (the latest release or any tag: older is a
downgrade), packs too or not, and the list of what changes (``update.plan_update``: ComfyUI's
commits, requirement changes, each pack old -> new) before anything happens.

The tags come from ``git ls-remote`` of the project's source and the plan from a fetch in its
checkout, both off the UI thread (``run_background``). "Update" closes the dialog with the
choice; the update itself is a job (``ProjectActions.update``) that takes a snapshot first and
rolls back by itself when a step fails.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.errors import ErrorInfo
from comfymanager.core.install import sources
from comfymanager.core.lifecycle.update import UpdatePlan, plan_update
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background

log = logging.getLogger(__name__)

LATEST = ""  # the combo's data for "latest release"


class UpdateDialog(QDialog):
    """See the module docstring. ``choice``: (ref, latest, packs) once accepted. No signals."""

    def __init__(self, app: AppContext, project: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.project = project
        self.choice: tuple[str, bool, bool] | None = None
        self.source = ""
        self.plan: UpdatePlan | None = None
        self.plans = 0  # plans shown (tests wait on it)
        self._asked = 0
        self.setWindowTitle(f"Update '{project}'")
        self.ref = QComboBox()
        self.ref.addItem("Latest release", LATEST)
        self.ref.setAccessibleName("ComfyUI version")
        self.packs = QCheckBox("Update the node packs too")
        self.packs.setChecked(True)
        self.current = QLabel()
        self.changes = QPlainTextEdit()
        self.changes.setReadOnly(True)
        self.changes.setAccessibleName("What changes")
        self.changes.setMinimumSize(560, 240)
        self.note = QLabel(
            "A snapshot is taken first; if a step fails (checkout, requirements, a pack that no "
            "longer loads), the project goes back to it by itself."
        )
        self.note.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Update")
        self.ok.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Now:", self.current)
        form.addRow("Go to:", self.ref)
        form.addRow("", self.packs)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("What changes:"))
        layout.addWidget(self.changes, 1)
        layout.addWidget(self.note)
        layout.addWidget(self.buttons)
        self._fill_current()
        self.ref.currentIndexChanged.connect(self._on_choice_changed)
        self.packs.toggled.connect(self._on_choice_changed)
        self._load_tags()
        self._on_choice_changed()

    def _fill_current(self) -> None:
        try:
            project = ProjectStore(self.app.core.paths).load(self.project)
        except Exception as exc:
            self.current.setText(str(exc))
            return
        self.current.setText(
            f"ComfyUI {project.comfyui_ref or '?'} ({project.comfyui_commit[:10]})"
        )
        self.source = project.comfyui_source

    def _load_tags(self) -> None:
        source = self.source
        if not source:
            return

        def job(report: Reporter, cancel: CancelToken) -> list[str]:
            return sources.list_remote(source, cancel).releases()

        run_background(self, job, self._on_tags_succeeded, self._on_tags_failed, name="update tags")

    def _on_tags_succeeded(self, tags: list[str]) -> None:
        for tag in tags:
            self.ref.addItem(tag, tag)

    def _on_tags_failed(self, err: ErrorInfo) -> None:
        self.ref.setToolTip(f"The releases could not be listed: {err.message}")

    def _on_choice_changed(self, *_: object) -> None:
        ref = str(self.ref.currentData() or "")
        packs = self.packs.isChecked()
        self.choice = None
        self.plan = None
        self.ok.setEnabled(False)
        self.changes.setPlainText("Working out what changes...")
        self._asked += 1
        asked, ctx, project = self._asked, self.app.core, self.project

        def job(report: Reporter, cancel: CancelToken) -> tuple[int, UpdatePlan]:
            return asked, plan_update(
                ctx, project, ref=ref, latest=not ref, packs=packs, cancel=cancel
            )

        run_background(self, job, self._on_plan_succeeded, self._on_plan_failed, name="plan")

    def _on_plan_succeeded(self, result: tuple[int, UpdatePlan]) -> None:
        asked, plan = result
        if asked != self._asked:
            return
        self.plan = plan
        self.changes.setPlainText("\n".join(plan.lines()))
        self.ok.setEnabled(plan.changes)
        self.ok.setText("Downgrade" if plan.downgrade else "Update")
        if not plan.changes:
            self.changes.appendPlainText("\nNothing to update.")
        self.plans += 1

    def _on_plan_failed(self, err: ErrorInfo) -> None:
        self.plan = None
        text = err.message + (f"\n{err.fix}" if err.fix else "")
        self.changes.setPlainText(f"What would change cannot be worked out:\n{text}")
        self.ok.setEnabled(False)
        self.plans += 1

    def accept(self) -> None:
        if self.plan is None or not self.plan.changes:
            return
        ref = str(self.ref.currentData() or "")
        self.choice = (ref, not ref, self.packs.isChecked())
        super().accept()
