"""File > Add existing ComfyUI...: pick an install's folder (a git clone, a portable build, the
desktop app's base folder), see the read-only scan as a plan (``adopt.plan``: ComfyUI commit,
packs with the local-only ones flagged, models folders, workflows, Python and torch), choose
Rebuild (the default: a new project pinned to the same commit and packs) or In place (run it where
it is with its own Python), and a name.

The scan runs off the UI thread (``run_background``) each time the folder, the way or the name
changes; "Adopt" closes the dialog with the choice and the adoption is a job
(``ProjectActions.adopt``).
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core.adopt.adopt import IN_PLACE, LOCAL_NOTE, REBUILD, AdoptPlan, plan
from comfymanager.core.errors import ErrorInfo
from comfymanager.core.progress import CancelToken, Reporter
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.background import run_background

log = logging.getLogger(__name__)


def plan_text(p: AdoptPlan) -> str:
    """The plan's lines, packs that cannot be fetched again marked for the eye."""
    lines = []
    for line in p.lines():
        if LOCAL_NOTE in line:
            line += "   <- local only"
        lines.append(line)
    return "\n".join(lines)


class AdoptDialog(QDialog):
    """See the module docstring. ``choice``: (path, name, mode) once accepted. No signals."""

    def __init__(self, app: AppContext, parent: QWidget | None = None, path: str = "") -> None:
        super().__init__(parent)
        self.app = app
        self.choice: tuple[str, str, str] | None = None
        self.plan: AdoptPlan | None = None
        self.plans = 0  # scans shown (tests wait on it)
        self._asked = 0
        self.setWindowTitle("Add existing ComfyUI")
        self.folder = QLineEdit(path)
        self.folder.setPlaceholderText("The folder of a ComfyUI install")
        self.folder.setAccessibleName("Install folder")
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._on_browse_clicked)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.rebuild = QRadioButton(
            "Rebuild: a new project at the same ComfyUI commit and packs (recommended)"
        )
        self.in_place = QRadioButton(
            "In place: run it where it is with its own Python (no update, rollback or packs)"
        )
        self.rebuild.setChecked(True)
        self.mode = QButtonGroup(self)
        self.mode.addButton(self.rebuild)
        self.mode.addButton(self.in_place)
        self.name = QLineEdit()
        self.name.setPlaceholderText("from the folder's name")
        self.name.setAccessibleName("Project name")
        self.changes = QPlainTextEdit()
        self.changes.setReadOnly(True)
        self.changes.setAccessibleName("Plan")
        self.changes.setMinimumSize(640, 260)
        note = QLabel(
            "Models are read where they are (never moved or copied); the folder itself is "
            "only read."
        )
        note.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok.setText("Adopt")
        self.ok.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("Folder:", row)
        form.addRow("How:", self.rebuild)
        form.addRow("", self.in_place)
        form.addRow("Name:", self.name)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("What will happen:"))
        layout.addWidget(self.changes, 1)
        layout.addWidget(note)
        layout.addWidget(self.buttons)
        self.folder.editingFinished.connect(self.rescan)
        self.name.editingFinished.connect(self.rescan)
        self.mode.buttonToggled.connect(self._on_mode_button_toggled)
        if path:
            self.rescan()
        else:
            self.changes.setPlainText("Choose the folder of an existing ComfyUI.")

    def selected_mode(self) -> str:
        return IN_PLACE if self.in_place.isChecked() else REBUILD

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "ComfyUI install folder")
        if folder:
            self.folder.setText(folder)
            self.rescan()

    def _on_mode_button_toggled(self, _button: object, checked: bool) -> None:
        if checked:
            self.rescan()

    def rescan(self) -> None:
        path, name, mode = (
            self.folder.text().strip(),
            self.name.text().strip(),
            self.selected_mode(),
        )
        self.plan = None
        self.ok.setEnabled(False)
        self._asked += 1
        if not path:
            return
        self.changes.setPlainText(f"Reading {path}...")
        asked, ctx = self._asked, self.app.core

        def job(report: Reporter, cancel: CancelToken) -> tuple[int, AdoptPlan]:
            return asked, plan(ctx, path, name, mode)

        run_background(self, job, self._on_scan_succeeded, self._on_scan_failed, name="adopt scan")

    def _on_scan_succeeded(self, result: tuple[int, AdoptPlan]) -> None:
        asked, p = result
        if asked != self._asked:
            return
        self.plan = p
        self.changes.setPlainText(plan_text(p))
        if not self.name.text().strip():
            self.name.setPlaceholderText(p.name)
        self.ok.setEnabled(True)
        self.plans += 1

    def _on_scan_failed(self, err: ErrorInfo) -> None:
        self.plan = None
        text = err.message + (f"\n{err.fix}" if err.fix else "")
        self.changes.setPlainText(f"This folder cannot be adopted:\n{text}")
        self.ok.setEnabled(False)
        self.plans += 1

    def accept(self) -> None:
        if self.plan is None:
            return
        self.choice = (self.folder.text().strip(), self.plan.name, self.plan.mode)
        super().accept()
