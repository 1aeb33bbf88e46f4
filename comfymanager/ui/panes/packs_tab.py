"""A project's node packs in the window: name, source, version or commit, enabled, loaded OK or
its error; Add (git URL, local folder or registry id, optional version), Remove, Update,
Disable/Enable, and the ComfyUI-Manager opt-in.

The list is read off the UI thread (``pack_list.list_packs`` reads ``custom_nodes`` and the
records, no subprocess) and again when a job of the project ends. Every change is a job on the
project's queue (``ProjectActions.pack_*``, ``manager``); the line under the list says how the
last one ended: a requirements conflict names the two packs and the requirement there.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.errors import ErrorInfo
from comfymanager.core.jobs import Job
from comfymanager.core.lifecycle.pack_list import PackInfo, list_packs
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background

if TYPE_CHECKING:
    from comfymanager.ui.actions import ProjectActions

log = logging.getLogger(__name__)

PACK_KINDS = {
    Kind.PACK_ADD: "Adding the pack",
    Kind.PACK_REMOVE: "Removing the pack",
    Kind.PACK_UPDATE: "Updating",
    Kind.PACK_ENABLE: "Enabling the pack",
    Kind.PACK_DISABLE: "Disabling the pack",
    Kind.CONFIG: "Changing ComfyUI-Manager",
}
REFRESH_KINDS = frozenset(
    {*PACK_KINDS, Kind.UPDATE, Kind.ROLLBACK, Kind.REPAIR, Kind.REINSTALL, Kind.IMPORT}
    | {Kind.VERIFY, Kind.LAUNCH, Kind.STOP}
)
STATE_TEXT = {
    "ok": "loads",
    "failed": "failed",
    "missing": "folder missing",
    "disabled": "disabled",
    "unknown": "not checked yet",
}
FAILED = QColor("#c0392b")


def pack_row(p: PackInfo) -> tuple[str, str, str, str, str]:
    """(name, source, version, enabled, state) as the list shows them."""
    version = p.version or p.commit[:10] or ("local" if p.kind == "local" else "")
    source = p.source or p.path
    if p.origin == "outside":
        source += " (added outside comfymanager)"
    state = STATE_TEXT.get(p.state, p.state)
    if p.error:
        state += f": {p.error.splitlines()[0]}"
    return p.name, source, version, "yes" if p.enabled else "no", state


def change_text(change: object) -> str:
    """One pack change (``lifecycle.packs.PackChange``) in a few words; "" when unchanged."""
    action, pack = getattr(change, "action", ""), getattr(change, "pack", "")
    before, after = getattr(change, "before", ""), getattr(change, "after", "")
    if action == "add":
        return f"{pack} added" + (f" ({after})" if after else "")
    if action == "remove":
        return f"{pack} removed"
    if action == "update":
        return f"{pack} {before} -> {after}"
    if action in ("enable", "disable"):
        return f"{pack} {action}d"
    return ""


def outcome_text(job: Job) -> str:
    """One line on how a pack job ended (a failure: its cause and fix)."""
    what = PACK_KINDS.get(job.kind, "The change")
    if job.outcome == "succeeded":
        result = job.result
        if job.kind is Kind.CONFIG:
            return "ComfyUI-Manager " + ("on." if getattr(result, "enabled", False) else "off.")
        changes = result if isinstance(result, list) else [result]
        said = [t for t in (change_text(c) for c in changes) if t]
        return "Done: " + "; ".join(said) + "." if said else "Done: nothing needed changing."
    if job.outcome == "cancelled":
        return "Cancelled."
    err: ErrorInfo | None = job.error
    if err is None:
        return f"{what} failed: see the project's log."
    return f"{what} failed: {err.message}" + (f" {err.fix}" if err.fix else "")


class AddPackDialog(QDialog):
    """Source (git URL, local folder, registry id) and an optional version. No signals."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add node pack")
        self.source = QLineEdit()
        self.source.setPlaceholderText("https://github.com/owner/pack, a folder, or a registry id")
        self.version = QLineEdit()
        self.version.setPlaceholderText("latest (or a tag, branch, commit, registry version)")
        browse = QPushButton("Folder...")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.source, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Source:", row)
        form.addRow("Version:", self.version)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Add")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.source.textChanged.connect(self._on_source_text_changed)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())
        self._on_source_text_changed()

    def spec(self) -> str:
        """``SOURCE[@VERSION]`` as ``pack add`` takes it."""
        source, version = self.source.text().strip(), self.version.text().strip()
        return f"{source}@{version}" if version else source

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Node pack folder")
        if folder:
            self.source.setText(folder)

    def _on_source_text_changed(self, *_: object) -> None:
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(self.source.text().strip()))


def ask_pack(parent: QWidget) -> str | None:
    """``SOURCE[@VERSION]`` to add, None when cancelled (tests replace this)."""
    dialog = AddPackDialog(parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.spec()


def ask_remove(parent: QWidget, project: str, pack: str) -> bool:
    """True when the user confirms removing ``pack`` (tests replace this)."""
    answer = QMessageBox.question(
        parent,
        "Remove node pack",
        f"Remove {pack} from '{project}'? A snapshot is taken first, so it can be rolled back.",
    )
    return answer == QMessageBox.StandardButton.Yes


class PacksTab(QWidget):
    """The packs of one project; see the module docstring. No signals."""

    def __init__(
        self, app: AppContext, actions: ProjectActions, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.app = app
        self.ops = actions
        self.project = ""
        self.packs: list[PackInfo] = []
        self.loads = 0  # finished reads (tests wait on it)
        self._asked = 0
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Pack", "Source", "Version", "Enabled", "State"])
        self.tree.setRootIsDecorated(False)
        self.tree.setAlternatingRowColors(True)
        self.tree.setAccessibleName("Node packs")
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long paths keep their end
        header = self.tree.header()
        for col in (0, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.empty = QLabel("No node packs: Add one, or import a workflow that needs some.")
        self.empty.setWordWrap(True)
        self.error = QLabel()  # the selected pack's whole error
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #c0392b")
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setVisible(False)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = {
            "add": QPushButton("Add..."),
            "remove": QPushButton("Remove"),
            "update": QPushButton("Update"),
            "toggle": QPushButton("Disable"),
        }
        self.buttons["add"].clicked.connect(self._on_add_clicked)
        self.buttons["remove"].clicked.connect(self._on_remove_clicked)
        self.buttons["update"].clicked.connect(self._on_update_clicked)
        self.buttons["toggle"].clicked.connect(self._on_toggle_clicked)
        self.manager = QCheckBox("ComfyUI-Manager in this project")
        self.manager.setToolTip(
            "Installed the way this ComfyUI version expects (the pip package with "
            "--enable-manager, or the custom node on older versions), under the torch pin."
        )
        self.manager.clicked.connect(self._on_manager_clicked)
        row = QHBoxLayout()
        for b in self.buttons.values():
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.manager)
        self.tree.itemSelectionChanged.connect(self._enable)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tree, 1)
        layout.addWidget(self.empty)
        layout.addWidget(self.error)
        layout.addWidget(self.status)
        layout.addLayout(row)
        app.jobs.job_finished.connect(self._on_jobs_job_finished)
        app.jobs.job_added.connect(self._on_jobs_job_added)
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
            self._show(asked, [], False)
            return

        def read(report: Reporter, cancel: CancelToken) -> tuple[int, list[PackInfo], bool]:
            manager = bool(ProjectStore(ctx.paths).load(project).manager)
            return asked, list_packs(ctx, project), manager

        run_background(
            self, read, self._on_read_succeeded, self._on_read_failed, name=f"packs {project}"
        )

    def _on_read_succeeded(self, result: tuple[int, list[PackInfo], bool]) -> None:
        self._show(*result)

    def _on_read_failed(self, err: ErrorInfo) -> None:
        self._show(self._asked, [], False)
        self.status.setText(f"Could not read the packs: {err.message}")

    def _show(self, asked: int, rows: list[PackInfo], manager: bool) -> None:
        if asked != self._asked:
            return
        keep = self.selected()
        self.packs = list(rows)
        self.tree.clear()
        for p in self.packs:
            texts = pack_row(p)
            item = QTreeWidgetItem(list(texts))
            item.setData(0, Qt.ItemDataRole.UserRole, p.name)
            item.setToolTip(1, texts[1])
            item.setToolTip(4, p.error or texts[4])
            if p.state in ("failed", "missing"):
                item.setForeground(4, QBrush(FAILED))
            if not p.enabled:
                for col in range(5):
                    item.setForeground(col, QBrush(QColor("#888888")))
            self.tree.addTopLevelItem(item)
            if keep is not None and keep.name == p.name:
                item.setSelected(True)
        self.tree.header().resizeSection(1, 260)
        self.manager.setChecked(manager)
        self.empty.setVisible(not self.packs)
        self.tree.setVisible(bool(self.packs))
        self.loads += 1
        self._enable()

    # --- actions -------------------------------------------------------------------------------
    def selected(self) -> PackInfo | None:
        items = self.tree.selectedItems()
        if not items:
            return None
        name = items[0].data(0, Qt.ItemDataRole.UserRole)
        return next((p for p in self.packs if p.name == name), None)

    def _enable(self) -> None:
        free = bool(self.project) and not self.app.jobs.busy(self.project)
        pack = self.selected()
        self.buttons["add"].setEnabled(free)
        self.buttons["remove"].setEnabled(free and pack is not None)
        self.buttons["update"].setEnabled(free and bool(self.packs))
        self.buttons["update"].setText("Update" if pack is not None else "Update all")
        self.buttons["toggle"].setEnabled(free and pack is not None and pack.state != "missing")
        self.buttons["toggle"].setText("Enable" if pack and not pack.enabled else "Disable")
        self.manager.setEnabled(free)
        if pack is not None and pack.error:
            self.error.setText(f"{pack.name}: {pack.error}")
        self.error.setVisible(pack is not None and bool(pack.error))

    def _start(self, job: Job) -> None:
        self.status.setText(PACK_KINDS.get(job.kind, "Working") + "...")
        self._enable()

    def _on_add_clicked(self) -> None:
        spec = ask_pack(self)
        if spec:
            self._start(self.ops.pack_add(self.project, spec))

    def _on_remove_clicked(self) -> None:
        pack = self.selected()
        if pack is not None and ask_remove(self, self.project, pack.name):
            self._start(self.ops.pack_remove(self.project, pack.name))

    def _on_update_clicked(self) -> None:
        pack = self.selected()
        self._start(self.ops.pack_update(self.project, pack.name if pack else ""))

    def _on_toggle_clicked(self) -> None:
        pack = self.selected()
        if pack is not None:
            self._start(self.ops.pack_set_enabled(self.project, pack.name, not pack.enabled))

    def _on_manager_clicked(self, checked: bool) -> None:
        self._start(self.ops.set_manager(self.project, checked))

    def _on_jobs_job_added(self, job: Job) -> None:
        if job.queue == self.project:
            self._enable()

    def _on_jobs_job_finished(self, job: Job) -> None:
        if job.queue != self.project:
            return
        if job.kind in PACK_KINDS:
            self.status.setText(outcome_text(job))
            if job.outcome == "failed":
                self.status.setStyleSheet("color: #c0392b")
            else:
                self.status.setStyleSheet("")
        if job.kind in REFRESH_KINDS:
            self.reload()
        self._enable()
