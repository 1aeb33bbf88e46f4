"""The project list (left) and the details of the selected project (right, top).

The details pane only shows a ``ProjectRow`` and turns button clicks into intents (start, stop,
open browser, open folder) or its own signals for what only the window handles.
"""

from __future__ import annotations

import html
import logging

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGridLayout,
    QLabel,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core import operations as ops
from comfymanager.core.errors import ErrorInfo
from comfymanager.core.operations import Kind
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.models.project_list import ProjectListModel, ProjectRow
from comfymanager.ui.panes import verify_view
from comfymanager.ui.panes.error_view import ErrorView

log = logging.getLogger(__name__)


class ProjectListView(QListView):
    """The list of projects; no signals beyond QListView's."""

    def __init__(self, model: ProjectListModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # rows differ in height (a CJK or emoji name's fallback font is taller); long names are
        # elided to the list's width, never scrolled sideways
        self.setUniformItemSizes(False)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setIconSize(QSize(16, 16))
        self.setSpacing(2)
        self.setAccessibleName("Projects")
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance("M") * 22, fm.lineSpacing() * 20)


def state_html(row: ProjectRow) -> str:
    """The details' state line; a running project's URL is a link."""
    st = row.status
    if row.broken:
        return f"This project cannot be read: {html.escape(row.broken_reason)}"
    if row.state == "running" and st and st.url:
        url = html.escape(st.url)
        return f'Running on <a href="{url}">{url}</a>{_run_notes(st)}'
    if row.state == "starting" and st:
        return f"{html.escape(row.state_text)}{_run_notes(st)}"
    if row.state == "crashed" and st:
        code = f" (exit code {st.exit_code})" if st.exit_code is not None else ""
        why = f" {html.escape(st.message)}" if st.message else ""
        return f"Crashed{code}.{why}"
    if row.state == "install-failed" and row.project:
        inst = row.project.install
        if inst.error:
            fix = f" {html.escape(inst.error_fix)}" if inst.error_fix else ""
            return f"Install failed: {html.escape(inst.error.rstrip('.'))}.{fix}"
        if st and st.message:
            return f"Install failed: {html.escape(st.message)}"
    return html.escape(row.state_text)


def _run_notes(st: object) -> str:
    """What a user must know about a live run: a lost supervisor, a foreign listener, --cpu."""
    notes = []
    foreign = str(getattr(st, "foreign", ""))
    if foreign:
        notes.append(f"{foreign[0].upper()}{foreign[1:]}.")
    if getattr(st, "supervisor_lost", False):
        notes.append("Supervisor lost: ComfyUI keeps running and Stop still works.")
    device = str(getattr(st, "device_note", ""))
    if device:
        notes.append(device)
    return "".join(f"<br>{html.escape(n)}" for n in notes)


class DetailsPane(QWidget):
    """Signals: ``repair_requested(str)``, ``reinstall_requested(str)``,
    ``delete_requested(str)``, ``verify_requested(str)`` (the project id)."""

    repair_requested = Signal(str)
    reinstall_requested = Signal(str)
    delete_requested = Signal(str)
    verify_requested = Signal(str)

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.row: ProjectRow | None = None
        self.name = QLabel()
        font = self.name.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        self.name.setFont(font)
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.state.setTextFormat(Qt.TextFormat.RichText)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.state.setOpenExternalLinks(False)
        self.state.linkActivated.connect(self._on_state_link_activated)
        self.state.setAccessibleName("Project state")
        self.error = ErrorView()
        self.last_lines = QPlainTextEdit()
        self.last_lines.setReadOnly(True)
        self.last_lines.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.last_lines.setAccessibleName("Last lines of ComfyUI's output")
        self.last_lines.setMaximumHeight(self.fontMetrics().lineSpacing() * 8)
        self.last_lines.setVisible(False)

        self.info: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, label in (
            ("version", "ComfyUI"),
            ("torch", "Torch backend"),
            ("python", "Python"),
            ("port", "Port"),
            ("folder", "Folder"),
        ):
            value = QLabel()
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            form.addRow(label + ":", value)
            self.info[key] = value
        # the node verification (verify_view): its own block, so a wrapped list gets its height
        self.verification = verify_view.VerificationLabel()

        self.buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        specs = (
            ("launch", "&Launch", "Start ComfyUI for this project"),
            ("stop", "S&top", "Stop ComfyUI"),
            ("browser", "Open in &browser", "Open ComfyUI in the web browser"),
            ("folder", "Open &folder", "Open the project folder"),
            ("repair", "&Repair", "Repair the install: redo what is missing or broken"),
            ("reinstall", "Reinstall", "Reinstall every stage from scratch"),
            ("delete", "&Delete", "Delete the project folder"),
            (
                "verify",
                "&Verify nodes",
                "Load the project's nodes in its own Python and check "
                "its workflows: node types present, each model's folder and file",
            ),
        )
        for i, (key, text, tip) in enumerate(specs):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.setAccessibleName(text.replace("&", ""))
            b.clicked.connect(lambda _=False, k=key: self._on_button_clicked(k))
            grid.addWidget(b, i // 4, i % 4)
            self.buttons[key] = b

        self.placeholder = QLabel("Create a project with File > New project (Ctrl+N).")
        self.placeholder.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.name)
        layout.addWidget(self.state)
        layout.addWidget(self.error)
        layout.addWidget(self.last_lines)
        layout.addLayout(form)
        layout.addWidget(self.verification)
        layout.addLayout(grid)
        layout.addStretch(1)
        self.set_row(None)

    def set_row(
        self, row: ProjectRow | None, *, busy: bool = False, launch_error: ErrorInfo | None = None
    ) -> None:
        self.row = row
        has = row is not None
        for w in (self.name, self.state):
            w.setVisible(has)
        self.placeholder.setVisible(not has)
        for b in self.buttons.values():
            b.setVisible(has)
        self.verification.setVisible(has)
        if row is None:
            self.error.clear()
            self.last_lines.setVisible(False)
            for v in self.info.values():
                v.clear()
            return
        self.name.setText(row.name)
        self.state.setText(state_html(row))
        st = row.status
        crashed = row.state == "crashed" and st is not None and bool(st.last_lines)
        self.last_lines.setVisible(crashed)
        if crashed and st is not None:
            self.last_lines.setPlainText("\n".join(st.last_lines))
        if launch_error is not None and not ops.live(row.state):
            self.error.show_info(launch_error)
        else:
            self.error.clear()
        self._fill_info(row)
        self._fill_verification(row)
        self._enable(row, busy)

    def _fill_verification(self, row: ProjectRow) -> None:
        current = self.app.jobs.current(row.id)
        running = current is not None and current.kind is Kind.VERIFY
        result = verify_view.load_last(self.app, row.id) if row.project else None
        self.verification.setText(verify_view.block_html(result, running=running))
        self.verification.setToolTip(verify_view.tooltip(result))

    def _fill_info(self, row: ProjectRow) -> None:
        p = row.project
        try:
            folder = str(ProjectStore(self.app.core.paths).dirs(row.id).root)
        except Exception:  # a broken name still shows something
            folder = str(self.app.core.paths.projects / row.id)
        self.info["folder"].setText(folder)
        if p is None:
            for key in ("version", "torch", "python", "port"):
                self.info[key].setText("")
            return
        ref = p.comfyui_ref or "latest release"
        commit = f" (commit {p.comfyui_commit[:10]})" if p.comfyui_commit else ""
        self.info["version"].setText(f"{ref}{commit}")
        torch = p.torch_backend
        if p.torch_backend_resolved and p.torch_backend_resolved != p.torch_backend:
            torch += f" \u2192 {p.torch_backend_resolved}"
        if p.torch_version:
            torch += f", torch {p.torch_version}"
        self.info["torch"].setText(torch)
        self.info["python"].setText(p.python_version or p.python or "not installed yet")
        port = row.port
        fixed = f"fixed {p.port}" if p.port else "automatic"
        self.info["port"].setText(f"{port} ({fixed})" if port else fixed)

    def _enable(self, row: ProjectRow, busy: bool) -> None:
        s = row.state
        ok = not row.broken and not ops.busy(s, busy)
        self.buttons["launch"].setEnabled(not row.broken and ops.can_start(s, busy))
        self.buttons["stop"].setEnabled(not row.broken and ops.can_stop(s))
        self.buttons["browser"].setEnabled(ops.can_browse(s))
        self.buttons["repair"].setEnabled(
            ok and s in ("install-failed", "not-installed", "stopped", "crashed")
        )
        self.buttons["reinstall"].setEnabled(
            ok and s in ("install-failed", "not-installed", "stopped", "crashed")
        )
        self.buttons["verify"].setEnabled(ok and s in ("stopped", "crashed", "running"))
        self.buttons["folder"].setEnabled(True)
        self.buttons["delete"].setEnabled(ops.can_delete(s, busy))

    def _on_state_link_activated(self, url: str) -> None:
        self.app.open_url(url)

    def _on_button_clicked(self, key: str) -> None:
        if self.row is None:
            return
        pid = self.row.id
        intents = self.app.intents
        {
            "launch": intents.start.emit,
            "stop": intents.stop.emit,
            "browser": intents.open_browser.emit,
            "folder": intents.open_folder.emit,
            "repair": self.repair_requested.emit,
            "reinstall": self.reinstall_requested.emit,
            "delete": self.delete_requested.emit,
            "verify": self.verify_requested.emit,
        }[key](pid)
