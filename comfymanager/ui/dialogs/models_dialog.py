"""The Models dialog: what the shared model store holds, who uses it, and where it came from.

The store is scanned on a worker (``app.jobs``, queue "store"); the table fills when the job
finishes. The same worker measures what interrupted operations left behind (``core/cleanup.py``:
half-deleted projects, stale temp files), shown on a line of its own until the background
clean-up has removed it. Verify rehashes one file on a worker too; Delete asks first (naming the
projects that use the file) and deletes on a worker (on Windows a file that a running ComfyUI has
memory-mapped is retried for a moment, then refused with "stop it and try again").
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.cleanup import leftover_bytes
from comfymanager.core.jobs import Job
from comfymanager.core.models.index import ModelFile, ModelIndex, scan
from comfymanager.core.operations import Kind
from comfymanager.core.progress import CancelToken, Reporter, format_bytes
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.models.store_model import FILE_ROLE, StoreProxyModel, StoreTableModel

log = logging.getLogger(__name__)

QUEUE = "store"


def _button(text: str, name: str) -> QPushButton:
    button = QPushButton(text)
    button.setAccessibleName(name)
    return button


class ModelsDialog(QDialog):
    """See the module docstring; no signals of its own."""

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.store = app.core.store
        self.index: ModelIndex | None = None
        self._scan_job: Job | None = None
        self._verify_jobs: dict[int, ModelFile] = {}
        self._delete_jobs: dict[int, ModelFile] = {}
        self.setWindowTitle("Models")

        self.model = StoreTableModel(parent=self)
        self.proxy = StoreProxyModel(self)
        self.proxy.setSourceModel(self.model)

        self.total = QLabel()
        self.total.setAccessibleName("Store total")
        self.total.setWordWrap(True)
        self.total.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.leftovers = QLabel()
        self.leftovers.setAccessibleName("Leftovers")
        self.leftovers.setWordWrap(True)
        self.leftovers.hide()
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter by folder, file, project or source")
        self.filter.setAccessibleName("Filter models")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self._on_filter_text_changed)

        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setAccessibleName("Model files")
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.verticalHeader().hide()
        self.view.setWordWrap(False)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.view.selectionModel().selectionChanged.connect(self._on_selection_changed)

        self.status = QLabel()
        self.status.setAccessibleName("Status")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.refresh_button = _button("&Refresh", "Refresh")
        self.reveal_button = _button("Reveal in &file manager", "Reveal in file manager")
        self.verify_button = _button("&Verify", "Verify")
        self.delete_button = _button("&Delete...", "Delete")
        self.refresh_button.clicked.connect(self.refresh)
        self.reveal_button.clicked.connect(self._on_reveal_button_clicked)
        self.verify_button.clicked.connect(self._on_verify_button_clicked)
        self.delete_button.clicked.connect(self._on_delete_button_clicked)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.close_button = self.buttons.button(QDialogButtonBox.StandardButton.Close)
        self.close_button.setAccessibleName("Close")
        self.buttons.rejected.connect(self.reject)

        row = QHBoxLayout()
        for b in (self.refresh_button, self.reveal_button, self.verify_button, self.delete_button):
            row.addWidget(b)
        row.addStretch(1)
        row.addWidget(self.buttons)

        layout = QVBoxLayout(self)
        layout.addWidget(self.total)
        layout.addWidget(self.leftovers)
        layout.addWidget(self.filter)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.status)
        layout.addLayout(row)

        app.jobs.job_finished.connect(self._on_jobs_job_finished)
        self.finished.connect(self._on_self_finished)
        self._update_buttons()
        self.refresh()

    # --- public -----------------------------------------------------------------------------

    def refresh(self) -> None:
        """Rescan the store on a worker; the table fills when it finishes."""
        if self._scan_job is not None:
            return
        store = self.store
        paths = self.app.core.paths
        self.total.setText(f"Scanning {store}...")
        self.refresh_button.setEnabled(False)

        def run(report: Reporter, cancel: CancelToken) -> tuple[ModelIndex, int]:
            return scan(store, report, cancel), leftover_bytes(paths, store)

        self._scan_job = self.app.jobs.submit(Kind.STORE_SCAN, QUEUE, run)

    def selected_file(self) -> ModelFile | None:
        rows = self.view.selectionModel().selectedRows()
        if not rows:
            return None
        return rows[0].data(FILE_ROLE)

    def select_file(self, key: str) -> bool:
        """Select the row of ``folder/name`` (for keyboard users and tests)."""
        for row in range(self.proxy.rowCount()):
            idx = self.proxy.index(row, 0)
            f = idx.data(FILE_ROLE)
            if f is not None and f.key == key:
                self.view.selectRow(row)
                return True
        return False

    # --- internals ----------------------------------------------------------------------------

    def _update_total(self) -> None:
        files = self.model.files()
        total = sum(f.size for f in files)
        noun = "file" if len(files) == 1 else "files"
        self.total.setText(f"{len(files)} {noun}, {format_bytes(total)} in {self.store}")

    def _show_leftovers(self, size: int) -> None:
        self.leftovers.setText(
            f"Left over from interrupted operations: {format_bytes(size)}, being removed in "
            "the background."
        )
        self.leftovers.setVisible(size > 0)

    def _update_buttons(self) -> None:
        has = self.selected_file() is not None
        for b in (self.reveal_button, self.verify_button, self.delete_button):
            b.setEnabled(has)

    def _on_filter_text_changed(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)

    def _on_selection_changed(self, *_: object) -> None:
        self._update_buttons()

    def _on_jobs_job_finished(self, job: Job) -> None:
        if job is self._scan_job:
            self._scan_job = None
            self.refresh_button.setEnabled(True)
            if job.outcome == "succeeded":
                self.index, leftovers = job.result
                self.model.set_files(self.index.files())
                self._update_total()
                self._show_leftovers(leftovers)
            elif job.outcome == "failed" and job.error is not None:
                self.total.setText(f"Could not scan {self.store}: {job.error.message}")
            self._update_buttons()
            return
        deleted = self._delete_jobs.pop(job.id, None)
        if deleted is not None:
            self._on_delete_finished(job, deleted)
            return
        f = self._verify_jobs.pop(job.id, None)
        if f is None:
            return
        if job.outcome == "succeeded":
            ok = bool(job.result)
            verdict = "OK: sha256 matches" if ok else "Changed on disk"
            self.status.setText(f"{f.key}: {verdict}")
        elif job.outcome == "failed" and job.error is not None:
            fix = f" {job.error.fix}" if job.error.fix else ""
            self.status.setText(f"{f.key}: {job.error.message}{fix}")
        else:
            self.status.setText(f"{f.key}: verification cancelled")

    def _on_reveal_button_clicked(self) -> None:
        f = self.selected_file()
        if f is not None:
            self.app.open_path(f.path.parent)

    def _on_verify_button_clicked(self) -> None:
        f = self.selected_file()
        index = self.index
        if f is None or index is None:
            return
        self.status.setText(f"{f.key}: verifying...")

        def run(report: Reporter, cancel: CancelToken) -> bool:
            ok = index.verify(f.folder, f.name, report, cancel)
            index.save()
            return ok

        job = self.app.jobs.submit(Kind.STORE_VERIFY, QUEUE, run, subject=f.key)
        self._verify_jobs[job.id] = f

    def _on_delete_button_clicked(self) -> None:
        f = self.selected_file()
        if f is None or self.index is None:
            return
        question = f"Delete {f.key} ({format_bytes(f.size)}) from the model store?"
        if f.used_by:
            projects = ", ".join(f.used_by)
            which = "project" if len(f.used_by) == 1 else "projects"
            question += f"\n\nIt is used by {which} {projects}: their workflows will miss it."
        answer = QMessageBox.question(
            self,
            "Delete model",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        if answer != QMessageBox.StandardButton.Yes:
            return
        index = self.index
        self.status.setText(f"Deleting {f.key}...")

        def run(report: Reporter, cancel: CancelToken) -> None:
            index.delete(f.folder, f.name)
            index.save()

        job = self.app.jobs.submit(Kind.STORE_DELETE, QUEUE, run, subject=f.key)
        self._delete_jobs[job.id] = f

    def _on_delete_finished(self, job: Job, f: ModelFile) -> None:
        if job.outcome != "succeeded":
            error = job.error
            why = f"{error.message} {error.fix or ''}".strip() if error else "cancelled"
            log.warning("could not delete %s: %s", f.key, why)
            self.status.setText(f"Could not delete {f.key}: {why}")
            return
        self.model.remove_file(f.key)
        self._update_total()
        self._update_buttons()
        self.status.setText(f"Deleted {f.key}")

    def _on_self_finished(self, _result: int) -> None:
        self.app.jobs.job_finished.disconnect(self._on_jobs_job_finished)
