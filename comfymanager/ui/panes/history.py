"""A project's history in the window: its snapshots (when, why, what changed, note), newest
first, with "Roll back to this" and "Take snapshot...".

The list is read off the UI thread (``run_background``: ``snapshots.list_snapshots`` reads the
snapshot files only) and read again when a job of the project ends. Rolling back and taking a
snapshot are jobs on the project's queue (``ProjectActions.rollback`` / ``snapshot``); the line
under the list says how the last one ended, with the cause and the fix when it failed.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.errors import ErrorInfo
from comfymanager.core.jobs import Job
from comfymanager.core.lifecycle.snapshots import Snapshot, changes_between, list_snapshots
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background

if TYPE_CHECKING:
    from comfymanager.ui.actions import ProjectActions

log = logging.getLogger(__name__)

HISTORY_KINDS = frozenset({Kind.ROLLBACK, Kind.SNAPSHOT, Kind.UPDATE})
# every job that may have taken a snapshot before changing the project
REFRESH_KINDS = frozenset(
    {
        Kind.ROLLBACK,
        Kind.SNAPSHOT,
        Kind.UPDATE,
        Kind.REPAIR,
        Kind.REINSTALL,
        Kind.IMPORT,
        Kind.LAUNCH,
        Kind.PACK_ADD,
        Kind.PACK_REMOVE,
        Kind.PACK_UPDATE,
        Kind.PACK_ENABLE,
        Kind.PACK_DISABLE,
    }
)
MAX_LINES = 3
REASONS = {
    "manual": "taken by hand",
    "changed while running": "packs changed while it ran",
}


def when_text(created: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(created))


def reason_text(snap: Snapshot) -> str:
    return REASONS.get(snap.reason, f"before {snap.reason}")


def short_changes(changed: tuple[str, ...]) -> str:
    """The first MAX_LINES changes, one a line, then "and N more" (the tooltip has them all)."""
    if not changed:
        return "nothing"
    shown = list(changed[:MAX_LINES])
    if len(changed) > MAX_LINES:
        shown.append(f"and {len(changed) - MAX_LINES} more")
    return "\n".join(shown)


def history_rows(snaps: list[Snapshot]) -> list[tuple[str, str, tuple[str, ...], str]]:
    """(when, reason, what changed, note) per snapshot, newest first as given: what changed is
    since the snapshot before it (the next one in the list)."""
    rows = []
    for i, snap in enumerate(snaps):
        older = snaps[i + 1] if i + 1 < len(snaps) else None
        changed = changes_between(older, snap)
        rows.append((when_text(snap.created), reason_text(snap), changed, snap.note))
    return rows


def ask_rollback(parent: QWidget, project: str, snap: Snapshot) -> bool:
    """True when the user confirms going back to ``snap`` (tests replace this)."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Roll back")
    box.setText(f"Roll '{project}' back to the snapshot of {when_text(snap.created)}?")
    box.setInformativeText(
        f"ComfyUI goes back to {snap.comfyui_commit[:10]}, the node packs and the environment "
        "to what they were then. The state now is kept as a snapshot first, so this can be "
        "undone. The project must be stopped."
    )
    go = box.addButton("Roll back", QMessageBox.ButtonRole.AcceptRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is go


def ask_note(parent: QWidget, project: str) -> str | None:
    """The note for a snapshot taken by hand; None when cancelled (tests replace this)."""
    text, ok = QInputDialog.getText(
        parent, "Take snapshot", f"A note for this snapshot of '{project}' (optional):"
    )
    return text.strip() if ok else None


def outcome_text(job: Job) -> str:
    """One line on how a history job ended."""
    if job.outcome == "succeeded":
        if job.kind is Kind.ROLLBACK:
            return f"Rolled back to {getattr(job.result, 'snapshot_id', 'the snapshot')}."
        if job.kind is Kind.UPDATE:
            if not getattr(job.result, "applied", False):
                return "Nothing to update."
            return f"Updated; the way back is snapshot {job.result.snapshot_id}."
        return "Snapshot taken."
    if job.outcome == "cancelled":
        return "Cancelled."
    err: ErrorInfo | None = job.error
    what = {Kind.ROLLBACK: "Rollback", Kind.UPDATE: "Update"}.get(job.kind, "Snapshot")
    if err is None:
        return f"{what} failed: see the project's log."
    return f"{what} failed: {err.message}" + (f" {err.fix}" if err.fix else "")


class HistoryPane(QWidget):
    """The snapshots of one project; see the module docstring. No signals."""

    def __init__(
        self, app: AppContext, actions: ProjectActions, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.app = app
        self.ops = actions
        self.project = ""
        self.snaps: list[Snapshot] = []
        self.loads = 0  # finished reads (tests wait on it)
        self._asked = 0
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["When", "Why", "Changed since the one before", "Note"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(False)  # one line per change, up to MAX_LINES
        self.tree.setAccessibleName("Snapshots")
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel("No snapshots yet: one is taken before every change.")
        self.empty.setWordWrap(True)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.rollback_button = QPushButton("Roll back to this")
        self.snapshot_button = QPushButton("Take snapshot...")
        self.rollback_button.clicked.connect(self._on_rollback_button_clicked)
        self.snapshot_button.clicked.connect(self._on_snapshot_button_clicked)
        self.tree.itemSelectionChanged.connect(self._enable)
        buttons = QHBoxLayout()
        buttons.addWidget(self.rollback_button)
        buttons.addWidget(self.snapshot_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        app.jobs.job_finished.connect(self._on_jobs_job_finished)
        app.jobs.job_added.connect(self._on_jobs_job_changed)
        self._enable()

    # --- loading -------------------------------------------------------------------------------
    def set_project(self, project: str) -> None:
        if project == self.project:
            return
        self.project = project
        self.status.clear()
        self.reload()

    def reload(self) -> None:
        project, ctx = self.project, self.app.core
        self._asked += 1
        asked = self._asked
        if not project:
            self._show(asked, [])
            return

        def read(report: Reporter, cancel: CancelToken) -> tuple[int, list[Snapshot]]:
            return asked, list_snapshots(ctx, project)

        run_background(
            self,
            read,
            self._on_read_succeeded,
            self._on_read_failed,
            name=f"history {project}",
        )

    def _on_read_succeeded(self, result: tuple[int, list[Snapshot]]) -> None:
        self._show(*result)

    def _on_read_failed(self, err: ErrorInfo) -> None:
        self._show(self._asked, [])
        self.status.setText(f"Could not read the snapshots: {err.message}")

    def _show(self, asked: int, snaps: list[Snapshot]) -> None:
        if asked != self._asked:  # another project was chosen meanwhile
            return
        self.snaps = list(snaps)
        self.tree.clear()
        for snap, (when, why, changed, note) in zip(
            self.snaps, history_rows(self.snaps), strict=True
        ):
            item = QTreeWidgetItem([when, why, short_changes(changed), note])
            item.setData(0, Qt.ItemDataRole.UserRole, snap.id)
            item.setToolTip(0, snap.id)
            item.setToolTip(2, "\n".join(changed))
            self.tree.addTopLevelItem(item)
        self.empty.setVisible(not self.snaps)
        self.tree.setVisible(bool(self.snaps))
        self.loads += 1
        self._enable()

    # --- actions -------------------------------------------------------------------------------
    def selected(self) -> Snapshot | None:
        items = self.tree.selectedItems()
        if not items:
            return None
        sid = items[0].data(0, Qt.ItemDataRole.UserRole)
        return next((s for s in self.snaps if s.id == sid), None)

    def _busy(self) -> bool:
        return bool(self.project) and self.app.jobs.busy(self.project)

    def _enable(self) -> None:
        free = bool(self.project) and not self._busy()
        self.rollback_button.setEnabled(free and self.selected() is not None)
        self.snapshot_button.setEnabled(free)

    def _on_rollback_button_clicked(self) -> None:
        snap = self.selected()
        if snap is None or not ask_rollback(self, self.project, snap):
            return
        self.status.setText(f"Rolling back to the snapshot of {when_text(snap.created)}...")
        self.ops.rollback(self.project, snap.id)

    def _on_snapshot_button_clicked(self) -> None:
        note = ask_note(self, self.project)
        if note is None:
            return
        self.status.setText("Taking a snapshot...")
        self.ops.snapshot(self.project, note)

    def _on_jobs_job_changed(self, job: Job) -> None:
        if job.queue == self.project:
            self._enable()

    def _on_jobs_job_finished(self, job: Job) -> None:
        if job.queue != self.project:
            return
        if job.kind in HISTORY_KINDS:
            self.status.setText(outcome_text(job))
        if job.kind in REFRESH_KINDS:
            self.reload()
        self._enable()
