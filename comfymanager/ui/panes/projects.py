"""The project list (left) and the details of the selected project (right, top).

The details pane only shows a ``ProjectRow`` and turns button clicks into intents (start, stop,
open browser, open folder) or its own signals for what only the window handles.
"""

from __future__ import annotations

import html
import logging
import re

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QFontDatabase, QGuiApplication, QPainter, QPaintEvent, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from comfymanager.core import operations as ops
from comfymanager.core.errors import ErrorInfo
from comfymanager.core.operations import Kind
from comfymanager.core.projects import ProjectStore
from comfymanager.ui.app_context import AppContext
from comfymanager.ui.models.project_list import ID_ROLE, ProjectListModel, ProjectRow
from comfymanager.ui.panes import verify_view
from comfymanager.ui.panes.error_view import ErrorView
from comfymanager.ui.panes.health_view import HealthChecklist
from comfymanager.ui.update_watch import UpdateWatch

log = logging.getLogger(__name__)

EMPTY_TEXT = "Drop a workflow here, or create a project"
_ERROR_LINE = re.compile(r"(error|exception|traceback|failed|killed|abort)", re.I)


def crash_cause(lines: tuple[str, ...] | list[str]) -> str:
    """The most telling line of a crashed run's output: a traceback's final line (the last
    error-looking line), else the last line ComfyUI wrote."""
    own = [ln.strip() for ln in lines if ln.strip() and not ln.startswith("[comfymanager]")]
    errors = [ln for ln in own if _ERROR_LINE.search(ln) and not ln.startswith("Traceback")]
    return (errors or own or [""])[-1][:400]


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

    def show_updates(self, watch: UpdateWatch) -> None:
        """A third line "Update available: v0.3.66" under a project that has one (issue 14)."""
        self.setItemDelegate(_UpdateMarkerDelegate(watch, self))
        watch.changed.connect(self._on_watch_changed)

    def _on_watch_changed(self, _project: str) -> None:
        self.scheduleDelayedItemsLayout()  # a row gains or loses its line: heights change
        self.viewport().update()

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        if self.model() is not None and self.model().rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            rect = self.viewport().rect().adjusted(12, 12, -12, -12)
            painter.drawText(
                rect,
                int(Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap),
                EMPTY_TEXT + ".",
            )
            painter.end()


class _UpdateMarkerDelegate(QStyledItemDelegate):
    """Adds the update watch's marker as a line of the row's text (its tooltip names it)."""

    def __init__(self, watch: UpdateWatch, parent: QWidget) -> None:
        super().__init__(parent)
        self.watch = watch

    def initStyleOption(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        super().initStyleOption(option, index)
        marker = self.watch.marker(str(index.data(ID_ROLE) or ""))
        if marker:
            option.text = f"{option.text}\u2028{marker}"  # a line break, as Qt shows "\n"


def state_html(row: ProjectRow) -> str:
    """The details' state line; a running project's URL is a link."""
    st = row.status
    if row.damaged:
        return (
            f"Damaged: {html.escape(row.broken_reason)}. Repair rebuilds its project file; "
            "Delete removes its folder."
        )
    if row.broken:
        return f"This project cannot be read: {html.escape(row.broken_reason)}"
    if row.state == "running" and st and st.url:
        url = html.escape(st.url)
        return f'Running on <a href="{url}">{url}</a>{_run_notes(st)}'
    if row.state == "starting" and st:
        return f"{html.escape(row.run_text)}{_run_notes(st)}"
    if row.state == "crashed" and st:
        code = f" (exit code {st.exit_code})" if st.exit_code is not None else ""
        cause = crash_cause(st.last_lines)
        if cause:
            return f"Crashed{code}: <b>{html.escape(cause)}</b>"
        why = f" {html.escape(st.message)}" if st.message else ""
        return f"Crashed{code}.{why}"
    if row.state == "install-failed" and row.project:
        inst = row.project.install
        if inst.error:
            fix = f" {html.escape(inst.error_fix)}" if inst.error_fix else ""
            return f"Install failed: {html.escape(inst.error.rstrip('.'))}.{fix}"
        if st and st.message:
            return f"Install failed: {html.escape(st.message)}"
    return html.escape(row.run_text)


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
    ``delete_requested(str)``, ``verify_requested(str)``, ``settings_requested(str)`` (the
    project id),
    ``fix_requested(str project, object problem, str action)`` (a checklist Fix button),
    ``new_requested()`` and ``import_requested()`` (the empty state's buttons)."""

    fix_requested = Signal(str, object, str)
    new_requested = Signal()
    import_requested = Signal()
    repair_requested = Signal(str)
    reinstall_requested = Signal(str)
    delete_requested = Signal(str)
    verify_requested = Signal(str)
    settings_requested = Signal(str)

    def __init__(self, app: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.app = app
        self.row: ProjectRow | None = None
        self.chosen: dict[str, str] = {}
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
        self.last_lines.setMaximumHeight(self.fontMetrics().lineSpacing() * 10)
        self.last_lines.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.last_lines.setVisible(False)
        self.copy_details = QPushButton("Copy details")
        self.copy_details.setAccessibleName("Copy crash details")
        self.copy_details.setToolTip("Copy the cause, exit code and last lines to the clipboard")
        self.copy_details.clicked.connect(self._on_copy_details_clicked)
        self.copy_details.setVisible(False)
        self.checklist = HealthChecklist()
        self.checklist.fix_requested.connect(self.fix_requested)

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
            value.setMinimumWidth(1)  # a long folder wraps instead of widening the pane
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
            (
                "project-settings",
                "Setti&ngs...",
                "Port, network access, launch arguments, GPUs and environment of this project",
            ),
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
            grid.addWidget(b, i // 5, i % 5)  # what is used most on the first row
            self.buttons[key] = b

        self.form = form
        self.placeholder = QWidget()
        self.placeholder.setAccessibleName("No project")
        ph = QVBoxLayout(self.placeholder)
        ph.setContentsMargins(0, 0, 0, 0)
        head = QLabel(EMPTY_TEXT + ".")
        f = head.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        head.setFont(f)
        head.setWordWrap(True)
        hint = QLabel(
            "Drop a ComfyUI workflow (.json, or a .png/.webp/.mp4 it was saved in) anywhere on "
            "this window: comfymanager finds its nodes and models and builds a project that runs "
            "it. Or start from an empty ComfyUI with New project."
        )
        hint.setWordWrap(True)
        self.empty_new = QPushButton("New project...")
        self.empty_import = QPushButton("Import workflow...")
        self.empty_new.clicked.connect(self.new_requested)
        self.empty_import.clicked.connect(self.import_requested)
        row_buttons = QHBoxLayout()
        row_buttons.addWidget(self.empty_new)
        row_buttons.addWidget(self.empty_import)
        row_buttons.addStretch(1)
        ph.addWidget(head)
        ph.addWidget(hint)
        ph.addLayout(row_buttons)
        self.info_box = QWidget()
        self.info_box.setLayout(form)
        form.setContentsMargins(0, 0, 0, 0)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        crash_row = QHBoxLayout()
        crash_row.addStretch(1)
        crash_row.addWidget(self.copy_details)
        layout = QVBoxLayout(self)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.name)
        layout.addWidget(self.state)
        layout.addWidget(self.error)
        layout.addWidget(self.last_lines)
        layout.addLayout(crash_row)
        layout.addWidget(self.checklist)
        layout.addWidget(self.info_box)
        layout.addWidget(self.verification)
        layout.addLayout(grid)
        layout.addStretch(1)
        self.set_row(None)

    def set_row(
        self,
        row: ProjectRow | None,
        *,
        busy: bool = False,
        launch_error: ErrorInfo | None = None,
        chosen: dict[str, str] | None = None,
    ) -> None:
        """Show ``row``; ``chosen``: the values picked for a project being created (shown until
        its project file exists, instead of blank fields)."""
        self.row = row
        self.chosen = chosen or {}
        has = row is not None
        for w in (self.name, self.state, self.info_box):
            w.setVisible(has)
        self.placeholder.setVisible(not has)
        for b in self.buttons.values():
            b.setVisible(has)
        self.verification.setVisible(has)
        if row is None:
            self.error.clear()
            self.last_lines.setVisible(False)
            self.copy_details.setVisible(False)
            self.checklist.set_health("", None)
            for v in self.info.values():
                v.clear()
            return
        self.name.setText(row.name)
        self.state.setText(state_html(row))
        st = row.status
        crashed = row.state == "crashed" and st is not None and bool(st.last_lines)
        self.last_lines.setVisible(crashed)
        self.copy_details.setVisible(crashed)
        if crashed and st is not None:
            text = "\n".join(st.last_lines)
            if self.last_lines.toPlainText() != text:
                self.last_lines.setPlainText(text)
            self.last_lines.moveCursor(QTextCursor.MoveOperation.End)
            self.last_lines.ensureCursorVisible()
            QTimer.singleShot(0, self, self._scroll_last_lines)
        self.checklist.set_health(row.id, row.health if row.problems else None)
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
                blank = "" if row.broken else "being installed"
                self.info[key].setText(self.chosen.get(key, blank))
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
            (row.damaged and not busy)
            or (ok and s in ("install-failed", "not-installed", "stopped", "crashed"))
        )
        self.buttons["reinstall"].setEnabled(
            ok and s in ("install-failed", "not-installed", "stopped", "crashed")
        )
        self.buttons["verify"].setEnabled(ok and s in ("stopped", "crashed", "running"))
        self.buttons["folder"].setEnabled(True)
        self.buttons["delete"].setEnabled(ops.can_delete(s, busy))
        self.buttons["project-settings"].setEnabled(ok and row.project is not None)

    def _scroll_last_lines(self) -> None:
        """To the end once the wrapped text is laid out (the error is the last line)."""
        bar = self.last_lines.verticalScrollBar()
        bar.setValue(bar.maximum())

    def crash_details(self) -> str:
        """What "Copy details" puts on the clipboard."""
        row = self.row
        st = row.status if row is not None else None
        if row is None or st is None:
            return ""
        code = f" (exit code {st.exit_code})" if st.exit_code is not None else ""
        head = f"{row.id}: ComfyUI crashed{code}."
        cause = crash_cause(st.last_lines)
        parts = [head, f"Cause: {cause}" if cause else "", st.message, "", *st.last_lines]
        return "\n".join(p for p in parts if p is not None).strip() + "\n"

    def _on_copy_details_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.crash_details())

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
            "project-settings": self.settings_requested.emit,
        }[key](pid)
